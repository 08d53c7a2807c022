// Package wasmasm is a tiny WebAssembly assembler: a module is built
// instruction by instruction, as a hand-written WAT file would be, and
// encoded in the binary format. wazero has no text-format compiler; the
// wasm plugin's tests use this for hostile guests (bad pointers, endless
// loops, traps), and the bench and e2e suites for a hand-written
// Proxy-Wasm filter (HeaderFilter) with no language runtime inside.
// Encoding: https://webassembly.github.io/spec/core/binary/index.html
package wasmasm

// Value types.
const (
	I32 = 0x7f
	I64 = 0x7e
)

// Opcodes used by the helpers and their callers.
const (
	OpUnreachable = 0x00
	OpBlock       = 0x02
	OpLoop        = 0x03
	OpIf          = 0x04
	OpEnd         = 0x0b
	OpBr          = 0x0c
	OpBrIf        = 0x0d
	OpReturn      = 0x0f
	OpCall        = 0x10
	OpDrop        = 0x1a
	OpLocalGet    = 0x20
	OpI32Load     = 0x28
	OpMemoryGrow  = 0x40
	OpI32Store    = 0x36
	OpI32Const    = 0x41
	OpI64Const    = 0x42
	OpI32Eqz      = 0x45
	OpI32Eq       = 0x46
	OpI32Ne       = 0x47
	BlockVoid     = 0x40
)

// Type is a function signature.
type Type struct{ Params, Results []byte }

// Import is an imported function.
type Import struct {
	Module, Name string
	Type         uint32
}

// Func is a defined function.
type Func struct {
	Type uint32
	Body []byte // instructions, without the final end
}

// Export names a function (kind 0) or memory (kind 2).
type Export struct {
	Name string
	Kind byte
	Idx  uint32
}

// Data is an active data segment of memory 0.
type Data struct {
	Offset uint32
	Bytes  []byte
}

// Module is one module being built. Imports must be declared before
// functions. It has one memory, exported as "memory", unless NoMem or
// NoMemExport says otherwise.
type Module struct {
	Types       []Type
	Imports     []Import
	Funcs       []Func
	Exports     []Export
	Data        []Data
	MemMin      uint32 // pages; 0 means 1
	NoMem       bool   // no memory section at all
	NoMemExport bool   // a memory that is not exported
}

// Type returns the index of the signature, adding it if new.
func (m *Module) Type(params, results []byte) uint32 {
	for i, t := range m.Types {
		if string(t.Params) == string(params) && string(t.Results) == string(results) {
			return uint32(i)
		}
	}
	m.Types = append(m.Types, Type{params, results})
	return uint32(len(m.Types) - 1)
}

// Import declares an imported function and returns its index.
func (m *Module) Import(module, name string, params, results []byte) uint32 {
	if len(m.Funcs) > 0 {
		panic("wasmasm: imports must come before functions")
	}
	m.Imports = append(m.Imports, Import{module, name, m.Type(params, results)})
	return uint32(len(m.Imports) - 1)
}

// Func defines a function, exported as name unless name is "", and
// returns its index.
func (m *Module) Func(name string, params, results []byte, body ...[]byte) uint32 {
	m.Funcs = append(m.Funcs, Func{m.Type(params, results), Cat(body...)})
	idx := uint32(len(m.Imports) + len(m.Funcs) - 1)
	if name != "" {
		m.Exports = append(m.Exports, Export{name, 0, idx})
	}
	return idx
}

// Bytes encodes the module.
func (m *Module) Bytes() []byte {
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	section := func(id byte, body []byte) {
		out = append(out, id)
		out = AppendULEB(out, uint64(len(body)))
		out = append(out, body...)
	}
	var b []byte
	b = AppendULEB(nil, uint64(len(m.Types)))
	for _, t := range m.Types {
		b = append(b, 0x60)
		b = AppendULEB(b, uint64(len(t.Params)))
		b = append(b, t.Params...)
		b = AppendULEB(b, uint64(len(t.Results)))
		b = append(b, t.Results...)
	}
	section(1, b)
	if len(m.Imports) > 0 {
		b = AppendULEB(nil, uint64(len(m.Imports)))
		for _, im := range m.Imports {
			b = AppendName(b, im.Module)
			b = AppendName(b, im.Name)
			b = append(b, 0x00)
			b = AppendULEB(b, uint64(im.Type))
		}
		section(2, b)
	}
	b = AppendULEB(nil, uint64(len(m.Funcs)))
	for _, f := range m.Funcs {
		b = AppendULEB(b, uint64(f.Type))
	}
	section(3, b)
	if !m.NoMem {
		min := m.MemMin
		if min == 0 {
			min = 1
		}
		b = []byte{1, 0x00}
		b = AppendULEB(b, uint64(min))
		section(5, b)
	}
	exports := m.Exports
	if !m.NoMem && !m.NoMemExport {
		exports = append(exports, Export{"memory", 2, 0})
	}
	b = AppendULEB(nil, uint64(len(exports)))
	for _, e := range exports {
		b = AppendName(b, e.Name)
		b = append(b, e.Kind)
		b = AppendULEB(b, uint64(e.Idx))
	}
	section(7, b)
	b = AppendULEB(nil, uint64(len(m.Funcs)))
	for _, f := range m.Funcs {
		body := append([]byte{0x00}, f.Body...) // no locals
		body = append(body, OpEnd)
		b = AppendULEB(b, uint64(len(body)))
		b = append(b, body...)
	}
	section(10, b)
	if len(m.Data) > 0 {
		b = AppendULEB(nil, uint64(len(m.Data)))
		for _, d := range m.Data {
			b = append(b, 0x00, OpI32Const)
			b = AppendSLEB(b, int64(int32(d.Offset)))
			b = append(b, OpEnd)
			b = AppendULEB(b, uint64(len(d.Bytes)))
			b = append(b, d.Bytes...)
		}
		section(11, b)
	}
	return out
}

// Instruction helpers.

// I32Const is i32.const v.
func I32Const(v int64) []byte { return AppendSLEB([]byte{OpI32Const}, int64(int32(uint32(v)))) }

// I64Const is i64.const v.
func I64Const(v int64) []byte { return AppendSLEB([]byte{OpI64Const}, v) }

// LocalGet is local.get i.
func LocalGet(i uint32) []byte { return AppendULEB([]byte{OpLocalGet}, uint64(i)) }

// Call is call f.
func Call(f uint32) []byte { return AppendULEB([]byte{OpCall}, uint64(f)) }

// Op is a run of opcodes without immediates.
func Op(b ...byte) []byte { return b }

// Load is i32.load of the constant address addr.
func Load(addr int64) []byte { return append(I32Const(addr), OpI32Load, 2, 0) }

// Store is i32.store of the constant v at the constant address addr.
func Store(addr, v int64) []byte {
	b := append(I32Const(addr), I32Const(v)...)
	return append(b, OpI32Store, 2, 0)
}

// Cat joins instruction sequences.
func Cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// I32s repeats I32 n times, for signatures.
func I32s(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = I32
	}
	return b
}

// AppendULEB appends v in unsigned LEB128.
func AppendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// AppendSLEB appends v in signed LEB128.
func AppendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// AppendName appends a length-prefixed name.
func AppendName(b []byte, s string) []byte {
	b = AppendULEB(b, uint64(len(s)))
	return append(b, s...)
}
