package echo

import "github.com/valyala/fasthttp"

// Server builds an echo server with streaming request bodies, so large
// uploads are counted, not buffered.
func Server(name string) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               Handler(name),
		StreamRequestBody:     true,
		NoDefaultServerHeader: true,
		MaxRequestBodySize:    1 << 20,
	}
}
