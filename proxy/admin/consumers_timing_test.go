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

// benchAddConsumer times POST /consumers with n consumers already
// configured. Issue 17 asks for this to be O(1); today every write clones,
// validates and compiles the whole config, so the time per operation
// grows with n (compare At10K with At100K).
func benchAddConsumer(b *testing.B, n int) {
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
	defer a.Shutdown(b.Context())
	h := a.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := fmt.Sprintf(`{"name":"new%07d","credentials":{"key_auth":[{"key":"new-key-%07d"}]}}`, i, i)
		req := httptest.NewRequest(http.MethodPost, "/consumers", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("POST /consumers: %d %s", rec.Code, rec.Body.String())
		}
	}
}

func BenchmarkAdminAddConsumerAt10K(b *testing.B)  { benchAddConsumer(b, 10_000) }
func BenchmarkAdminAddConsumerAt100K(b *testing.B) { benchAddConsumer(b, 100_000) }
