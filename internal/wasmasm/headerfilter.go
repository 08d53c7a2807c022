package wasmasm

// HeaderFilter returns a hand-written Proxy-Wasm (ABI 0.2.1) HTTP filter
// that adds the request header reqName: reqValue and sets the response
// header respName: respValue, as the Go example (plugins/wasm/examples/
// headers) does with request_headers and response_headers configured.
// It has no language runtime inside: each callback is a few
// instructions, so running it measures what the gateway's wasm plugin
// costs per request. In the text format:
//
//	(module
//	  (import "env" "proxy_add_header_map_value"
//	    (func $add (param i32 i32 i32 i32 i32) (result i32)))
//	  (import "env" "proxy_replace_header_map_value"
//	    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
//	  (memory (export "memory") 1)
//	  (data (i32.const 64) "<reqName><reqValue><respName><respValue>")
//	  (func (export "proxy_abi_version_0_2_1"))
//	  ;; The host writes what the guest asks for at one fixed scratch
//	  ;; address; this filter asks for nothing, so it only checks the size.
//	  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
//	    (if (i32.gt_u (local.get $size) (i32.const 61440)) (then unreachable))
//	    (i32.const 4096))
//	  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
//	  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
//	  (func (export "proxy_on_context_create") (param i32 i32))
//	  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
//	    (drop (call $add (i32.const 0) ;; request headers
//	      (i32.const 64) (i32.const <len reqName>)
//	      (i32.const <64+len reqName>) (i32.const <len reqValue>)))
//	    (i32.const 0)) ;; Continue
//	  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
//	    (drop (call $replace (i32.const 2) ;; response headers
//	      (i32.const <...>) (i32.const <len respName>)
//	      (i32.const <...>) (i32.const <len respValue>)))
//	    (i32.const 0)))
//
// The four strings together must fit in 4 000 bytes.
func HeaderFilter(reqName, reqValue, respName, respValue string) []byte {
	const (
		base         = 64
		scratch      = 4096
		maxAlloc     = 61440
		mapRequest   = 0
		mapResponse  = 2
		continueReq  = 0
		opI32GtU     = 0x4b
		stringsLimit = scratch - base
	)
	if len(reqName)+len(reqValue)+len(respName)+len(respValue) > stringsLimit {
		panic("wasmasm: HeaderFilter strings longer than 4000 bytes")
	}
	var m Module
	add := m.Import("env", "proxy_add_header_map_value", I32s(5), I32s(1))
	replace := m.Import("env", "proxy_replace_header_map_value", I32s(5), I32s(1))
	data := reqName + reqValue + respName + respValue
	m.Data = append(m.Data, Data{Offset: base, Bytes: []byte(data)})
	at := int64(base)
	str := func(s string) []byte { // i32.const addr, i32.const len
		b := Cat(I32Const(at), I32Const(int64(len(s))))
		at += int64(len(s))
		return b
	}
	rk, rv, sk, sv := str(reqName), str(reqValue), str(respName), str(respValue)
	m.Func("proxy_abi_version_0_2_1", nil, nil)
	m.Func("proxy_on_memory_allocate", I32s(1), I32s(1),
		LocalGet(0), I32Const(maxAlloc), Op(opI32GtU, OpIf, BlockVoid, OpUnreachable, OpEnd),
		I32Const(scratch))
	m.Func("proxy_on_vm_start", I32s(2), I32s(1), I32Const(1))
	m.Func("proxy_on_configure", I32s(2), I32s(1), I32Const(1))
	m.Func("proxy_on_context_create", I32s(2), nil)
	m.Func("proxy_on_request_headers", I32s(3), I32s(1),
		I32Const(mapRequest), rk, rv, Call(add), Op(OpDrop), I32Const(continueReq))
	m.Func("proxy_on_response_headers", I32s(3), I32s(1),
		I32Const(mapResponse), sk, sv, Call(replace), Op(OpDrop), I32Const(continueReq))
	return m.Bytes()
}
