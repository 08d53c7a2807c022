package echo

import "github.com/valyala/fasthttp"

type fasthttpServer = fasthttp.Server

func newServer(name string) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               Handler(name),
		StreamRequestBody:     true,
		NoDefaultServerHeader: true,
		MaxRequestBodySize:    1 << 20,
	}
}
