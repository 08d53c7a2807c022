package admin

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	_ "github.com/weirgw/weir/plugins/key_auth"
	"github.com/weirgw/weir/proxy"
	"github.com/weirgw/weir/proxy/config"
)

// benchAdmin is an admin API over a config of n key_auth consumers
// (c0000000 ...) and one route.
func benchAdmin(b *testing.B, n int) http.Handler {
	var doc bytes.Buffer
	doc.WriteString(`{"listen":["127.0.0.1:0"],"services":[{"name":"a","targets":[{"url":"http://127.0.0.1:1"}]}],` +
		`"routes":[{"name":"keyed","paths":["/keyed"],"service":"a","plugins":[{"name":"key_auth"}]}],"consumers":[`)
	for i := range n {
		if i > 0 {
			doc.WriteByte(',')
		}
		fmt.Fprintf(&doc, `{"name":"c%07d","credentials":{"key_auth":[{"key":"key-%07d"}]}}`, i, i)
	}
	doc.WriteString("]}")
	cfg, err := config.ParseEnv("bench.json", doc.Bytes(), nil)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := proxy.New(cfg, "bench.json", log)
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(srv, Options{Listen: "127.0.0.1:0", Log: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(b.Context()) })
	return a.Handler()
}

func do(b *testing.B, h http.Handler, method, path, body string, want int) {
	req := httptest.NewRequest(method, path, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
}

func newConsumer(i int) string {
	return fmt.Sprintf(`{"name":"new%07d","credentials":{"key_auth":[{"key":"new-key-%07d"}]}}`, i, i)
}

// benchAddConsumer times POST /consumers with n consumers already
// configured. Issue 17 asks for it to be O(1): the time, bytes and
// allocations per write must not grow with n (compare At10K with
// At100K). The first write after start is made before the timer: it
// computes the running config's ETag, once, from every consumer.
func benchAddConsumer(b *testing.B, n int) {
	h := benchAdmin(b, n)
	do(b, h, http.MethodPost, "/consumers", newConsumer(-1), http.StatusCreated)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(b, h, http.MethodPost, "/consumers", newConsumer(i), http.StatusCreated)
	}
}

// benchReplaceConsumer times PUT /consumers/NAME of an existing consumer
// (a new key) and DELETE of one, which copy the list of consumers once.
func benchReplaceConsumer(b *testing.B, n int) {
	h := benchAdmin(b, n)
	do(b, h, http.MethodPut, "/consumers/c0000000", `{"credentials":{"key_auth":[{"key":"warm"}]}}`, http.StatusOK)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("c%07d", i%n)
		do(b, h, http.MethodPut, "/consumers/"+name, fmt.Sprintf(`{"credentials":{"key_auth":[{"key":"put-%d"}]}}`, i), http.StatusOK)
	}
}

// benchDeleteConsumer times DELETE /consumers/NAME followed by the POST
// that adds the consumer back (at the end of the list), so that every
// run deletes from a list of n.
func benchDeleteConsumer(b *testing.B, n int) {
	h := benchAdmin(b, n)
	do(b, h, http.MethodPut, "/consumers/c0000000", `{"credentials":{"key_auth":[{"key":"warm"}]}}`, http.StatusOK)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("c%07d", 1+i%(n-1))
		do(b, h, http.MethodDelete, "/consumers/"+name, "", http.StatusOK)
		do(b, h, http.MethodPost, "/consumers", fmt.Sprintf(`{"name":%q,"credentials":{"key_auth":[{"key":"del-%d"}]}}`, name, i), http.StatusCreated)
	}
}

func BenchmarkAdminDeleteConsumerAt10K(b *testing.B)   { benchDeleteConsumer(b, 10_000) }
func BenchmarkAdminDeleteConsumerAt100K(b *testing.B)  { benchDeleteConsumer(b, 100_000) }
func BenchmarkAdminAddConsumerAt10K(b *testing.B)      { benchAddConsumer(b, 10_000) }
func BenchmarkAdminAddConsumerAt100K(b *testing.B)     { benchAddConsumer(b, 100_000) }
func BenchmarkAdminReplaceConsumerAt10K(b *testing.B)  { benchReplaceConsumer(b, 10_000) }
func BenchmarkAdminReplaceConsumerAt100K(b *testing.B) { benchReplaceConsumer(b, 100_000) }
