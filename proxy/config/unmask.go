package config

import (
	"bytes"
	"encoding/json"
)

// Unmask undoes Masked for a config written back: wherever c holds Mask in
// a field that Masked masks, it puts back the value of the same field of
// the same object in stored (the running config), so that a config read
// from GET /config and written back unchanged keeps its secrets instead of
// making "******" the secret. Objects are matched by what names them:
// consumers and routes by name, plugins by name and their rank among
// plugins of that name, credentials by kind and position. A list that
// holds a mask must have as many items as the stored one: once items were
// added or removed, positions no longer tell which secret a mask stands for
// (keeping the wrong key after a revocation would be worse than an error).
//
// A mask with no stored value to keep is an error naming the field; the
// ErrorList holds every such field, with file as its file name.
func (c *Config) Unmask(stored *Config, file string) error {
	u := &unmasker{e: &errs{file: file}}
	if c.Admin != nil && c.Admin.Token == Mask {
		var s *string
		if stored != nil && stored.Admin != nil && stored.Admin.Token != "" {
			s = &stored.Admin.Token
		}
		u.scalar(&c.Admin.Token, s, "admin.token")
	}
	if c.Redis != nil && c.Redis.Password == Mask {
		var s *string
		if stored != nil && stored.Redis != nil && stored.Redis.Password != "" {
			s = &stored.Redis.Password
		}
		u.scalar(&c.Redis.Password, s, "redis.password")
	}
	var st Config
	if stored != nil {
		st = *stored
	}
	u.tracing(c.Tracing, st.Tracing)
	consumers := map[string]*Consumer{}
	for i := range st.Consumers {
		consumers[st.Consumers[i].Name] = &st.Consumers[i]
	}
	for i := range c.Consumers {
		u.consumer(&c.Consumers[i], consumers[c.Consumers[i].Name], i)
	}
	u.plugins(c.Plugins, st.Plugins, "plugins")
	routes := map[string]*Route{}
	for i := range st.Routes {
		routes[st.Routes[i].Name] = &st.Routes[i]
	}
	for i := range c.Routes {
		var old []Plugin
		if r := routes[c.Routes[i].Name]; r != nil {
			old = r.Plugins
		}
		u.plugins(c.Routes[i].Plugins, old, key(index("routes", i), "plugins"))
	}
	return u.e.err()
}

type unmasker struct{ e *errs }

// UnmaskConsumer is Unmask for one consumer, consumers[i] of the config
// written, against the stored consumer of its name (nil if none): the
// admin API's write of one consumer.
func UnmaskConsumer(c, stored *Consumer, i int, file string) error {
	u := &unmasker{e: &errs{file: file}}
	u.consumer(c, stored, i)
	return u.e.err()
}

func (u *unmasker) consumer(x, old *Consumer, i int) {
	// Sorted, so that the errors come in the same order every time.
	for _, cl := range x.Credentials {
		kind, list := cl.Plugin, cl.List
		var oldList []json.RawMessage
		if old != nil {
			oldList = old.Credentials.Of(kind)
		}
		place := key(key(index("consumers", i), "credentials"), kind)
		same := len(oldList) == len(list)
		for j := range list {
			var s json.RawMessage
			if same {
				s = oldList[j]
			}
			list[j] = u.raw(list[j], s, credentialSecrets, index(place, j))
		}
	}
}

const noStoredSecret = "the value is the mask " + Mask + " but there is no stored secret here to keep " +
	"(a new object, a renamed one, or a list whose length changed): write the secret itself"

func (u *unmasker) scalar(dst, stored *string, place string) {
	if stored == nil {
		u.e.add(place, noStoredSecret)
		return
	}
	*dst = *stored
}

// plugins unmasks each plugin's config against the stored plugin of the
// same name and rank (the second rate_limit against the second one).
func (u *unmasker) plugins(ps, stored []Plugin, place string) {
	seen := map[string]int{}
	for i := range ps {
		rank := seen[ps[i].Name]
		seen[ps[i].Name]++
		var s json.RawMessage
		for j, n := 0, 0; j < len(stored); j++ {
			if stored[j].Name != ps[i].Name {
				continue
			}
			if n == rank {
				s = stored[j].Config
				break
			}
			n++
		}
		ps[i].Config = u.raw(ps[i].Config, s, pluginSecrets, key(index(place, i), "config"))
	}
}

// raw unmasks one raw JSON value against the stored one (nil if none).
func (u *unmasker) raw(w, s json.RawMessage, names []string, place string) json.RawMessage {
	if !bytes.Contains(w, []byte(Mask)) {
		return w
	}
	wn := readJSON(w, &errs{}, false)
	if wn == nil {
		return w // not JSON: nothing was masked in it
	}
	var sn *node
	if len(bytes.TrimSpace(s)) > 0 {
		sn = readJSON(s, &errs{}, false)
	}
	if !u.node(wn, sn, names, place) {
		return w
	}
	return wn.appendJSON(nil)
}

// node walks the written tree w and the stored tree s side by side,
// replacing masked secret fields of w with their stored values; s is nil
// where the stored config has no counterpart. It reports whether it
// changed w.
func (u *unmasker) node(w, s *node, names []string, place string) bool {
	changed := false
	switch w.kind {
	case kList:
		same := s != nil && s.kind == kList && len(s.items) == len(w.items)
		for i, it := range w.items {
			var si *node
			if same {
				si = s.items[i]
			}
			changed = u.node(it, si, names, index(place, i)) || changed
		}
	case kMap:
		for i, k := range w.keys {
			var sv *node
			if s != nil && s.kind == kMap {
				for j, sk := range s.keys {
					if sk == k {
						sv = s.items[j]
						break
					}
				}
			}
			v := w.items[i]
			if isSecretName(k, names) && v.kind == kString && v.str == Mask {
				// Masked leaves an empty secret empty, so a stored
				// empty string cannot have read as the mask.
				if sv == nil || sv.kind == kNull || sv.kind == kString && sv.str == "" {
					u.e.add(key(place, k), noStoredSecret)
					continue
				}
				w.items[i] = sv
				changed = true
				continue
			}
			changed = u.node(v, sv, names, key(place, k)) || changed
		}
	}
	return changed
}
