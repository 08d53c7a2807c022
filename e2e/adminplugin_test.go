package e2e

import (
	"strings"
	"testing"
)

// TestPluginAdminEndpoint: an admin endpoint a plugin registers through
// sdk.RegisterAdmin (the cache's purge API) is served by the real binary,
// behind the admin token, with the plugin's answers for good and bad
// bodies.
func TestPluginAdminEndpoint(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", "").Replace(adminCfg))
	code, hdr, body := adminRequest(t, w, "POST", "/cache/purge", `{"url":"http://example.com/a"}`, nil)
	if code != 200 || string(body) != `{"purged":0}` || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("purge: %d %q (%s), want 200 {\"purged\":0} as JSON", code, body, hdr.Get("Content-Type"))
	}
	code, _, body = adminRequest(t, w, "POST", "/cache/purge", `{"url":"a","tag":"b"}`, nil)
	if code != 400 || !strings.Contains(string(body), "exactly one of url, prefix or tag") {
		t.Fatalf("purge with two fields: %d %s, want 400 naming the fix", code, body)
	}
	code, _, _ = adminRequest(t, w, "POST", "/cache/purge", `{"url":"http://example.com/a"}`, map[string]string{"Authorization": "Bearer wrong"})
	if code != 401 {
		t.Fatalf("purge with a wrong token: %d, want 401", code)
	}
}
