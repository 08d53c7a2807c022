package wasm

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/weirgw/weir/internal/wasmasm"
)

// Test guests are assembled instruction by instruction with package
// wasmasm (hostile guests compile in microseconds, unlike a Go guest);
// these are short names for its helpers.

type (
	asm      = wasmasm.Module
	wasmData = wasmasm.Data
)

const (
	tI32 = wasmasm.I32
	tI64 = wasmasm.I64

	opUnreachable = wasmasm.OpUnreachable
	opBlock       = wasmasm.OpBlock
	opLoop        = wasmasm.OpLoop
	opIf          = wasmasm.OpIf
	opEnd         = wasmasm.OpEnd
	opBr          = wasmasm.OpBr
	opBrIf        = wasmasm.OpBrIf
	opReturn      = wasmasm.OpReturn
	opCall        = wasmasm.OpCall
	opDrop        = wasmasm.OpDrop
	opLocalGet    = wasmasm.OpLocalGet
	opI32Load     = wasmasm.OpI32Load
	opMemoryGrow  = wasmasm.OpMemoryGrow
	opI32Store    = wasmasm.OpI32Store
	opI32Const    = wasmasm.OpI32Const
	opI64Const    = wasmasm.OpI64Const
	opI32Eqz      = wasmasm.OpI32Eqz
	opI32Eq       = wasmasm.OpI32Eq
	opI32Ne       = wasmasm.OpI32Ne
	blockVoid     = wasmasm.BlockVoid
)

var (
	ci32  = wasmasm.I32Const
	i64c  = wasmasm.I64Const
	local = wasmasm.LocalGet
	call  = wasmasm.Call
	op    = wasmasm.Op
	load  = wasmasm.Load
	store = wasmasm.Store
	cat   = wasmasm.Cat
	i32x  = wasmasm.I32s
)

// expect runs the call instructions, then traps unless the status they
// left on the stack is want.
func expect(want int64, callInstrs ...[]byte) []byte {
	return cat(cat(callInstrs...), ci32(want), op(opI32Ne, opIf, blockVoid, opUnreachable, opEnd))
}

// proxyBase adds what every Proxy-Wasm guest needs: the ABI marker, an
// allocator, the context and start-up callbacks. The allocator returns
// the address stored at memory offset 8 (1024 unless a test guest changes
// it) and traps if that address is 1.
func proxyBase(a *asm) {
	a.Func("proxy_abi_version_0_2_1", nil, nil)
	a.Func("proxy_on_memory_allocate", i32x(1), i32x(1),
		load(8), ci32(1), op(opI32Eq, opIf, blockVoid, opUnreachable, opEnd),
		load(8))
	a.Func("proxy_on_context_create", i32x(2), nil)
	a.Func("proxy_on_vm_start", i32x(2), i32x(1), ci32(1))
	a.Data = append(a.Data, wasmData{Offset: 8, Bytes: binary.LittleEndian.AppendUint32(nil, 1024)})
}

// writeModule writes b to a temporary .wasm file and returns its path.
func writeModule(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".wasm")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
