package admin

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/weirgw/weir/proxy/config"

	"github.com/weirgw/weir/sdk"
)

// SharedEqual compares object by object; it must answer what comparing
// the whole shared documents' JSON answers.
func TestSharedEqualIsJSONEquality(t *testing.T) {
	base := func() *config.Config {
		on := true
		return &config.Config{
			Services: []config.Service{{Name: "a", Targets: []config.Target{{URL: "http://x:1"}}}},
			Routes: []config.Route{
				{Name: "r", Paths: []string{"/r"}, Service: "a", Headers: map[string]string{"X-A": "1"}},
				{Name: "s", Paths: []string{"/s"}, Service: "a", AccessLog: &on,
					Plugins: []config.Plugin{{Name: "cors", Config: json.RawMessage(`{"a":1}`)}}},
			},
			Consumers: []config.Consumer{{Name: "c", Credentials: sdk.Credentials{{Plugin: "key_auth", List: []json.RawMessage{json.RawMessage(`{"key":"k"}`)}}}}},
		}
	}
	edits := []func(c *config.Config){
		func(c *config.Config) {},
		func(c *config.Config) { c.Routes[1].Paths = []string{"/t"} },
		func(c *config.Config) { c.Routes[0].Hosts = []string{} }, // omitted like nil: equal
		func(c *config.Config) { c.Routes[0].Headers = nil },      // a field gone
		func(c *config.Config) { c.Routes = c.Routes[:1] },        // a route gone
		func(c *config.Config) { c.Plugins = []config.Plugin{} },  // omitted like nil: equal
		func(c *config.Config) { off := false; c.Routes[1].AccessLog = &off },
		func(c *config.Config) { c.Routes[1].Plugins[0].Config = json.RawMessage(`{"a":2}`) },
		func(c *config.Config) { c.Consumers[0].Groups = []string{"g"} },
		func(c *config.Config) { c.Services[0].Targets[0].URL = "http://y:1" },
		func(c *config.Config) { c.Routes[0], c.Routes[1] = c.Routes[1], c.Routes[0] },
		func(c *config.Config) { c.Server.MaxConns = 9 }, // node-local: not shared
	}
	for i, edit := range edits {
		a, b := base(), base()
		edit(b)
		want := bytes.Equal(marshalShared(a), marshalShared(b))
		if got := SharedEqual(a, b); got != want {
			t.Errorf("edit %d: SharedEqual %v, JSON equality %v", i, got, want)
		}
	}
}
