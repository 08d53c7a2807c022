package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// needTool finds a binary the test runs; missing, the test is skipped,
// except under CI=true where it fails (.ci/run installs it).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: install the Debian package %s", name, pkg)
		}
		t.Skipf("%s not found (Debian package %s)", name, pkg)
	}
	return p
}

// dashboardExprs returns every query of the Grafana dashboard (panels
// nested in rows included), with Grafana's interval variables replaced.
func dashboardExprs(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string]string{}
	var walk func([]json.RawMessage)
	walk = func(ps []json.RawMessage) {
		for _, raw := range ps {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("%s: panel %q target %s has no expr", file, p.Title, tg.RefID)
					continue
				}
				e := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "5s", "$__range", "5m").Replace(tg.Expr)
				out[fmt.Sprintf("panel %q %s", p.Title, tg.RefID)] = e
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(out) == 0 {
		t.Fatalf("%s: no panel queries", file)
	}
	return out
}

// alertExprs returns every alerting and recording rule's expression.
func alertExprs(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert+r.Record] = r.Expr
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", file)
	}
	return out
}

// promQuery runs one instant query and returns how many series it gave.
func promQuery(base, expr string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query failed: %s", r.Error)
	}
	return len(r.Data.Result), nil
}

// The shipped dashboard and alert rules, checked against a real
// Prometheus scraping a real Weir under load that exercises each panel
// and makes each alert fire: errors, a down target, an open circuit,
// slow requests, rate-limit rejections, cache hits, a reload that works
// and one that fails, a certificate close to expiry. Every panel query
// and every alert expression must return at least one series.
func TestDashboardAndAlertsAgainstPrometheus(t *testing.T) {
	prom := needTool(t, "prometheus", "prometheus")
	promtool := needTool(t, "promtool", "prometheus")
	rules, _ := filepath.Abs("../configs/prometheus/alerts.yaml")
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	panels := dashboardExprs(t, "../configs/grafana/weir.json")
	alerts := alertExprs(t, rules)

	// Upstreams: a plain one, a cacheable one, a slow one (p99 over the
	// 1s budget) and a closed port.
	plain := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	cacheable := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = io.WriteString(w, "cached")
	}))
	slow := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(1100 * time.Millisecond)
		_, _ = io.WriteString(w, "slow")
	}))
	dead := freeAddr(t)
	dir := t.TempDir()
	ca := newTestCA(t, "obs-ca")
	certPEM, keyPEM, _ := ca.issue(t, leafOpts{names: []string{"localhost"}}) // 12h left: the expiry alert fires
	certFile, keyFile := writePair(t, dir, "front", certPEM, keyPEM)
	cfg := strings.NewReplacer("PLAIN", plain, "CACHEABLE", cacheable, "SLOW", slow, "DEAD", dead,
		"TLSADDR", freeAddr(t), "CERT", certFile, "KEY", keyFile).Replace(`
listen:
  - "{{LISTEN}}"
  - {address: "TLSADDR", tls: {certificates: [{cert: "CERT", key: "KEY"}]}}
admin: {listen: "{{ADMIN}}"}
services:
  - {name: plain, targets: [{url: "http://PLAIN"}]}
  - {name: cacheable, targets: [{url: "http://CACHEABLE"}]}
  - {name: slow, targets: [{url: "http://SLOW"}]}
  - name: down
    targets: [{url: "http://DEAD"}]
    retries: 0
    health_check: {passive: {unhealthy_after: 1, healthy_after_ms: 600000}}
  - name: tripped
    targets: [{url: "http://DEAD"}]
    retries: 0
    circuit_breaker: {failure_ratio: 0.5, min_requests: 2, window: 60s, open_for: 600s}
routes:
  - {name: main, paths: ["/"], service: plain}
  - {name: broken, paths: ["/broken"], service: down}
  - {name: tripped, paths: ["/tripped"], service: tripped}
  - {name: slow, paths: ["/slow"], service: slow}
  - name: limited
    paths: ["/limited"]
    service: plain
    plugins: [{name: rate_limit, config: {rate: 1, per: 1s, burst: 1, key: ip}}]
  - name: cached
    paths: ["/cached"]
    service: cacheable
    plugins: [{name: cache}]
`)
	w := startWeir(t, cfg)

	// Prometheus, scraping every second, evaluating the rules too.
	promAddr := freeAddr(t)
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: weir
    static_configs: [{targets: [%q]}]
`, rules, w.Admin)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prom, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var promLog strings.Builder
	var logMu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) { logMu.Lock(); promLog.Write(p); logMu.Unlock() })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	base := "http://" + promAddr
	if !waitUntil(30*time.Second, 50*time.Millisecond, func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("prometheus did not get ready\n%s", promLog.String())
	}

	// Load, until the queries are done.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	loop := func(every time.Duration, paths ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(w.Addr)
			for {
				for _, p := range paths {
					req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
					req.SetRequestURI("http://" + w.Addr + p)
					_ = c.DoTimeout(req, resp, 5*time.Second)
					fasthttp.ReleaseRequest(req)
					fasthttp.ReleaseResponse(resp)
				}
				select {
				case <-stop:
					return
				case <-time.After(every):
				}
			}
		}()
	}
	loop(20*time.Millisecond, "/", "/broken", "/tripped", "/limited", "/cached")
	loop(0, "/slow")
	loop(0, "/slow")

	// A reload that works, then one that fails.
	w.write(strings.Replace(cfg, "rate: 1, per: 1s", "rate: 2, per: 1s", 1))
	w.waitVersion(2)
	if !waitUntil(5*time.Second, 50*time.Millisecond, func() bool { return w.metric(`weir_upstream_duration_seconds_count{service="plain"}`) > 0 }) {
		t.Fatal("no upstream traffic recorded")
	}
	w.write(cfg + "\nservices: [\n")
	if !waitUntil(10*time.Second, 50*time.Millisecond, func() bool { return w.metric("weir_config_last_reload_successful") == 0 }) {
		t.Fatalf("the broken config was not counted as a failed reload\n%s", w.Logs())
	}

	// Every query must give a series; the slow route needs its first
	// requests done and scraped twice, so this polls (bounded).
	all := map[string]string{}
	for k, v := range panels {
		all[k] = v
	}
	for k, v := range alerts {
		all[k] = v
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	pending := map[string]error{}
	for _, k := range names {
		pending[k] = nil
	}
	waitUntil(45*time.Second, 250*time.Millisecond, func() bool {
		for _, k := range names {
			if _, ok := pending[k]; !ok {
				continue
			}
			n, err := promQuery(base, all[k])
			if err == nil && n > 0 {
				delete(pending, k)
			} else {
				pending[k] = err
			}
		}
		return len(pending) == 0
	})
	for _, k := range names {
		if err, ok := pending[k]; ok {
			t.Errorf("%s returned no series (err %v):\n  %s", k, err, all[k])
		}
	}
	// Prometheus loaded the rules and evaluates them without error.
	resp, err := http.Get(base + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rr struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&rr)
	loaded := 0
	for _, g := range rr.Data.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	if loaded != len(alerts) {
		t.Errorf("prometheus loaded %d rules, the file has %d", loaded, len(alerts))
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
