package config

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Marshal writes c in canonical JSON: keys in schema order, maps sorted,
// durations as strings, two-space indentation, no HTML escaping. Parsing
// the result with ParseEnv(name, data, nil), which does not expand
// ${VAR} a second time, gives back an equal Config.
func Marshal(c *Config) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Clone returns a deep copy of c: nothing in the copy shares memory with
// c, so the admin API can edit a copy of the running config while
// requests keep reading the original.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	n := *c
	n.Listen = cloneEach(c.Listen, cloneListener)
	if c.Admin != nil {
		a := *c.Admin
		n.Admin = &a
	}
	if c.Redis != nil {
		r := *c.Redis
		r.Addrs = slices.Clone(c.Redis.Addrs)
		n.Redis = &r
	}
	n.Server.TrustedProxies = slices.Clone(c.Server.TrustedProxies)
	n.Server.WebSocket = clonePtr(c.Server.WebSocket)
	n.Server.GCHeapFloor = clonePtr(c.Server.GCHeapFloor)
	n.Services = cloneEach(c.Services, cloneService)
	n.Routes = cloneEach(c.Routes, cloneRoute)
	n.Consumers = cloneEach(c.Consumers, cloneConsumer)
	n.Plugins = cloneEach(c.Plugins, clonePlugin)
	n.Tracing = cloneTracing(c.Tracing)
	if c.AccessLog != nil {
		a := *c.AccessLog
		a.Fields = slices.Clone(a.Fields)
		if a.Sample != nil {
			a.Sample = ptr(*a.Sample)
		}
		n.AccessLog = &a
	}
	if c.Analytics != nil {
		n.Analytics = ptr(*c.Analytics)
	}
	return &n
}

func cloneListener(l Listener) Listener {
	if l.TLS != nil {
		t := *l.TLS
		t.Certificates = slices.Clone(t.Certificates)
		t.Ciphers = slices.Clone(t.Ciphers)
		if t.ClientAuth != nil {
			ca := *t.ClientAuth
			t.ClientAuth = &ca
		}
		if t.ACME != nil {
			a := *t.ACME
			a.Domains = slices.Clone(a.Domains)
			t.ACME = &a
		}
		l.TLS = &t
	}
	return l
}

func cloneEach[T any](in []T, f func(T) T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, x := range in {
		out[i] = f(x)
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneService(s Service) Service {
	s.Targets = cloneEach(s.Targets, func(t Target) Target {
		t.Weight = clonePtr(t.Weight)
		return t
	})
	s.Retries = clonePtr(s.Retries)
	if s.HealthCheck != nil {
		hc := *s.HealthCheck
		if hc.Active != nil {
			a := *hc.Active
			a.ExpectStatus = slices.Clone(a.ExpectStatus)
			hc.Active = &a
		}
		hc.Passive = clonePtr(hc.Passive)
		s.HealthCheck = &hc
	}
	s.CircuitBreaker = clonePtr(s.CircuitBreaker)
	s.Discovery = clonePtr(s.Discovery)
	s.TLS = clonePtr(s.TLS)
	return s
}

func cloneRoute(r Route) Route {
	r.Hosts = slices.Clone(r.Hosts)
	r.Paths = slices.Clone(r.Paths)
	r.Methods = slices.Clone(r.Methods)
	if r.Headers != nil {
		h := make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			h[k] = v
		}
		r.Headers = h
	}
	r.Plugins = cloneEach(r.Plugins, clonePlugin)
	r.WebSocket = clonePtr(r.WebSocket)
	if r.Aggregate != nil {
		a := *r.Aggregate
		a.Backends = slices.Clone(a.Backends)
		r.Aggregate = &a
	}
	if r.AccessLog != nil {
		r.AccessLog = ptr(*r.AccessLog)
	}
	return r
}

func cloneConsumer(c Consumer) Consumer {
	c.Groups = slices.Clone(c.Groups)
	c.Credentials = c.Credentials.Clone()
	return c
}

func clonePlugin(p Plugin) Plugin {
	p.Enabled = clonePtr(p.Enabled)
	p.Config = slices.Clone(p.Config)
	return p
}

// Mask is what secrets read as in a masked config.
const Mask = "******"

// Secret field names, compared case-insensitively at any depth of the raw
// JSON. Credentials mask "key" too (key_auth's API key); plugin configs do
// not, because there "key" names what a limit or cache is keyed on
// (rate_limit's `key: consumer`) and masking it would hide a setting an
// operator needs to read.
var (
	credentialSecrets = []string{"key", "secret", "password", "client_secret", "private_key"}
	pluginSecrets     = []string{"secret", "password", "client_secret", "private_key"}
)

// Masked returns a deep copy of c for display (GET /config) with secrets
// replaced by Mask: admin.token, redis.password, and in consumer
// credentials and plugin configs every field named as listed in
// credentialSecrets / pluginSecrets, at any depth. An empty secret stays
// empty, so the reader sees that none is set.
func (c *Config) Masked() *Config {
	m := c.Clone()
	if m == nil {
		return nil
	}
	if m.Admin != nil && m.Admin.Token != "" {
		m.Admin.Token = Mask
	}
	if m.Redis != nil && m.Redis.Password != "" {
		m.Redis.Password = Mask
	}
	for i := range m.Consumers {
		maskConsumer(&m.Consumers[i])
	}
	maskPlugins(m.Plugins)
	maskTracing(m.Tracing)
	for i := range m.Routes {
		maskPlugins(m.Routes[i].Plugins)
	}
	return m
}

// MaskedConsumer is Masked for one consumer: a copy of c with its
// credentials' secrets masked.
func MaskedConsumer(c *Consumer) Consumer {
	m := cloneConsumer(*c)
	maskConsumer(&m)
	return m
}

func maskConsumer(c *Consumer) {
	for _, kind := range c.Credentials {
		list := kind.List
		for j := range list {
			list[j] = maskRaw(list[j], credentialSecrets)
		}
	}
}

func maskPlugins(ps []Plugin) {
	for i := range ps {
		ps[i].Config = maskRaw(ps[i].Config, pluginSecrets)
	}
}

// maskRaw masks the secret fields of a raw JSON value. A value that is
// not valid JSON (only possible in a config built in code) is masked
// whole, since nothing in it can be told apart from a secret.
func maskRaw(raw json.RawMessage, names []string) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return raw
	}
	e := &errs{}
	n := readJSON(raw, e, false)
	if n == nil || len(e.list) > 0 {
		return json.RawMessage(`"` + Mask + `"`)
	}
	if !maskNode(n, names) {
		return raw
	}
	return n.appendJSON(nil)
}

// maskNode masks in place; it reports whether anything was masked.
func maskNode(n *node, names []string) bool {
	changed := false
	switch n.kind {
	case kList:
		for _, it := range n.items {
			changed = maskNode(it, names) || changed
		}
	case kMap:
		for i, k := range n.keys {
			v := n.items[i]
			if isSecretName(k, names) {
				if v.kind == kString && v.str == "" || v.kind == kNull {
					continue
				}
				n.items[i] = &node{kind: kString, str: Mask}
				changed = true
				continue
			}
			changed = maskNode(v, names) || changed
		}
	}
	return changed
}

func isSecretName(k string, names []string) bool {
	for _, s := range names {
		if strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}
