package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw bytes on a new connection and reads the answer
// status line and body (until close or timeout).
func rawExchange(t *testing.T, addr, req string, wait time.Duration) (string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	rest, _ := io.ReadAll(br)
	body := string(rest)
	if i := strings.Index(body, "\r\n\r\n"); i >= 0 {
		body = body[i+4:]
	}
	return strings.TrimSpace(status), body
}

func TestHostileClients(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
server: {max_header_bytes: 4096, read_timeout: 1s, idle_timeout: 2s}
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/"], service: a}]
`, "UP", up))
	jsonErr := func(body string, want int) {
		t.Helper()
		var e struct {
			Status int    `json:"status"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != want {
			t.Fatalf("want a JSON %d error, got %q", want, body)
		}
	}
	t.Run("malformed request line", func(t *testing.T) {
		status, body := rawExchange(t, w.Addr, "GARBAGE\r\n\r\n", 3*time.Second)
		if !strings.Contains(status, " 400 ") {
			t.Fatalf("status %q", status)
		}
		jsonErr(body, 400)
	})
	t.Run("header too large", func(t *testing.T) {
		status, body := rawExchange(t, w.Addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8000)+"\r\n\r\n", 3*time.Second)
		if !strings.Contains(status, " 431 ") {
			t.Fatalf("status %q", status)
		}
		jsonErr(body, 431)
	})
	t.Run("conflicting framing is refused", func(t *testing.T) {
		status, _ := rawExchange(t, w.Addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 3*time.Second)
		if !strings.Contains(status, " 400 ") {
			t.Fatalf("duplicate Content-Length: %q", status)
		}
	})
	t.Run("slowloris connection is cut", func(t *testing.T) {
		conn, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		_, _ = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
		// Drip one header byte at a time, never finishing.
		_ = conn.SetReadDeadline(time.Now().Add(6 * time.Second))
		go func() {
			for i := 0; i < 50; i++ {
				if _, err := conn.Write([]byte("X")); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		_, _ = io.ReadAll(conn) // returns when the gateway closes
		if d := time.Since(start); d > 4*time.Second {
			t.Fatalf("dripping connection held for %v (read_timeout 1s)", d)
		}
	})
	t.Run("still serving", func(t *testing.T) {
		if code, _, _ := get(t, newClient(w.Addr), "/static", nil); code != 200 {
			t.Fatalf("after hostile clients: %d", code)
		}
	})
}
