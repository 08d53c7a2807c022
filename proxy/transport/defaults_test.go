package transport

import (
	"testing"

	"github.com/weirgw/weir/proxy/config"
)

// TestZeroConfigTakesTheDefaultsTable: a transport built without settings
// uses the values of proxy/config/defaults.go, the one table, not numbers
// of its own (it used to stream above 1 MiB while the proxy buffered up to
// 256 KiB).
func TestZeroConfigTakesTheDefaultsTable(t *testing.T) {
	tr := New(Config{Addr: "127.0.0.1:1"})
	defer tr.Close()
	got := tr.cfg
	if got.StreamThreshold != config.DefaultStreamThreshold || got.MaxConns != config.DefaultMaxConnsPerTarget ||
		got.ConnectTimeout != config.DefaultConnectTimeout || got.IdleTimeout != config.DefaultUpstreamIdleTimeout ||
		got.MaxHeaderBytes != config.DefaultUpstreamMaxHeaderBytes {
		t.Fatalf("zero config became %+v, want the defaults table's values", got)
	}
}
