package sdk

import (
	"encoding/json"
	"strings"
)

// Consumer is an identified client of the gateway (docs/config.md, consumers).
// Consumers are immutable once a snapshot is built and may be shared freely.
type Consumer struct {
	Name   string
	Groups []string
	// GroupsHeader is Groups joined with ",", precomputed for the
	// X-Consumer-Groups header.
	GroupsHeader string
	// Credentials holds each credential list by plugin name ("key_auth",
	// "jwt", ...) as raw JSON objects; the plugin that owns the kind decodes
	// and indexes them in its New.
	Credentials map[string][]json.RawMessage
}

// InGroup reports whether the consumer belongs to group g.
func (c *Consumer) InGroup(g string) bool {
	if c == nil {
		return false
	}
	for _, x := range c.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// Consumers is the immutable set of consumers of a snapshot.
type Consumers struct {
	list   []*Consumer
	byName map[string]*Consumer
}

// NewConsumers indexes list by name. Names are assumed unique (the config
// validator guarantees it).
func NewConsumers(list []*Consumer) *Consumers {
	cs := &Consumers{list: list, byName: make(map[string]*Consumer, len(list))}
	for _, c := range list {
		if c.GroupsHeader == "" && len(c.Groups) > 0 {
			c.GroupsHeader = strings.Join(c.Groups, ",")
		}
		cs.byName[c.Name] = c
	}
	return cs
}

// All returns every consumer; callers must not modify the slice.
func (cs *Consumers) All() []*Consumer {
	if cs == nil {
		return nil
	}
	return cs.list
}

// Get returns the consumer named name, or nil.
func (cs *Consumers) Get(name string) *Consumer {
	if cs == nil {
		return nil
	}
	return cs.byName[name]
}
