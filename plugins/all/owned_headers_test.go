package all_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	_ "github.com/weirgw/weir/plugins/all"
	"github.com/weirgw/weir/sdk"
)

// TestEveryPluginRefusesEveryOwnedHeader: every plugin whose config writes
// header fields refuses each field of sdk's one owned-header list, in any
// case, naming it. Before the list was shared, jwt's claims_to_headers
// took X-Request-Id, X-Forwarded-Host, X-Forwarded-Proto, Traceparent and
// Proxy-Authorization, which request_transformer refused.
func TestEveryPluginRefusesEveryOwnedHeader(t *testing.T) {
	type writer struct {
		plugin   string
		response bool
		cfgs     []string // %s: the field name
	}
	writers := []writer{
		{"request_transformer", false, []string{
			`{"set":{"headers":{%q:"x"}}}`, `{"add":{"headers":{%q:"x"}}}`,
			`{"remove":{"headers":[%q]}}`, `{"rename":{"headers":{%q:"X-Other"}}}`,
			`{"rename":{"headers":{"X-Other":%q}}}`}},
		{"response_transformer", true, []string{
			`{"set":{"headers":{%q:"x"}}}`, `{"add":{"headers":{%q:"x"}}}`, `{"remove":{"headers":[%q]}}`}},
		{"jwt", false, []string{`{"claims_to_headers":{"sub":%q}}`}},
	}
	for _, w := range writers {
		fac, ok := sdk.Lookup(w.plugin)
		if !ok {
			t.Fatalf("plugin %s is not registered", w.plugin)
		}
		for _, h := range sdk.OwnedHeaders() {
			if w.response && h.RequestOnly {
				continue
			}
			for _, name := range []string{h.Name, strings.ToLower(h.Name)} {
				for _, cfg := range w.cfgs {
					raw := fmt.Sprintf(cfg, name)
					_, err := fac.New(&sdk.Build{Route: "r", Params: []string{}}, json.RawMessage(raw))
					if err == nil {
						t.Errorf("%s accepted the owned field %s: %s", w.plugin, name, raw)
						continue
					}
					if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(h.Name)) || !strings.Contains(err.Error(), h.Why) {
						t.Errorf("%s refused %s without naming it and why: %v", w.plugin, raw, err)
					}
				}
			}
		}
	}
}

// TestResponseOnlyFieldsStayWritable: the request-only owned fields may be
// set on responses (a response_transformer adding X-Consumer-Name to an
// answer changes nothing the gateway relies on).
func TestResponseOnlyFieldsStayWritable(t *testing.T) {
	fac, _ := sdk.Lookup("response_transformer")
	for _, h := range sdk.OwnedHeaders() {
		if !h.RequestOnly {
			continue
		}
		raw := fmt.Sprintf(`{"set":{"headers":{%q:"x"}}}`, h.Name)
		if _, err := fac.New(&sdk.Build{Route: "r", Params: []string{}}, json.RawMessage(raw)); err != nil {
			t.Errorf("response_transformer refused request-only %s: %v", h.Name, err)
		}
	}
}
