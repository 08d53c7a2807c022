package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads and parses the config file at path (see Parse). It does not
// apply defaults or validate: call ApplyDefaults, then Validate.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
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
// and wrong types, each with its place), and decoded into Config as a
// strict JSON decoder would decode its canonical JSON (decodeTree). Plugin configs and consumer credentials
// stay raw JSON for their plugins to decode.
//
// A nil lookup turns expansion off: strings are taken verbatim, "$$" and
// "${X}" included. Use it to read back what Marshal wrote (a config shared
// between cluster nodes, say), whose values were expanded already.
//
// The error, when not nil, is an ErrorList holding every problem found:
// syntax errors stop the reading, but duplicate keys, unknown keys and
// wrong types are all reported together. Parse neither applies defaults
// nor validates (see ApplyDefaults and Validate); Check runs every stage
// in one pass, past schema errors.
func ParseEnv(file string, data []byte, lookup LookupFunc) (*Config, error) {
	e := &errs{file: file}
	c, _ := parse(file, data, lookup, e, true, nil)
	if err := e.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse is ParseEnv for Check: besides the errors in e, it returns the
// config decoded from what the schema check accepted (values it refused
// are left out, as if not set) and the tree, whose shape orders errors in
// file order. Both are nil when the document could not be read at all (a
// syntax error, an empty document).
func parse(file string, data []byte, lookup LookupFunc, e *errs, direct bool, memo *routeMemo) (*Config, *node) {
	if len(data) > MaxDocumentBytes {
		e.add(TopLevel, "the file is larger than %d MiB; a config this size is a mistake", MaxDocumentBytes>>20)
		return nil, nil
	}
	data = stripBOM(data)
	var root *node
	read := false
	if memo != nil {
		root, read = readRoutes(data, memo, e, isJSON(file, data), direct)
	}
	if !read {
		root = readTree(file, data, e, direct)
	}
	if root == nil {
		return nil, nil
	}
	// A tree with errors (duplicate keys, dropped) is still checked
	// against the schema so that one run reports everything.
	if root.kind == kNull {
		e.add(TopLevel, "the document is empty; a config needs at least `listen`")
		return nil, nil
	}
	// Routes the memo has decoded already are neither walked nor decoded
	// again: they come from a document that passed every check, and an
	// error anywhere makes the Reader read the document whole.
	var fill func(*Config)
	if read {
		var restore func()
		var ok bool
		if restore, fill, ok = memo.known(root); ok {
			defer restore()
		}
	}
	w := &walker{e: e, lookup: lookup}
	w.walk(root, configType)
	if root.drop {
		// Not a mapping: nothing to decode.
		return nil, nil
	}
	c := new(Config)
	consumers, restore, detached := takeConsumers(root)
	if detached {
		defer restore()
	}
	if err := decodeTree(root, c); err != nil {
		// The schema check accepts exactly what the decoder accepts, and
		// refused values are left out; this is a bug if it ever shows.
		e.add(TopLevel, "cannot decode the config (a bug in the schema check, please report it): %v", err)
		return nil, nil
	}
	if detached {
		c.Consumers = consumers
	}
	if fill != nil {
		fill(c)
	}
	return c, root
}

// stripBOM drops a leading UTF-8 byte order mark, which some Windows
// editors write and neither reader accepts.
func stripBOM(data []byte) []byte {
	return bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
}

// readTree reads data as JSON or YAML, as file's name or content says, so
// that whole configs and single admin-API objects are read the same way.
func readTree(file string, data []byte, e *errs, direct bool) *node {
	if isJSON(file, data) {
		return readJSON(data, e, direct)
	}
	return readYAML(data, e)
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
