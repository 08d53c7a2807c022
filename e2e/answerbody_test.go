package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// startSizedBackend answers GET /n/SIZE/TAG with SIZE bytes, each the
// letter TAG picks ('a' + TAG % 26), so that every answer can be told
// apart from the others.
func startSizedBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.Path, "/") // "", "n", SIZE, TAG
		size, _ := strconv.Atoi(parts[2])
		tag, _ := strconv.Atoi(parts[3])
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write(bytes.Repeat([]byte{byte('a' + tag%26)}, size))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// startSizedWeir runs the gateway with one route to a startSizedBackend.
func startSizedWeir(t *testing.T) *weir {
	t.Helper()
	return startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: all, paths: ["/"], service: a}]
`, "UP", startSizedBackend(t)))
}

func sizedBody(size, tag int) string { return strings.Repeat(string(rune('a'+tag%26)), size) }

// TestLargeAnswersAfterSmallOnesAllocateNothing: a 10 KiB answer costs the
// gateway no allocation even after tens of thousands of small ones. The
// body buffer came from fasthttp's pool, which keeps only the sizes most
// answers had lately: after 42,000 small answers it dropped every 10 KiB
// buffer once used, so each 10 KiB answer allocated one (and the
// collections that followed made it cost twice the CPU of the same
// answer before). Counted with the Go runtime's own malloc counter.
func TestLargeAnswersAfterSmallOnesAllocateNothing(t *testing.T) {
	w := startSizedWeir(t)
	c := newClient(w.Addr)
	run := func(n, size int) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n / 4 {
					tag := g*n + i
					code, body, _ := get(t, c, fmt.Sprintf("/n/%d/%d", size, tag), nil)
					if code != 200 || body != sizedBody(size, tag) {
						t.Errorf("GET %d bytes #%d: %d, %d bytes, want 200 and its own body", size, tag, code, len(body))
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	run(400, 10<<10) // warm the pools and connections
	run(44000, 64)   // past fasthttp's pool calibration (42,000 uses)
	run(400, 10<<10)
	const n = 4000
	before := gatewayMallocs(t, w)
	run(n, 10<<10)
	per := (gatewayMallocs(t, w) - before) / n
	t.Logf("allocations per 10 KiB answer after 44,000 small ones: %.2f", per)
	if per > 0.5 {
		t.Fatalf("a 10 KiB answer costs %.2f allocations after a spell of small ones, want none", per)
	}
}

// TestLargeAnswersPipelinedKeepTheirBodies: answers whose bodies live in
// a buffer the client connection gives back after writing them stay
// whole and in order when requests are pipelined (the next request is
// already read when the answer is written) and when keep-alive
// connections run side by side.
func TestLargeAnswersPipelinedKeepTheirBodies(t *testing.T) {
	w := startSizedWeir(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", w.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			for round := range 50 {
				// Three pipelined requests: 10 KiB, 5 KiB, 16 KiB answers.
				var reqs bytes.Buffer
				sizes := []int{10 << 10, 5 << 10, 16 << 10}
				for k, size := range sizes {
					fmt.Fprintf(&reqs, "GET /n/%d/%d HTTP/1.1\r\nHost: x\r\n\r\n", size, g*1000+round*3+k)
				}
				if _, err := nc.Write(reqs.Bytes()); err != nil {
					t.Error(err)
					return
				}
				for k, size := range sizes {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Errorf("conn %d round %d answer %d: %v", g, round, k, err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || string(body) != sizedBody(size, g*1000+round*3+k) {
						t.Errorf("conn %d round %d answer %d: %d, %d bytes (%v), want 200 and its own %d bytes", g, round, k, resp.StatusCode, len(body), err, size)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
