package e2e

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLuaBodyFilterLiteralGsub: body_filter's gsub of a literal by a
// literal (replaced in one pass, plugins/lua gsubPlain) gives Lua's
// results through the real binary, longer, shorter and as long as the
// pattern; an answer it leaves unchanged (returned as it came, not
// copied back) reaches the client intact; answers in turn on one
// client connection do not mix. A long answer rewritten byte for byte
// goes through the word replacement (eight bytes at a time, then
// bytes: 1,211 bytes cover both).
func TestLuaBodyFilterLiteralGsub(t *testing.T) {
	long := strings.Repeat("xbyb\x00b\x80b", 150) + "bxbxbxbxbxb"
	longWant := strings.ReplaceAll(long, "b", "B")
	bodies := map[string]string{
		"/g/long":   long,
		"/g/grow":   "a-needle-b-needle-c",
		"/g/shrink": "<<x>><<y>>",
		"/g/same":   "abcabcabc",
		"/g/none":   "nothing to see here",
	}
	up := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			head, err := readHead(br)
			if err != nil {
				return
			}
			b, ok := bodies[strings.Fields(head)[1]]
			if !ok {
				_, _ = c.Write([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
				continue
			}
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n" + b))
		}
	})
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://`+up+`"}], retries: 0}]
routes:
  - name: g
    paths: ["/g/"]
    service: a
    plugins:
      - name: lua
        config:
          source: |
            function body_filter(body)
              local out, n = body:gsub("needle", "pin")
              out = out:gsub("<<", "", 3)
              out = out:gsub("b", "B")
              out = out:gsub("c", "CC", 2)
              return out
            end
`)
	c, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tt := range []struct{ path, want string }{
		{"/g/grow", "a-pin-B-pin-CC"},
		{"/g/none", "nothing to see here"},
		{"/g/shrink", "x>>y>>"},
		{"/g/same", "aBCCaBCCaBc"},
		{"/g/none", "nothing to see here"},
		{"/g/grow", "a-pin-B-pin-CC"},
		{"/g/long", longWant},
		{"/g/none", "nothing to see here"},
	} {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		resp, body, err := connExchange(c, br, "GET "+tt.path+" HTTP/1.1\r\nHost: gw\r\n\r\n")
		if resp == nil || err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if resp.StatusCode != 200 || body != tt.want || resp.Header.Get("Content-Length") != strconv.Itoa(len(tt.want)) {
			t.Errorf("%s: %d Content-Length %q body %q, want 200 %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Length"), body, tt.want)
		}
	}
}
