package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/fusedio"
	"github.com/weirgw/weir/internal/reuseport"
)

// TestShutdownServesTheAcceptQueue: connections still in the listening
// socket's accept queue when the server stops are taken and answered
// (with Connection: close), not reset by the close of the socket. Nobody
// accepts here, so the queue holds them for sure.
func TestShutdownServesTheAcceptQueue(t *testing.T) {
	up := startEcho(t, "e1")
	srv, err := New(mustParse(t, sub(allocConfig, "UP", up.URL)), "test.yaml", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := reuseport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Registered as Serve registers it, but not served.
	if !srv.drain.serving(fusedio.Listener{Listener: ln, Slack: time.Millisecond, Open: &srv.drain.open}) {
		t.Fatal("not serving")
	}
	var conns []net.Conn
	for range 3 {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := io.WriteString(nc, "GET /exact HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctxTimeout(5 * time.Second)) }()
	for i, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatalf("queued connection %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || !resp.Close {
			t.Fatalf("queued connection %d: status %d, Connection: close %v", i, resp.StatusCode, resp.Close)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("shutdown did not return")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond); err == nil {
		t.Fatal("the listener still accepts after shutdown")
	}
}

// TestRefuseSYN: after refuseSYN a new connection attempt gets no answer
// (its SYN is dropped, so the client retransmits it — to whichever socket
// holds the address by then), while an open connection keeps working.
func TestRefuseSYN(t *testing.T) {
	ln, err := reuseport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := refuseSYN(ln); err != nil {
		t.Fatal(err)
	}
	_, err = net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial after refuseSYN: %v, want a timeout", err)
	}
	if _, err := io.WriteString(client, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = server.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("open connection after refuseSYN: %q, %v", buf, err)
	}
}
