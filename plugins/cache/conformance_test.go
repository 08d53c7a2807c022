//go:build conformance

// The public HTTP cache test suite (npm package http-cache-tests) run
// against the plugin behind a minimal stand-in for Weir's proxy: the
// plugin's OnRequest, a fasthttp forward to the suite's origin server,
// OnResponse, with hop-by-hop fields removed as the proxy does.
//
//	npm install --prefix /tmp/ct http-cache-tests@0.4.5
//	CACHE_TESTS_DIR=/tmp/ct/node_modules/http-cache-tests \
//	  go test -tags conformance -run TestConformance -v ./plugins/cache/
//
// It needs node and prints every required test that fails.
package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

func TestConformance(t *testing.T) {
	dir := os.Getenv("CACHE_TESTS_DIR")
	if dir == "" {
		t.Fatal("set CACHE_TESTS_DIR to node_modules/http-cache-tests")
	}
	originPort := freeTCPPort(t)
	origin := exec.Command("node", "server/server.mjs")
	origin.Dir = dir
	origin.Env = append(os.Environ(), "npm_config_port="+strconv.Itoa(originPort), "npm_config_protocol=http",
		"npm_config_pidfile="+filepath.Join(t.TempDir(), "pid"))
	if err := origin.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = origin.Process.Kill(); _ = origin.Wait() }()
	waitPort(t, originPort)

	raw := os.Getenv("CACHE_CONFIG")
	if raw == "" {
		raw = `{}` // the defaults, as scripts/cache-conformance.sh runs them
	}
	flt, err := New(&sdk.Build{Route: "conformance"}, json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	f := flt.(*Filter)
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	hc := &fasthttp.HostClient{Addr: "127.0.0.1:" + strconv.Itoa(originPort), ReadTimeout: 10 * time.Second}
	srv := &fasthttp.Server{NoDefaultDate: true, Handler: func(rc *fasthttp.RequestCtx) {
		c := sdk.AcquireCtx(rc)
		defer sdk.ReleaseCtx(c)
		c.SetPath(rc.Request.URI().Path())
		st, err := f.OnRequest(c)
		if err != nil {
			sdk.WriteError(rc, 500, err.Error(), nil)
		} else if st == sdk.Continue {
			if err := hc.Do(&rc.Request, &rc.Response); err != nil {
				sdk.WriteError(rc, 502, "upstream failed", nil)
			} else {
				stripHopByHop(&rc.Response.Header)
			}
		}
		_ = f.OnResponse(c)
		c.ApplyResponseHeaders()
		f.OnLog(c)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown()

	cli := exec.Command("node", "--no-warnings", "cli.mjs")
	cli.Dir = dir
	cli.Env = append(os.Environ(), "npm_config_base=http://"+ln.Addr().String(), "npm_package_config_id=")
	if id := os.Getenv("CACHE_TEST_ID"); id != "" {
		cli.Env = append(cli.Env, "npm_config_id="+id)
		out, _ := cli.CombinedOutput()
		t.Log(string(out))
		return
	}
	var stderr bytes.Buffer
	cli.Stderr = &stderr
	out, err := cli.Output()
	if err != nil {
		t.Fatalf("cli: %v\n%s", err, stderr.String())
	}
	var results map[string]any
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("cli output: %v\n%.2000s", err, out)
	}
	required := requiredTests(t, dir)
	pass := 0
	var fails []string
	for _, id := range required {
		if results[id] == true {
			pass++
		} else {
			fails = append(fails, fmt.Sprintf("%s: %v", id, results[id]))
		}
	}
	sort.Strings(fails)
	t.Logf("required tests passed: %d/%d", pass, len(required))
	for _, l := range fails {
		t.Log("FAIL " + l)
	}
	// 149 with the defaults, 151 with cache_set_cookie (README,
	// Conformance); a little room for the suite's timing.
	if pass < 147 {
		t.Errorf("passed %d required tests, want >= 147", pass)
	}
}

// requiredTests lists the suite's required tests the way cache-tests.fyi
// counts them for a reverse proxy (kind required, not browser-only,
// surrogate-control suite excluded).
func requiredTests(t *testing.T, dir string) []string {
	script := `import tests from './tests/index.mjs'
const out = []
for (const s of tests) for (const t of s.tests) {
  if (t.browser_only) continue
  if (t.kind === undefined || t.kind === 'required') out.push(t.id)
}
console.log(JSON.stringify(out))`
	cmd := exec.Command("node", "--input-type=module", "-e", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := json.Unmarshal(out, &ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

func stripHopByHop(h *fasthttp.ResponseHeader) {
	var listed []string
	for k, v := range h.All() {
		if strings.EqualFold(string(k), "Connection") {
			for _, n := range strings.Split(string(v), ",") {
				listed = append(listed, strings.TrimSpace(n))
			}
		}
	}
	for _, n := range append(listed, "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding",
		"Upgrade", "Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization") {
		if n != "" {
			h.Del(n)
		}
	}
}

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("origin did not start")
}
