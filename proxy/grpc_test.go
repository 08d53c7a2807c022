package proxy

import (
	"net/http"
	"testing"
	"time"
)

func TestGRPCTimeoutParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"100m": 100 * time.Millisecond, "2S": 2 * time.Second, "1H": time.Hour, "3M": 3 * time.Minute,
		"5u": 5 * time.Microsecond, "7n": 7, "99999999m": 99999999 * time.Millisecond,
	} {
		if got, ok := grpcTimeout([]byte(in)); !ok || got != want {
			t.Errorf("grpcTimeout(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	// Malformed values are ignored (the service's timeout stands).
	for _, in := range []string{"", "m", "10", "10x", "-1S", "123456789S", "1.5S", " 1S"} {
		if _, ok := grpcTimeout([]byte(in)); ok {
			t.Errorf("grpcTimeout(%q) accepted", in)
		}
	}
}

func TestGRPCCodeOf(t *testing.T) {
	for status, code := range map[int]int{
		http.StatusUnauthorized: 16, http.StatusForbidden: 7, http.StatusNotFound: 12,
		http.StatusTooManyRequests: 8, http.StatusBadGateway: 14, http.StatusServiceUnavailable: 14,
		http.StatusGatewayTimeout: 4, http.StatusBadRequest: 13, http.StatusTeapot: 2,
	} {
		if got := grpcCodeOf(status); got != code {
			t.Errorf("grpcCodeOf(%d) = %d, want %d", status, got, code)
		}
	}
}

func TestGRPCMessageEncoding(t *testing.T) {
	if got := grpcPercentEncode("no route: 100% ü\n"); got != "no route: 100%25 %C3%BC%0A" {
		t.Errorf("got %q", got)
	}
	if got := gatewayMessage([]byte(`{"status":429,"error":"rate limit exceeded","request_id":"x"}`), 429); got != "rate limit exceeded" {
		t.Errorf("got %q", got)
	}
	if got := gatewayMessage([]byte("not json"), 503); got != "Service Unavailable" {
		t.Errorf("got %q", got)
	}
	for ct, want := range map[string]bool{"application/grpc": true, "application/grpc+proto": true,
		"application/grpc;charset=x": true, "application/grpc-web": false, "application/json": false, "": false} {
		if isGRPC(ct) != want {
			t.Errorf("isGRPC(%q) = %v", ct, !want)
		}
	}
}
