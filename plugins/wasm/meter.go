package wasm

import (
	"errors"
	"fmt"

	"github.com/weirgw/weir/internal/wasmasm"
)

// Metering: how a runaway guest is stopped without wazero's termination
// checks (RuntimeConfig.WithCloseOnContextDone), which cost a goroutine per
// call into the guest and an exit from machine code to Go at every loop
// back-edge — most of a filter's cost per request.
//
// Instead the module is rewritten once, before it is compiled: it gets two
// mutable globals, the fuel (i64, exported as fuelExport) and a stop flag
// (i32, exported as stopExport), and at the start of every function and of
// every loop body the code
//
//	global.get $fuel; i64.const 1; i64.sub; global.set $fuel
//	global.get $fuel; i64.const 0; i64.le_s; global.get $stop; i32.or
//	if; unreachable; end
//
// The host sets the fuel before each callback. A callback that spends it
// (loop iterations and calls: work done, not time spent waiting for a CPU)
// traps at its next loop or call; the wall-clock backstop stops one that
// is slow for another reason by setting the stop flag (only the host
// writes it: a write to the fuel could be lost to the guest's own
// decrement). Every path through a wasm function that does not end passes
// a loop header or a call, so a guest cannot run on without spending fuel.

// startFuel is the fuel a module starts with, for its start function
// (which runs while it is instantiated, before the host can set any):
// about 5 s of a tight loop, the start-up callbacks' least timeout.
const startFuel = 15_000_000_000

// fuelExport and stopExport name the globals the rewritten module exports.
const (
	fuelExport = "weir.fuel"
	stopExport = "weir.stop"
)

// Section IDs (https://webassembly.github.io/spec/core/binary/modules.html).
const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secCode      = 10
	secDataCount = 12
	secTag       = 13
)

// sectionRank orders the known sections as the binary format requires;
// custom sections may appear anywhere.
func sectionRank(id byte) int {
	switch id {
	case secTag:
		return 55 // between memory (5) and global (6)
	case secDataCount:
		return 95 // between element (9) and code (10)
	default:
		return int(id) * 10
	}
}

// meter returns the module b rewritten to count fuel (see above). It
// refuses a module it cannot decode (an instruction it does not know):
// such a module could not be stopped.
func meter(b []byte) ([]byte, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary")
	}
	out := make([]byte, 0, len(b)+len(b)/8+64)
	out = append(out, b[:8]...)
	rest := b[8:]
	var importedGlobals, definedGlobals uint64
	// First pass: count the globals, to know the new one's index.
	for r := rest; len(r) > 0; {
		id, body, next, err := nextSection(r)
		if err != nil {
			return nil, err
		}
		r = next
		switch id {
		case secImport:
			n, err := countImportedGlobals(body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			importedGlobals = n
		case secGlobal:
			n, k := readULEB64(body)
			if k == 0 {
				return nil, errors.New("global section: bad count")
			}
			definedGlobals = n
		}
	}
	fuel := importedGlobals + definedGlobals
	newGlobal := []byte{0x7e, 0x01, 0x42} // mut i64 = i64.const startFuel
	newGlobal = appendSLEB(newGlobal, startFuel)
	newGlobal = append(newGlobal, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b) // mut i32 = i32.const 0
	newExport := appendName(nil, fuelExport)
	newExport = append(newExport, 0x03) // a global
	newExport = appendULEB(newExport, fuel)
	newExport = appendName(newExport, stopExport)
	newExport = append(newExport, 0x03)
	newExport = appendULEB(newExport, fuel+1)
	var wroteGlobal, wroteExport bool
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendULEB(out, uint64(len(body)))
		out = append(out, body...)
	}
	for len(rest) > 0 {
		id, body, next, err := nextSection(rest)
		if err != nil {
			return nil, err
		}
		rest = next
		if id != secCustom {
			if !wroteGlobal && sectionRank(id) > sectionRank(secGlobal) {
				emit(secGlobal, append([]byte{2}, newGlobal...))
				wroteGlobal = true
			}
			if !wroteExport && sectionRank(id) > sectionRank(secExport) {
				emit(secExport, append([]byte{2}, newExport...))
				wroteExport = true
			}
		}
		switch id {
		case secGlobal:
			n, k := readULEB64(body)
			nb := appendULEB(nil, n+2)
			nb = append(nb, body[k:]...)
			emit(id, append(nb, newGlobal...))
			wroteGlobal = true
		case secExport:
			n, k := readULEB64(body)
			if k == 0 {
				return nil, errors.New("export section: bad count")
			}
			nb := appendULEB(nil, n+2)
			nb = append(nb, body[k:]...)
			emit(id, append(nb, newExport...))
			wroteExport = true
		case secCode:
			nb, err := meterCode(body, uint32(fuel))
			if err != nil {
				return nil, err
			}
			emit(id, nb)
		default:
			emit(id, body)
		}
	}
	if !wroteGlobal {
		emit(secGlobal, append([]byte{2}, newGlobal...))
	}
	if !wroteExport {
		emit(secExport, append([]byte{2}, newExport...))
	}
	return out, nil
}

func nextSection(b []byte) (id byte, body, rest []byte, err error) {
	size, n := readULEB64(b[1:])
	if n == 0 || uint64(len(b)-1-n) < size {
		return 0, nil, nil, errors.New("malformed section header")
	}
	return b[0], b[1+n : 1+n+int(size)], b[1+n+int(size):], nil
}

// countImportedGlobals walks the import section.
func countImportedGlobals(b []byte) (uint64, error) {
	d := decoder{b: b}
	count := d.u()
	var globals uint64
	for i := uint64(0); i < count && d.err == nil; i++ {
		d.name()
		d.name()
		switch kind := d.byte(); kind {
		case 0x00: // function: type index
			d.u()
		case 0x01: // table: reftype, limits
			d.valType()
			d.limits()
		case 0x02: // memory: limits
			d.limits()
		case 0x03: // global: valtype, mutability
			d.valType()
			d.byte()
			globals++
		case 0x04: // tag: attribute, type index
			d.byte()
			d.u()
		default:
			d.fail("unknown import kind 0x%02x", kind)
		}
	}
	return globals, d.err
}

// meterCode rewrites every function body of the code section.
func meterCode(b []byte, fuel uint32) ([]byte, error) {
	check := []byte{0x23}
	check = appendULEB(check, uint64(fuel))
	check = append(check, 0x42, 0x01, 0x7d, 0x24) // i64.const 1, i64.sub, global.set
	check = appendULEB(check, uint64(fuel))
	check = append(check, 0x23)
	check = appendULEB(check, uint64(fuel))
	check = append(check, 0x42, 0x00, 0x57, 0x23) // i64.const 0, i64.le_s, global.get
	check = appendULEB(check, uint64(fuel)+1)
	check = append(check, 0x72, 0x04, 0x40, 0x00, 0x0b) // i32.or, if, unreachable, end

	d := decoder{b: b}
	count := d.u()
	out := appendULEB(make([]byte, 0, len(b)+len(b)/8), count)
	var fn []byte
	for i := uint64(0); i < count && d.err == nil; i++ {
		size := d.u()
		if d.err != nil || uint64(len(d.b)-d.i) < size {
			return nil, fmt.Errorf("code section: function %d: bad size", i)
		}
		body := d.b[d.i : d.i+int(size)]
		d.i += int(size)
		var err error
		if fn, err = meterFunc(fn[:0], body, check); err != nil {
			return nil, fmt.Errorf("code section: function %d: %w", i, err)
		}
		out = appendULEB(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if d.err != nil {
		return nil, fmt.Errorf("code section: %w", d.err)
	}
	return out, nil
}

// meterFunc appends body with check inserted at its start and after every
// loop's block type.
func meterFunc(out, body, check []byte) ([]byte, error) {
	d := decoder{b: body}
	groups := d.u()
	for i := uint64(0); i < groups && d.err == nil; i++ {
		d.u()
		d.valType()
	}
	if d.err != nil {
		return nil, fmt.Errorf("locals: %w", d.err)
	}
	out = append(out, body[:d.i]...)
	out = append(out, check...)
	from := d.i
	for d.i < len(d.b) && d.err == nil {
		op := d.byte()
		if op == 0x03 { // loop
			d.blockType()
			out = append(out, body[from:d.i]...)
			out = append(out, check...)
			from = d.i
			continue
		}
		d.instr(op)
	}
	if d.err != nil {
		return nil, d.err
	}
	return append(out, body[from:]...), nil
}

// decoder reads the binary format; the first error sticks.
type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format+" (at byte %d)", append(args, d.i)...)
	}
	d.i = len(d.b)
}

func (d *decoder) byte() byte {
	if d.i >= len(d.b) {
		d.fail("unexpected end")
		return 0
	}
	c := d.b[d.i]
	d.i++
	return c
}

func (d *decoder) skip(n int) {
	if len(d.b)-d.i < n {
		d.fail("unexpected end")
		return
	}
	d.i += n
}

// u reads an unsigned or signed LEB128 of up to 64 bits (the value is
// only meaningful for unsigned ones).
func (d *decoder) u() uint64 {
	v, n := readULEB64(d.b[d.i:])
	if n == 0 {
		d.fail("bad LEB128")
		return 0
	}
	d.i += n
	return v
}

func (d *decoder) name() { d.skip(int(d.u())) }

func (d *decoder) valType() {
	switch t := d.byte(); t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
	default:
		d.fail("unknown value type 0x%02x", t)
	}
}

func (d *decoder) limits() {
	flags := d.byte()
	d.u()
	if flags&1 != 0 {
		d.u()
	}
}

func (d *decoder) blockType() {
	if d.i >= len(d.b) {
		d.fail("unexpected end")
		return
	}
	switch d.b[d.i] {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		d.i++
	default:
		d.u() // a type index, as a signed LEB128
	}
}

func (d *decoder) memarg() {
	if align := d.u(); align&0x40 != 0 { // multi-memory: a memory index follows
		d.u()
	}
	d.u()
}

// instr skips the immediates of the instruction op (read already).
func (d *decoder) instr(op byte) {
	switch {
	case op == 0x02 || op == 0x04 || op == 0x06: // block, if, try
		d.blockType()
	case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x18: // catch, throw, rethrow, delegate
		d.u()
	case op == 0x0c || op == 0x0d: // br, br_if
		d.u()
	case op == 0x0e: // br_table
		n := d.u()
		for i := uint64(0); i <= n && d.err == nil; i++ {
			d.u()
		}
	case op == 0x10 || op == 0x12: // call, return_call
		d.u()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		d.u()
		d.u()
	case op == 0x1c: // select t*
		n := d.u()
		for i := uint64(0); i < n && d.err == nil; i++ {
			d.valType()
		}
	case op == 0x1f: // try_table
		d.blockType()
		n := d.u()
		for i := uint64(0); i < n && d.err == nil; i++ {
			switch kind := d.byte(); kind {
			case 0x00, 0x01: // catch, catch_ref: tag, label
				d.u()
				d.u()
			case 0x02, 0x03: // catch_all, catch_all_ref: label
				d.u()
			default:
				d.fail("unknown catch kind 0x%02x", kind)
			}
		}
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		d.u()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		d.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		d.u()
	case op == 0x41 || op == 0x42: // i32.const, i64.const
		d.u()
	case op == 0x43:
		d.skip(4)
	case op == 0x44:
		d.skip(8)
	case op == 0xd0: // ref.null heaptype
		d.byte()
	case op == 0xd2: // ref.func
		d.u()
	case op == 0xfc:
		d.instrFC(d.u())
	case op == 0xfd:
		d.instrFD(d.u())
	case op == 0xfe:
		d.instrFE(d.u())
	case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f, op == 0x19, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1:
		// no immediates
	default:
		d.fail("unknown instruction 0x%02x", op)
	}
}

func (d *decoder) instrFC(sub uint64) {
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init data, mem
		d.u()
		d.u()
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		d.u()
	case sub == 10, sub == 12, sub == 14: // memory.copy, table.init, table.copy
		d.u()
		d.u()
	default:
		d.fail("unknown instruction 0xfc %d", sub)
	}
}

func (d *decoder) instrFD(sub uint64) {
	switch {
	case sub <= 11, sub == 92, sub == 93: // v128 loads and stores
		d.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		d.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		d.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		d.memarg()
		d.byte()
	case sub <= 0xff:
		// arithmetic, no immediates
	default:
		d.fail("unknown instruction 0xfd %d", sub)
	}
}

func (d *decoder) instrFE(sub uint64) {
	switch {
	case sub == 3: // atomic.fence
		d.byte()
	case sub <= 2, sub >= 0x10 && sub <= 0x4e:
		d.memarg()
	default:
		d.fail("unknown instruction 0xfe %d", sub)
	}
}

// readULEB64 decodes a LEB128 of at most 10 bytes; n is 0 when b does not
// start with one. Signed LEB128s are skipped the same way.
func readULEB64(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// The encoders are the assembler's (package wasmasm), one copy.

func appendULEB(b []byte, v uint64) []byte { return wasmasm.AppendULEB(b, v) }

func appendName(b []byte, s string) []byte { return wasmasm.AppendName(b, s) }

func appendSLEB(b []byte, v int64) []byte { return wasmasm.AppendSLEB(b, v) }
