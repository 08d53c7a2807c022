package proxy

import (
	"testing"

	"github.com/weirgw/weir/sdk"
)

// TestStrippedFieldsAreOwned: every field the proxy strips (hop-by-hop,
// protected) is in sdk's owned-header list, so no plugin can be configured
// to write a field the proxy then silently removes.
func TestStrippedFieldsAreOwned(t *testing.T) {
	for _, name := range hopByHop {
		if _, ok := sdk.HeaderOwned(name, true); !ok {
			t.Errorf("hop-by-hop %s is not in sdk's owned-header list", name)
		}
	}
	for _, name := range protectedRequestHeaders {
		if _, ok := sdk.HeaderOwned(name, false); !ok {
			t.Errorf("protected %s is not in sdk's owned-header list", name)
		}
	}
}
