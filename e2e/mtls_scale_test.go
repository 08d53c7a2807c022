package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestAdminMTLSConsumerWritesAt100K: with 100,000 consumers identified by
// client certificate (mtls_auth fingerprints), adding one through the
// admin API updates mtls_auth's index instead of rebuilding it from every
// consumer (issue 17), and the certificate of a consumer written that way
// is recognised at once, and no longer once the consumer is deleted.
//
// Before, each write rebuilt the index of the 100K credentials: the build
// before this test took ~0.5 s of CPU per POST.
func TestAdminMTLSConsumerWritesAt100K(t *testing.T) {
	const n = 100_000
	ca, clientCA, cf, kf, caFile := clientAuthFiles(t)
	dir := t.TempDir()
	up := startEcho(t, "up")
	listen, adminAddr := freeAddr(t), freeAddr(t)

	var b bytes.Buffer
	fmt.Fprintf(&b, `{"listen":[{"address":%q,"tls":{"certificates":[{"cert":%q,"key":%q}],"client_auth":{"mode":"optional","ca":%q}}}],`+
		`"admin":{"listen":%q},"services":[{"name":"a","targets":[{"url":"http://%s"}]}],`+
		`"routes":[{"name":"m","paths":["/m"],"service":"a","plugins":[{"name":"mtls_auth"}]}],"consumers":[`,
		listen, cf, kf, caFile, adminAddr, up)
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fp := sha256.Sum256([]byte(strconv.Itoa(i)))
		fmt.Fprintf(&b, `{"name":"c%07d","credentials":{"mtls_auth":[{"fingerprint":"%s"}]}}`, i, hex.EncodeToString(fp[:]))
	}
	b.WriteString("]}\n")
	file := filepath.Join(dir, "weir.json")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, cmd := scaleRun(t, file, adminAddr, 120*time.Second)
	w := &weir{t: t, Admin: adminAddr}

	_, _, _ = adminRequest(t, w, "GET", "/consumers/c0000000", "", nil) // the ETag of the loaded config, once
	const writes = 10
	cpu0 := procCPU(t, cmd.Process.Pid)
	for i := range writes {
		fp := sha256.Sum256([]byte("new" + strconv.Itoa(i)))
		body := fmt.Sprintf(`{"name":"new%02d","credentials":{"mtls_auth":[{"fingerprint":"%s"}]}}`, i, hex.EncodeToString(fp[:]))
		if code, _, raw := adminRequest(t, w, "POST", "/consumers", body, nil); code != 201 {
			t.Fatalf("POST /consumers: %d %s", code, raw)
		}
	}
	perWrite := (procCPU(t, cmd.Process.Pid) - cpu0) / writes
	t.Logf("%d mtls_auth consumers: %v of CPU per POST /consumers", n, perWrite)
	if perWrite > 50*time.Millisecond {
		t.Errorf("POST /consumers at %d mtls_auth consumers took %v of CPU each; want well under 50ms", n, perWrite)
	}

	// A real certificate, written through the admin API.
	cert, fp := issueClient(t, clientCA, "someone")
	do := func() (int, string) {
		t.Helper()
		cfg := &tls.Config{ServerName: "api.test", RootCAs: ca.pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
		_, code, body, err := tlsGet(listen, cfg, "/m")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Headers map[string]string `json:"headers"`
		}
		_ = json.Unmarshal([]byte(body), &r)
		return code, r.Headers["X-Consumer-Name"]
	}
	if code, name := do(); code != 401 {
		t.Fatalf("before its consumer is written: %d %q, want 401", code, name)
	}
	if code, _, raw := adminRequest(t, w, "POST", "/consumers", fmt.Sprintf(`{"name":"holder","credentials":{"mtls_auth":[{"fingerprint":%q}]}}`, fp), nil); code != 201 {
		t.Fatalf("POST holder: %d %s", code, raw)
	}
	if code, name := do(); code != 200 || name != "holder" {
		t.Fatalf("after POST: %d, X-Consumer-Name %q; want 200 holder", code, name)
	}
	// Its fingerprint is taken: another consumer cannot claim it.
	if code, _, raw := adminRequest(t, w, "POST", "/consumers", fmt.Sprintf(`{"name":"thief","credentials":{"mtls_auth":[{"fingerprint":%q}]}}`, fp), nil); code != 400 || !bytes.Contains(raw, []byte(`share the client certificate fingerprint`)) {
		t.Fatalf("a second consumer with the same fingerprint: %d %s", code, raw)
	}
	if code, _, raw := adminRequest(t, w, "DELETE", "/consumers/holder", "", nil); code != 204 && code != 200 {
		t.Fatalf("DELETE holder: %d %s", code, raw)
	}
	if code, name := do(); code != 401 {
		t.Fatalf("after DELETE: %d %q, want 401", code, name)
	}
}
