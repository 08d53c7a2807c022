package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/testredis"
)

func adminDo(t *testing.T, w *weir, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, _, raw := adminRequest(t, w, method, path, body, nil)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return code, m
}

const adminCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: "s3cret"}
REDIS
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/main"], service: a}]
consumers: [{name: alice, credentials: {key_auth: [{key: "alice-secret-key"}]}}]
`

func TestAdminAPI(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", "").Replace(adminCfg))
	c := newClient(w.Addr)

	// The token is required.
	resp, err := http.Get("http://" + w.Admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	// Secrets are masked in GET /config.
	code, cfg := adminDo(t, w, "GET", "/config", "")
	raw, _ := json.Marshal(cfg)
	if code != 200 || strings.Contains(string(raw), "alice-secret-key") || strings.Contains(string(raw), "s3cret") {
		t.Fatalf("GET /config leaks secrets or fails (%d): %s", code, raw)
	}
	// Add a route; it serves at once.
	code, body := adminDo(t, w, "POST", "/routes", `{"name":"added","paths":["/added"],"service":"a"}`)
	if code != 201 {
		t.Fatalf("POST /routes: %d %v", code, body)
	}
	if st, _, _ := get(t, c, "/added/x", nil); st != 200 {
		t.Fatalf("added route answers %d", st)
	}
	// An invalid change is refused with every error; the config stays.
	before := w.configVersion()
	code, body = adminDo(t, w, "POST", "/routes", `{"name":"bad","paths":["nope"],"service":"missing"}`)
	if code != 400 || len(body["errors"].([]any)) < 2 {
		t.Fatalf("invalid route: %d %v", code, body)
	}
	if w.configVersion() != before {
		t.Fatal("refused change bumped the config version")
	}
	// Duplicate names conflict.
	if code, _ = adminDo(t, w, "POST", "/routes", `{"name":"added","paths":["/x"],"service":"a"}`); code != 409 {
		t.Fatalf("duplicate route: %d", code)
	}
	// Service discovery: register and deregister a target.
	up2 := startEcho(t, "e2")
	code, body = adminDo(t, w, "POST", "/services/a/targets", `{"url":"http://`+up2+`"}`)
	if code != 201 {
		t.Fatalf("register target: %d %v", code, body)
	}
	code, body = adminDo(t, w, "GET", "/services/a/health", "")
	if code != 200 || len(body["targets"].([]any)) != 2 {
		t.Fatalf("health: %d %v", code, body)
	}
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		_, _, h := get(t, c, "/main", nil)
		seen[string(h.Peek("X-Echo-Server"))] = true
	}
	if !seen["e1"] || !seen["e2"] {
		t.Fatalf("round robin over the registered target: %v", seen)
	}
	if code, _ = adminDo(t, w, "DELETE", "/services/a/targets/"+up2, ""); code != 200 {
		t.Fatalf("deregister: %d", code)
	}
	// Delete the route.
	if code, _ = adminDo(t, w, "DELETE", "/routes/added", ""); code != 200 {
		t.Fatalf("DELETE route: %d", code)
	}
	if st, _, _ := get(t, c, "/added/x", nil); st != 404 {
		t.Fatalf("deleted route answers %d", st)
	}
	// Metrics: request counters and `le` histograms.
	req, _ := http.NewRequest("GET", "http://"+w.Admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`weir_requests_total{route="main",service="a",status="200"}`,
		`weir_request_duration_seconds_bucket{route="main",le="0.005"}`,
		`weir_proxy_overhead_seconds_bucket{route="main",le="+Inf"}`,
		`weir_upstream_duration_seconds_count{service="a"}`,
		`weir_config_reloads_total{result="success"}`,
		`weir_upstream_target_healthy{service="a"`,
	} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Status page renders.
	req, _ = http.NewRequest("GET", "http://"+w.Admin+"/", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if presp.StatusCode != 200 || !bytes.Contains(page, []byte("<canvas")) {
		t.Fatalf("status page: %d", presp.StatusCode)
	}
}

// TestClusterSync: with redis configured, an admin change on one node
// reaches the other.
func TestClusterSync(t *testing.T) {
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	cfg := strings.NewReplacer("UP", up, "REDIS", `redis: {addrs: ["`+rs.Addr+`"]}`).Replace(adminCfg)
	a := startWeir(t, cfg)
	b := startWeir(t, cfg)
	code, body := adminDo(t, a, "POST", "/routes", `{"name":"shared","paths":["/shared"],"service":"a"}`)
	if code != 201 {
		t.Fatalf("POST on node a: %d %v", code, body)
	}
	cb := newClient(b.Addr)
	var st int
	if !waitUntil(5*time.Second, 50*time.Millisecond, func() bool {
		st, _, _ = get(t, cb, "/shared", nil)
		return st == 200
	}) {
		t.Fatalf("node b never got the route (last %d)\n%s", st, b.Logs())
	}
}
