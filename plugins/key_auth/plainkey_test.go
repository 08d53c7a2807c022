package keyauth

import (
	"testing"

	"github.com/weirgw/weir/sdk"
)

// The fast path must read exactly what the decoder reads, or decline.
func TestPlainKeyOnlyAgreesWithDecoder(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		fast bool
	}{
		{`{"key":"abc-123"}`, true},
		{`{"key":""}`, true},
		{`{"key":"a\"b"}`, false},
		{`{"key":"a\\b"}`, false},
		{`{"key":"\u00e9"}`, false},
		{`{"key":"é"}`, false},
		{`{"key":"a","id":"x"}`, false},
		{`{"id":"x","key":"a"}`, false},
		{`{ "key":"a"}`, false},
		{`{"key":"a"} `, false},
		{`{"key":"}`, false},
	} {
		got, ok := plainKeyOnly([]byte(tc.raw))
		if ok != tc.fast {
			t.Fatalf("%s: fast path %v, want %v", tc.raw, ok, tc.fast)
		}
		if !ok {
			continue
		}
		var want Credential
		if err := sdk.DecodeConfig([]byte(tc.raw), &want); err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		if got != want.Key {
			t.Fatalf("%s: fast path read %q, the decoder %q", tc.raw, got, want.Key)
		}
	}
}
