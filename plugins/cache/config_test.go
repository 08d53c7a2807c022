package cache

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		wantErr string
		check   func(*Filter) bool
	}{
		{``, "", func(f *Filter) bool {
			return f.cfg.Store == "memory" && f.cfg.MaxBytes == 64<<20 && f.maxObject == 1<<20 && f.collapse &&
				f.lockTimeout == 5*time.Second && f.getOK && f.headOK && f.keepStale == int64(time.Hour)
		}},
		{`null`, "", func(f *Filter) bool { return f.cfg.Store == "memory" }},
		{`{"max_bytes":"128MiB","max_object_bytes":"512KB"}`, "", func(f *Filter) bool {
			return f.cfg.MaxBytes == 128<<20 && f.maxObject == 512000
		}},
		{`{"max_bytes":1048576,"max_object_bytes":1024}`, "", func(f *Filter) bool { return f.maxObject == 1024 }},
		{`{"default_ttl":"30s","lock_timeout":"250ms","keep_stale":"2m"}`, "", func(f *Filter) bool {
			return f.defaultTTL == int64(30*time.Second) && f.lockTimeout == 250*time.Millisecond && f.keepStale == int64(2*time.Minute)
		}},
		{`{"default_ttl":30}`, "", func(f *Filter) bool { return f.defaultTTL == int64(30*time.Second) }},
		{`{"methods":["get"]}`, "", func(f *Filter) bool { return f.getOK && !f.headOK }},
		{`{"collapse":false}`, "", func(f *Filter) bool { return !f.collapse }},
		{`{"vary_by":["X-Tenant","Accept-Language"]}`, "", func(f *Filter) bool {
			return len(f.varyBy) == 2 && string(f.varyBy[0]) == "x-tenant"
		}},
		{`{"status_codes":[200,404]}`, "", func(f *Filter) bool { return f.statusOK[404] && !f.statusOK[500] }},
		{`{"tag_header":"Surrogate-Key","cache_set_cookie":true,"ignore_authorization":true,"heuristic":true}`, "", func(f *Filter) bool {
			return f.tagHeader == "Surrogate-Key" && f.cfg.CacheSetCookie && f.cfg.IgnoreAuthorization && f.cfg.Heuristic
		}},

		{`{"store":"disk"}`, `store must be memory or redis, got "disk"`, nil},
		{`{"store":"redis"}`, `store: redis needs the top-level redis section (or use store: memory)`, nil},
		{`{"max_bytes":-1}`, "max_bytes must be > 0", nil},
		{`{"max_bytes":"12 parsecs"}`, `unknown unit`, nil},
		{`{"max_bytes":"lots"}`, `invalid size "lots"`, nil},
		{`{"max_object_bytes":-5}`, "max_object_bytes must be > 0", nil},
		{`{"max_bytes":1000,"max_object_bytes":2000}`, "max_object_bytes (2000) must not exceed max_bytes (1000)", nil},
		{`{"default_ttl":"-1s"}`, "default_ttl must be >= 0", nil},
		{`{"default_ttl":"soon"}`, `invalid duration "soon"`, nil},
		{`{"lock_timeout":"2m"}`, "lock_timeout must be between 0s and 1m", nil},
		{`{"keep_stale":"-1s"}`, "keep_stale must be >= 0", nil},
		{`{"redis_timeout":"-1s"}`, "redis_timeout must be > 0", nil},
		{`{"methods":["POST"]}`, `methods[0]: only GET and HEAD can be cached, got "POST"`, nil},
		{`{"status_codes":[100]}`, "status_codes[0]: 100 is not a final status (200-599)", nil},
		{`{"status_codes":[200,206]}`, "status_codes[1]: 206 partial responses are not stored; remove it", nil},
		{`{"status_codes":[304]}`, "status_codes[0]: 304 is a validation response and is never stored; remove it", nil},
		{`{"vary_by":["X Tenant"]}`, `vary_by[0]: "X Tenant" is not a header name`, nil},
		{`{"vary_by":["*"]}`, `vary_by[0]: "*" is not a header name`, nil},
		{`{"tag_header":"Surrogate Key"}`, `tag_header: "Surrogate Key" is not a header name`, nil},
		{`{"max_bytez":1}`, `unknown field "max_bytez"`, nil},
		{`{"heuristic":"yes"}`, `heuristic`, nil},
		// Every error in one run.
		{`{"store":"disk","lock_timeout":"2m","methods":["POST"],"status_codes":[206]}`, `store must be memory or redis, got "disk"` + "\n" +
			"lock_timeout must be between 0s and 1m\n" +
			`methods[0]: only GET and HEAD can be cached, got "POST"` + "\n" +
			"status_codes[0]: 206 partial responses are not stored; remove it", nil},
	} {
		flt, err := New(&sdk.Build{Route: "cfg"}, json.RawMessage(tc.raw))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.raw, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if !tc.check(flt.(*Filter)) {
			t.Errorf("%s: unexpected result %+v", tc.raw, flt.(*Filter).cfg)
		}
	}
}

func TestRedisStoreValidatesWithoutClient(t *testing.T) {
	// `weir validate` may build filters without a Redis connection.
	if _, err := New(&sdk.Build{Route: "v", Validating: true}, json.RawMessage(`{"store":"redis"}`)); err != nil {
		t.Fatal(err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"10": 10, "10B": 10, "1KiB": 1024, "1kb": 1000, "2MiB": 2 << 20, "3 MB": 3e6, "1GiB": 1 << 30, "1G": 1e9} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "MiB", "1TiB", "99999999999999999999", "9999999999GiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
