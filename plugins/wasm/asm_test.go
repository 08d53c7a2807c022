package wasm

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// A tiny WebAssembly assembler for test guests. wazero has no text-format
// compiler, and hostile guests (bad pointers, endless loops, traps) are
// easiest to write instruction by instruction; they compile in
// microseconds, unlike a Go guest. Encoding:
// https://webassembly.github.io/spec/core/binary/index.html

const (
	tI32 = 0x7f
	tI64 = 0x7e

	opUnreachable = 0x00
	opBlock       = 0x02
	opLoop        = 0x03
	opIf          = 0x04
	opEnd         = 0x0b
	opBr          = 0x0c
	opBrIf        = 0x0d
	opReturn      = 0x0f
	opCall        = 0x10
	opDrop        = 0x1a
	opLocalGet    = 0x20
	opI32Load     = 0x28
	opMemoryGrow  = 0x40
	opI32Store    = 0x36
	opI32Const    = 0x41
	opI64Const    = 0x42
	opI32Eqz      = 0x45
	opI32Eq       = 0x46
	opI32Ne       = 0x47
	blockVoid     = 0x40
)

type wasmType struct{ params, results []byte }

type wasmImport struct {
	module, name string
	typ          uint32
}

type wasmFunc struct {
	typ  uint32
	body []byte // instructions, without the final end
}

type wasmExport struct {
	name string
	kind byte // 0 func, 2 memory
	idx  uint32
}

type wasmData struct {
	offset uint32
	bytes  []byte
}

// asm builds one module. Imports must be declared before functions.
type asm struct {
	types   []wasmType
	imports []wasmImport
	funcs   []wasmFunc
	exports []wasmExport
	data    []wasmData
	memMin  uint32
	noMem   bool // no memory section at all
	noMemEx bool // a memory that is not exported
}

func (a *asm) typ(params, results []byte) uint32 {
	for i, t := range a.types {
		if string(t.params) == string(params) && string(t.results) == string(results) {
			return uint32(i)
		}
	}
	a.types = append(a.types, wasmType{params, results})
	return uint32(len(a.types) - 1)
}

// imp declares an imported function and returns its index.
func (a *asm) imp(module, name string, params, results []byte) uint32 {
	if len(a.funcs) > 0 {
		panic("asm: imports must come before functions")
	}
	a.imports = append(a.imports, wasmImport{module, name, a.typ(params, results)})
	return uint32(len(a.imports) - 1)
}

// fn defines a function, exported as name unless name is "", and
// returns its index.
func (a *asm) fn(name string, params, results []byte, body ...[]byte) uint32 {
	var b []byte
	for _, part := range body {
		b = append(b, part...)
	}
	a.funcs = append(a.funcs, wasmFunc{a.typ(params, results), b})
	idx := uint32(len(a.imports) + len(a.funcs) - 1)
	if name != "" {
		a.exports = append(a.exports, wasmExport{name, 0, idx})
	}
	return idx
}

func (a *asm) bytes() []byte {
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	section := func(id byte, body []byte) {
		out = append(out, id)
		out = appendULEB(out, uint64(len(body)))
		out = append(out, body...)
	}
	var b []byte
	b = appendULEB(nil, uint64(len(a.types)))
	for _, t := range a.types {
		b = append(b, 0x60)
		b = appendULEB(b, uint64(len(t.params)))
		b = append(b, t.params...)
		b = appendULEB(b, uint64(len(t.results)))
		b = append(b, t.results...)
	}
	section(1, b)
	if len(a.imports) > 0 {
		b = appendULEB(nil, uint64(len(a.imports)))
		for _, im := range a.imports {
			b = appendName(b, im.module)
			b = appendName(b, im.name)
			b = append(b, 0x00)
			b = appendULEB(b, uint64(im.typ))
		}
		section(2, b)
	}
	b = appendULEB(nil, uint64(len(a.funcs)))
	for _, f := range a.funcs {
		b = appendULEB(b, uint64(f.typ))
	}
	section(3, b)
	if !a.noMem {
		min := a.memMin
		if min == 0 {
			min = 1
		}
		b = []byte{1, 0x00}
		b = appendULEB(b, uint64(min))
		section(5, b)
	}
	exports := a.exports
	if !a.noMem && !a.noMemEx {
		exports = append(exports, wasmExport{"memory", 2, 0})
	}
	b = appendULEB(nil, uint64(len(exports)))
	for _, e := range exports {
		b = appendName(b, e.name)
		b = append(b, e.kind)
		b = appendULEB(b, uint64(e.idx))
	}
	section(7, b)
	b = appendULEB(nil, uint64(len(a.funcs)))
	for _, f := range a.funcs {
		body := append([]byte{0x00}, f.body...) // no locals
		body = append(body, opEnd)
		b = appendULEB(b, uint64(len(body)))
		b = append(b, body...)
	}
	section(10, b)
	if len(a.data) > 0 {
		b = appendULEB(nil, uint64(len(a.data)))
		for _, d := range a.data {
			b = append(b, 0x00, opI32Const)
			b = appendSLEB(b, int64(int32(d.offset)))
			b = append(b, opEnd)
			b = appendULEB(b, uint64(len(d.bytes)))
			b = append(b, d.bytes...)
		}
		section(11, b)
	}
	return out
}

// Instruction helpers.

func ci32(v int64) []byte { return appendSLEB([]byte{opI32Const}, int64(int32(uint32(v)))) }

func i64c(v int64) []byte { return appendSLEB([]byte{opI64Const}, v) }

func local(i uint32) []byte { return appendULEB([]byte{opLocalGet}, uint64(i)) }

func call(f uint32) []byte { return appendULEB([]byte{opCall}, uint64(f)) }

func op(b ...byte) []byte { return b }

func load(addr int64) []byte { return append(ci32(addr), opI32Load, 2, 0) }

func store(addr, v int64) []byte {
	b := append(ci32(addr), ci32(v)...)
	return append(b, opI32Store, 2, 0)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// expect runs the call instructions, then traps unless the status they
// left on the stack is want.
func expect(want int64, callInstrs ...[]byte) []byte {
	return cat(cat(callInstrs...), ci32(want), op(opI32Ne, opIf, blockVoid, opUnreachable, opEnd))
}

// i32x repeats tI32 n times, for signatures.
func i32x(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = tI32
	}
	return b
}

// proxyBase adds what every Proxy-Wasm guest needs: the ABI marker, an
// allocator, the context and start-up callbacks. The allocator returns
// the address stored at memory offset 8 (1024 unless a test guest changes
// it) and traps if that address is 1.
func (a *asm) proxyBase() {
	a.fn("proxy_abi_version_0_2_1", nil, nil)
	a.fn("proxy_on_memory_allocate", i32x(1), i32x(1),
		load(8), ci32(1), op(opI32Eq, opIf, blockVoid, opUnreachable, opEnd),
		load(8))
	a.fn("proxy_on_context_create", i32x(2), nil)
	a.fn("proxy_on_vm_start", i32x(2), i32x(1), ci32(1))
	a.data = append(a.data, wasmData{8, binary.LittleEndian.AppendUint32(nil, 1024)})
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
