package wasmasm

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

func TestLEB(t *testing.T) {
	for _, tt := range []struct {
		got, want []byte
	}{
		{AppendULEB(nil, 0), []byte{0}},
		{AppendULEB(nil, 127), []byte{0x7f}},
		{AppendULEB(nil, 128), []byte{0x80, 0x01}},
		{AppendULEB(nil, 624485), []byte{0xe5, 0x8e, 0x26}},
		{AppendSLEB(nil, -1), []byte{0x7f}},
		{AppendSLEB(nil, 63), []byte{0x3f}},
		{AppendSLEB(nil, 64), []byte{0xc0, 0x00}},
		{AppendSLEB(nil, -123456), []byte{0xc0, 0xbb, 0x78}},
		{AppendName(nil, "env"), []byte{3, 'e', 'n', 'v'}},
	} {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("got % x, want % x", tt.got, tt.want)
		}
	}
}

// TestHeaderFilterCompiles: wazero accepts the module, with the imports
// and exports a Proxy-Wasm host looks for.
func TestHeaderFilterCompiles(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	m, err := rt.CompileModule(ctx, HeaderFilter("X-A", "1", "X-B", "2"))
	if err != nil {
		t.Fatal(err)
	}
	ex := m.ExportedFunctions()
	for _, name := range []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_vm_start",
		"proxy_on_configure", "proxy_on_context_create", "proxy_on_request_headers", "proxy_on_response_headers"} {
		if ex[name] == nil {
			t.Errorf("%s not exported", name)
		}
	}
	if len(m.ImportedFunctions()) != 2 {
		t.Errorf("%d imports, want 2", len(m.ImportedFunctions()))
	}
}
