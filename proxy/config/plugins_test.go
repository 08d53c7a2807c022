package config

import (
	"encoding/json"

	"github.com/weirgw/weir/sdk"
)

// Fake plugin factories for validation tests. The real plugins live in
// plugins/ and are not imported here; this test binary registers names of
// its own: those the SPEC example uses (key_auth, rate_limit, cors) and
// test_plugin, which may have several instances per list, told apart by
// their config's `name` (as the lua plugin's).
func init() {
	for _, name := range []string{"key_auth", "rate_limit", "cors"} {
		sdk.Register(sdk.Factory{Name: name, New: newNopFilter})
	}
	sdk.Register(sdk.Factory{Name: "test_plugin", New: newNopFilter, Instance: func(raw json.RawMessage) string {
		var c struct{ Name string }
		_ = json.Unmarshal(raw, &c)
		return c.Name
	}})
}

type nopFilter struct{}

func (nopFilter) OnRequest(*sdk.Ctx) (sdk.Status, error) { return sdk.Continue, nil }

func newNopFilter(*sdk.Build, json.RawMessage) (sdk.Filter, error) { return nopFilter{}, nil }
