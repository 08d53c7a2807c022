package sdk

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Credentials is a consumer's credential lists by plugin name
// ("key_auth", "jwt", ...), each a list of raw JSON objects that the
// plugin owning the kind decodes. It reads and writes as a JSON object
// ({"key_auth": [...]}); in memory it is a small slice in plugin-name
// order, not a map: most consumers have one kind, and at a million
// consumers a map each was about 410 bytes and two allocations of the
// ~850 bytes a consumer cost (issue 17).
type Credentials []CredentialList

// CredentialList is one plugin's credentials of a consumer.
type CredentialList struct {
	Plugin string
	List   []json.RawMessage
}

// CredentialsOf makes Credentials from a map (tests, readers that build
// one kind at a time).
func CredentialsOf(m map[string][]json.RawMessage) Credentials {
	if m == nil {
		return nil
	}
	c := make(Credentials, 0, len(m))
	for k, list := range m {
		c = append(c, CredentialList{Plugin: k, List: list})
	}
	c.sort()
	return c
}

func (c Credentials) sort() {
	slices.SortFunc(c, func(a, b CredentialList) int { return strings.Compare(a.Plugin, b.Plugin) })
}

// Of returns plugin's credentials, or nil.
func (c Credentials) Of(plugin string) []json.RawMessage {
	for i := range c {
		if c[i].Plugin == plugin {
			return c[i].List
		}
	}
	return nil
}

// Clone copies c and every raw credential.
func (c Credentials) Clone() Credentials {
	if c == nil {
		return nil
	}
	out := make(Credentials, len(c))
	for i, l := range c {
		out[i].Plugin = l.Plugin
		if l.List != nil {
			out[i].List = make([]json.RawMessage, len(l.List))
			for j, r := range l.List {
				out[i].List[j] = slices.Clone(r)
			}
		}
	}
	return out
}

// MarshalJSON writes c as a JSON object with its keys sorted, as a map
// is written.
func (c Credentials) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("null"), nil
	}
	if !slices.IsSortedFunc(c, func(a, b CredentialList) int { return strings.Compare(a.Plugin, b.Plugin) }) {
		c = slices.Clone(c)
		c.sort()
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, l := range c {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(l.Plugin)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(l.List)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object of lists (null: no credentials).
func (c *Credentials) UnmarshalJSON(data []byte) error {
	var m map[string][]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	*c = CredentialsOf(m)
	return nil
}
