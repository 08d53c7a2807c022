package config

import (
	"strconv"

	"github.com/weirgw/weir/internal/jsonesc"
)

// The canonical form of a config file is a JSON document. YAML and JSON
// inputs are both first read into this generic tree, which keeps the order
// of keys (so a plugin's raw config reads as the operator wrote it) and
// remembers what ${VAR} expansion needs to know about each scalar. The tree
// is then checked against the schema, written out as JSON and decoded
// strictly into Config: there is exactly one decoding path whatever the
// input format.

type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kList
	kMap
)

type node struct {
	kind kind
	// str is a string's value or a number's JSON literal.
	str string
	b   bool
	// items are a list's elements, or a mapping's values (keys in keys).
	items []*node
	keys  []string
	// plain marks a YAML scalar written without quotes. After expansion
	// such a value is read again as YAML would ("${PORT}" becomes a
	// number) where the schema does not say what it must be.
	plain bool
	// fromEnv marks a string that ${VAR} expansion changed.
	fromEnv bool
	// pre holds the consumers list when the fast JSON reader decoded it
	// directly (consumerList); the node is then an empty list.
	pre *[]Consumer
	// drop marks a value the schema check refused: it is written as null
	// (a mapping leaves its key out), so that the rest of the document
	// still decodes and is validated in the same run.
	drop bool
}

// describe says what a value is, for "expected X, got Y" messages.
func (n *node) describe() string {
	switch n.kind {
	case kNull:
		return "null"
	case kBool:
		if n.b {
			return "true"
		}
		return "false"
	case kNumber:
		return n.str
	case kString:
		s := n.str
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		return strconv.Quote(s)
	case kList:
		return "a list"
	default:
		return "a mapping"
	}
}

// appendJSON writes n as JSON, keeping the order of mapping keys.
func (n *node) appendJSON(dst []byte) []byte {
	if n.drop {
		return append(dst, "null"...)
	}
	switch n.kind {
	case kNull:
		return append(dst, "null"...)
	case kBool:
		if n.b {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case kNumber:
		return append(dst, n.str...)
	case kString:
		return appendJSONString(dst, n.str)
	case kList:
		dst = append(dst, '[')
		for i, it := range n.items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = it.appendJSON(dst)
		}
		return append(dst, ']')
	default:
		dst = append(dst, '{')
		first := true
		for i, k := range n.keys {
			if n.items[i].drop {
				// An unknown key must not reach the strict decoder.
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = n.items[i].appendJSON(dst)
		}
		return append(dst, '}')
	}
}

// appendJSONString writes s as a JSON string (package jsonesc): a
// plugin's raw config is handed on as the operator wrote it.
func appendJSONString(dst []byte, s string) []byte { return jsonesc.Append(dst, s) }

// budget bounds the tree a document may expand to. YAML aliases let a
// few hundred bytes name billions of values ("billion laughs"); the
// budget refuses such a document before it is built.
type budget struct {
	nodes, bytes int
}

const (
	// MaxDocumentBytes is the largest config file accepted. A million
	// consumers with one API key each take about 100 MiB of YAML or JSON
	// (README.md, Scale); the limit leaves room for twice that and still
	// bounds what one request to the admin API can make the gateway read.
	MaxDocumentBytes = 256 << 20
	// maxTreeNodes and maxTreeBytes bound the document after YAML aliases
	// are expanded. A document without aliases cannot reach them within
	// MaxDocumentBytes unless it is mostly one-byte values; a million
	// consumers are about seven million values. They bound the tree
	// (about 100 bytes a value) to under two gigabytes whatever the input.
	maxTreeNodes = 1 << 24
	maxTreeBytes = MaxDocumentBytes
	// maxAliasNodes and maxAliasBytes bound what YAML aliases may add to
	// the values written out literally. They, not the tree limits, are the
	// guard against alias bombs: a real config repeats a few blocks, not
	// half a million values, so a bomb is refused long before it costs
	// what the tree limits allow.
	maxAliasNodes = 1 << 19
	maxAliasBytes = 32 << 20
	// maxDepth bounds nesting; configs are a handful of levels deep, and
	// recursion over hostile input must not exhaust the stack.
	maxDepth = 200
)

// spend charges one value of n string bytes; false when over budget.
func (b *budget) spend(n int) bool {
	b.nodes++
	b.bytes += n
	return b.nodes <= maxTreeNodes && b.bytes <= maxTreeBytes
}
