package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads and parses the config file at path (see Parse). It does not
// apply defaults or validate: call ApplyDefaults, then Validate.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	defer f.Close()
	// Read one byte more than allowed to tell "exactly the limit" from
	// "over it" without trusting Stat (a FIFO or /dev/stdin has no size).
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentBytes+1))
	if err != nil {
		return nil, fileError(path, err)
	}
	return Parse(path, data)
}

func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return ErrorList{{File: path, Place: TopLevel, Msg: "cannot read the file: " + err.Error()}}
}

// Parse reads a config document, expanding ${VAR} references from the
// process environment. See ParseEnv.
func Parse(file string, data []byte) (*Config, error) {
	return ParseEnv(file, data, os.LookupEnv)
}

// ParseEnv reads a config document. file names it in errors and picks the
// format: .yaml and .yml are YAML, .json is JSON, anything else is JSON
// when the content is a valid JSON object and YAML otherwise.
//
// Both formats go one way: the document is read into a generic tree,
// ${VAR} references in string values are expanded with lookup, the tree is
// checked against the schema (unknown keys
// and wrong types, each with its place), written as canonical JSON, and
// decoded strictly into Config. Plugin configs and consumer credentials
// stay raw JSON for their plugins to decode.
//
// A nil lookup turns expansion off: strings are taken verbatim, "$$" and
// "${X}" included. Use it to read back what Marshal wrote (a config shared
// between cluster nodes, say), whose values were expanded already.
//
// The error, when not nil, is an ErrorList holding every problem found:
// syntax errors stop the reading, but duplicate keys, unknown keys and
// wrong types are all reported together. Values are validated only once
// the document is well-formed: Parse neither applies defaults nor
// validates (see ApplyDefaults and Validate).
func ParseEnv(file string, data []byte, lookup LookupFunc) (*Config, error) {
	e := &errs{file: file}
	if len(data) > MaxDocumentBytes {
		e.add(TopLevel, "the file is larger than %d MiB; a config this size is a mistake", MaxDocumentBytes>>20)
		return nil, e.err()
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	var root *node
	if isJSON(file, data) {
		root = readJSON(data, e)
	} else {
		root = readYAML(data, e)
	}
	if root == nil {
		return nil, e.err()
	}
	// A tree with errors (duplicate keys, dropped) is still checked
	// against the schema so that one run reports everything.
	if root.kind == kNull {
		e.add(TopLevel, "the document is empty; a config needs at least `listen`")
		return nil, e.err()
	}
	w := &walker{e: e, lookup: lookup}
	w.walk(root, configType, "")
	if len(e.list) > 0 {
		return nil, e.err()
	}
	c := new(Config)
	// The canonical JSON is about as long as the document: sizing it up
	// front saves copying a large config (100 MiB at a million consumers)
	// over and over as it grows.
	dec := json.NewDecoder(bytes.NewReader(root.appendJSON(make([]byte, 0, len(data)+len(data)/4))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		// The schema check accepts exactly what the decoder accepts; this
		// is a bug if it ever shows.
		e.add(TopLevel, "cannot decode the config (a bug in the schema check, please report it): %v", err)
		return nil, e.err()
	}
	return c, nil
}

func isJSON(file string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".json":
		return true
	case ".yaml", ".yml":
		return false
	}
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(data)
}
