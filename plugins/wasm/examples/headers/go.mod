// The example guest is its own module: it is built for GOOS=wasip1
// GOARCH=wasm, needs nothing outside the standard library, and must not
// pull anything into the gateway's go.mod.
module github.com/weirgw/weir/plugins/wasm/examples/headers

go 1.24
