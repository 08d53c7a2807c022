package wasm

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// meteredModule instantiates the metered b in a runtime without wazero's
// termination checks, as the plugin does.
func meteredModule(t *testing.T, b []byte) (api.Module, api.MutableGlobal, api.MutableGlobal) {
	t.Helper()
	m, err := meter(b)
	if err != nil {
		t.Fatalf("meter: %v", err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	mod, err := rt.Instantiate(ctx, m)
	if err != nil {
		t.Fatalf("the metered module does not instantiate: %v", err)
	}
	fuel, ok1 := mod.ExportedGlobal(fuelExport).(api.MutableGlobal)
	stop, ok2 := mod.ExportedGlobal(stopExport).(api.MutableGlobal)
	if !ok1 || !ok2 {
		t.Fatal("the metered module does not export its fuel and stop globals")
	}
	return mod, fuel, stop
}

// TestMeterStopsLoopsAndCalls: fuel bounds a loop and a recursion without
// loops (2^40 calls, which no wall-clock check would see end), the stop
// flag ends a call at once, and a call within its fuel returns normally,
// its params and results intact (a loop with a parameter keeps its stack).
func TestMeterStopsLoopsAndCalls(t *testing.T) {
	a := &asm{NoMem: true}
	// sum(n): a loop carrying its counter as a block parameter.
	loopParam := a.Type([]byte{tI32}, []byte{tI32})
	a.Func("sum", []byte{tI32}, []byte{tI32},
		local(0),
		op(opLoop), appendULEB(nil, uint64(loopParam)),
		ci32(1), op(0x6b), // i32.sub
		op(0x22, 0), // local.tee 0
		local(0), op(opBrIf, 0),
		op(opEnd),
	)
	// tree(n): calls itself twice while n > 0; no loop.
	tree := uint32(1)
	a.Func("tree", []byte{tI32}, nil,
		local(0), op(opI32Eqz), op(opIf, blockVoid), op(opReturn), op(opEnd),
		local(0), ci32(1), op(0x6b), call(tree),
		local(0), ci32(1), op(0x6b), call(tree),
	)
	mod, fuel, stop := meteredModule(t, a.Bytes())
	ctx := context.Background()
	if got := fuel.Get(); got != startFuel {
		t.Errorf("fuel at start %d, want %d (for a start function)", got, uint64(startFuel))
	}

	fuel.Set(1000)
	res, err := mod.ExportedFunction("sum").Call(ctx, 100)
	if err != nil || len(res) != 1 || res[0] != 0 {
		t.Fatalf("sum(100) with enough fuel = %v, %v", res, err)
	}
	if left := fuel.Get(); left != 1000-101 {
		t.Errorf("fuel left %d, want %d (one per call and per iteration)", left, 1000-101)
	}
	fuel.Set(1000)
	if _, err := mod.ExportedFunction("sum").Call(ctx, 100000); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("sum(100000) with 1000 fuel: %v, want the fuel trap", err)
	}
	fuel.Set(1_000_000)
	if _, err := mod.ExportedFunction("tree").Call(ctx, 40); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("tree(40) with a million fuel: %v, want the fuel trap", err)
	}
	fuel.Set(1 << 40)
	stop.Set(1)
	if _, err := mod.ExportedFunction("sum").Call(ctx, 10); err == nil {
		t.Error("a call with the stop flag set ran")
	}
}

// TestMeterKeepsSectionsInOrder: a module with globals, exports and
// custom sections of its own stays valid, and its own globals keep their
// indices.
func TestMeterKeepsSectionsInOrder(t *testing.T) {
	a := &asm{}
	proxyBase(a)
	b := a.Bytes()
	// A custom section at the end, as debug info is.
	b = append(b, 0x00, 0x06, 0x04, 'n', 'o', 't', 'e', 0x01)
	mod, _, _ := meteredModule(t, b)
	if mod.ExportedMemory("memory") == nil {
		t.Error("the module's own exports are gone")
	}
}

// TestMeterRefusesWhatItCannotDecode: an instruction the meter does not
// know is an error, never a module left unmetered.
func TestMeterRefusesWhatItCannotDecode(t *testing.T) {
	a := &asm{NoMem: true}
	a.Func("f", nil, nil, op(0xfb, 0x00)) // a GC instruction
	if _, err := meter(a.Bytes()); err == nil || !strings.Contains(err.Error(), "unknown instruction 0xfb") {
		t.Errorf("meter = %v, want an unknown instruction error", err)
	}
	if _, err := meter([]byte("(module)")); err == nil {
		t.Error("WAT text was metered")
	}
}
