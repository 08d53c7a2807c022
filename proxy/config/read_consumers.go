package config

import (
	"encoding/json"
	"slices"
	"strings"
	"unsafe"

	"github.com/weirgw/weir/sdk"
)

// Consumers are most of a large config (a million of them is seven
// million values): parse decodes them from the tree directly instead of
// writing them out as JSON and decoding that with encoding/json, which
// was a third of reading such a file. The rest of the config takes the
// one decoding path (tree.go). decodeConsumers gives what encoding/json
// gives for the same tree after the schema check: a value the check
// refused (drop) or null reads as not set, and unknown keys were refused.

// takeConsumers detaches the consumers from root, so that appendJSON
// leaves them out, and returns them decoded; restore puts them back (the
// tree orders errors by place). It returns ok false when root holds no
// consumers list to decode this way.
func takeConsumers(root *node) (list []Consumer, restore func(), ok bool) {
	if root.kind != kMap {
		return nil, nil, false
	}
	for i, k := range root.keys {
		if k != "consumers" {
			continue
		}
		n := root.items[i]
		if n.pre != nil {
			return *n.pre, func() {}, true
		}
		if n.drop || n.kind != kList {
			return nil, nil, false
		}
		root.items[i] = &node{kind: kNull}
		return decodeConsumers(n), func() { root.items[i] = n }, true
	}
	return nil, nil, false
}

func decodeConsumers(n *node) []Consumer {
	out := make([]Consumer, len(n.items))
	var arena rawArena
	var scratch sdk.Credentials
	for i, it := range n.items {
		if it.drop || it.kind != kMap {
			continue // null, or refused: the zero consumer, as encoding/json leaves it
		}
		c := &out[i]
		for j, k := range it.keys {
			v := it.items[j]
			if v.drop {
				continue
			}
			switch k {
			case "name":
				if v.kind == kString {
					c.Name = v.str
				}
			case "groups":
				if v.kind != kList {
					continue
				}
				c.Groups = make([]string, len(v.items))
				for g, gn := range v.items {
					if !gn.drop && gn.kind == kString {
						c.Groups[g] = gn.str
					}
				}
			case "credentials":
				if v.kind != kMap {
					continue
				}
				creds := scratch[:0]
				for m, kind := range v.keys {
					list := v.items[m]
					if list.drop {
						continue // left out of a mapping, as appendJSON leaves it
					}
					if list.kind != kList {
						creds = append(creds, sdk.CredentialList{Plugin: arena.kind(kind)})
						continue
					}
					raws := make([]json.RawMessage, len(list.items))
					for r, cred := range list.items {
						raws[r] = arena.json(cred)
					}
					creds = append(creds, sdk.CredentialList{Plugin: arena.kind(kind), List: raws})
				}
				c.Credentials = arena.credentials(creds)
				scratch = creds
			}
		}
	}
	return out
}

// rawArena hands out raw JSON values carved from shared chunks: a million
// small credentials in a few hundred allocations instead of a million.
// Each value is capped at its length, so that appending to one copies it
// rather than writing over its neighbour.
type rawArena struct {
	buf   []byte
	lists []json.RawMessage // one's slab
	creds sdk.Credentials   // credentials' slab
	kinds map[string]string // credential kinds, one string each
}

// credentials is a copy of c sorted by plugin, carved from a slab, capped
// at its length. No kinds (an empty mapping) is empty, not nil.
func (a *rawArena) credentials(c sdk.Credentials) sdk.Credentials {
	if len(c) == 0 {
		return sdk.Credentials{} // no allocation
	}
	if len(c) > 64 {
		out := slices.Clone(c)
		sortCredentials(out)
		return out
	}
	if cap(a.creds)-len(a.creds) < len(c) {
		a.creds = make(sdk.Credentials, 0, 1024)
	}
	start := len(a.creds)
	a.creds = append(a.creds, c...)
	out := a.creds[start:len(a.creds):len(a.creds)]
	sortCredentials(out)
	return out
}

func sortCredentials(c sdk.Credentials) {
	if len(c) > 1 {
		slices.SortFunc(c, func(x, y sdk.CredentialList) int { return strings.Compare(x.Plugin, y.Plugin) })
	}
}

// kind is s, the same string for every consumer that has the kind.
func (a *rawArena) kind(s string) string {
	if k, ok := a.kinds[s]; ok {
		return k
	}
	if a.kinds == nil {
		a.kinds = map[string]string{}
	}
	if len(a.kinds) < 256 {
		s = strings.Clone(s)
		a.kinds[s] = s
	}
	return s
}

// str is a copy of b in the arena, as a string: the arena never writes
// over what it handed out.
func (a *rawArena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	v := a.bytes(b)
	return unsafe.String(unsafe.SliceData(v), len(v))
}

// one is a list of v alone, carved from a slab of lists: its capacity is
// one, so an append copies it out rather than writing over the next.
func (a *rawArena) one(v json.RawMessage) []json.RawMessage {
	if len(a.lists) == cap(a.lists) {
		a.lists = make([]json.RawMessage, 0, 1024)
	}
	a.lists = append(a.lists, v)
	n := len(a.lists)
	return a.lists[n-1 : n : n]
}

// bytes is a copy of b in the arena.
func (a *rawArena) bytes(b []byte) json.RawMessage {
	if len(b) > 256 {
		return append(json.RawMessage(nil), b...)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, 64<<10)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

func (a *rawArena) json(n *node) json.RawMessage {
	const chunk = 64 << 10
	if cap(a.buf)-len(a.buf) < 256 {
		a.buf = make([]byte, 0, chunk)
	}
	start, was := len(a.buf), a.buf
	a.buf = n.appendJSON(a.buf)
	if cap(a.buf) != cap(was) {
		// Larger than what the chunk had left: a value of its own,
		// rather than a grown copy of the chunk.
		v := n.appendJSON(make([]byte, 0, len(a.buf)-start))
		a.buf = was
		return v
	}
	return a.buf[start:len(a.buf):len(a.buf)]
}
