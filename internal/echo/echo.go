// Package echo is Weir's demo upstream: it answers every request with a
// JSON description of what it received (method, path, query, headers, body
// size), which is what `make run`, the tests and the benchmarks need to see
// what the gateway forwarded.
package echo

import (
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// Reply is what the echo server answers.
type Reply struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query,omitempty"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body,omitempty"`
	BodyLen int               `json:"body_len"`
	Server  string            `json:"server,omitempty"`
}

// Handler answers with a Reply. name is reported in the Reply and in an
// X-Echo-Server header so tests can tell targets apart. Special paths:
//
//	/healthz           200 "ok"
//	/status/{code}     answer with that status
//	/sleep/{ms}        wait, then echo
//	/bytes/{n}         n bytes of 'x' (Content-Length)
//	/static            a fixed 64-byte body (benchmarks)
//	/static1k          a fixed 1 KiB body (benchmarks)
func Handler(name string) fasthttp.RequestHandler {
	small := make([]byte, 64)
	big := make([]byte, 1024)
	for i := range small {
		small[i] = 'x'
	}
	for i := range big {
		big[i] = 'x'
	}
	return func(rc *fasthttp.RequestCtx) {
		rc.Response.Header.Set("X-Echo-Server", name)
		p := string(rc.Path())
		switch {
		case p == "/healthz":
			rc.SetBodyString("ok")
			return
		case p == "/static":
			rc.SetContentType("text/plain")
			rc.SetBody(small)
			return
		case p == "/static1k":
			rc.SetContentType("text/plain")
			rc.SetBody(big)
			return
		case len(p) > 8 && p[:8] == "/status/":
			code, err := strconv.Atoi(p[8:])
			if err == nil && code >= 200 && code < 600 {
				rc.SetStatusCode(code)
			}
		case len(p) > 7 && p[:7] == "/sleep/":
			if ms, err := strconv.Atoi(p[7:]); err == nil && ms > 0 && ms <= 60000 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
		case len(p) > 7 && p[:7] == "/bytes/":
			if n, err := strconv.Atoi(p[7:]); err == nil && n >= 0 && n <= 1<<30 {
				rc.SetContentType("application/octet-stream")
				rc.SetBodyStream(&repeatReader{left: n}, n)
				return
			}
		}
		r := Reply{
			Method:  string(rc.Method()),
			Path:    p,
			Query:   string(rc.URI().QueryString()),
			Host:    string(rc.Host()),
			Headers: map[string]string{},
			Server:  name,
		}
		for k, v := range rc.Request.Header.All() {
			r.Headers[string(k)] = string(v)
		}
		if rc.Request.IsBodyStream() {
			n, _ := copyCount(rc.Request.BodyStream())
			r.BodyLen = n
		} else {
			r.BodyLen = len(rc.Request.Body())
			if r.BodyLen <= 4096 {
				r.Body = string(rc.Request.Body())
			}
		}
		b, _ := json.Marshal(r)
		rc.SetContentType("application/json")
		rc.SetBody(b)
	}
}

type repeatReader struct{ left int }

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, ioEOF
	}
	n := len(p)
	if n > r.left {
		n = r.left
	}
	for i := 0; i < n; i++ {
		p[i] = 'x'
	}
	r.left -= n
	return n, nil
}
