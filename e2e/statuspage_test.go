package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"
)

// chromiumPath finds a Chromium for the browser tests. Without one the test
// fails under CI (CI=true: .ci/run installs it) and is skipped, loudly,
// elsewhere.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: the status page browser test needs it (apt-get install -y chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED, NOT TESTED: " + msg)
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// tab context bounded by timeout.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// waitText polls the text of sel until ok accepts it.
func waitText(t *testing.T, ctx context.Context, sel, what string, ok func(string) bool) string {
	t.Helper()
	var txt string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if txt, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel))); err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		if ok(txt) {
			return txt
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s reads %q", what, sel, txt)
	return ""
}

// waitRow polls the rows of the table body sel until the row holding key
// has cells ok accepts, and returns them.
func waitRow(t *testing.T, ctx context.Context, sel, key, what string, ok func([]string) bool) []string {
	t.Helper()
	var cells []string
	waitText(t, ctx, sel, what, func(s string) bool {
		cells = nil
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, key) {
				cells = strings.Split(line, "\t")
				for i := range cells {
					cells[i] = strings.TrimSpace(cells[i])
				}
				return ok(cells)
			}
		}
		return false
	})
	return cells
}

// TestStatusPageWithToken opens the status page of a gateway that has an
// admin token in a real (headless) browser: the page loads without the
// token and asks for it, a wrong token is refused with a message and the
// form again, and the right one shows the routes with their latency, the
// unmatched requests, the targets' health and the config version, all
// fetched with the token from the admin API: p50 and p99 and the error
// rate per route, the 404s and 405s, the targets' health and circuit
// state, the config version and the last reload's result (ok, then
// failed after a broken file).
func TestStatusPageWithToken(t *testing.T) {
	ctx := newBrowser(t, 90*time.Second)
	up := startEcho(t, "one")
	gone := freeAddr(t) // nothing listens: every request to it is a 502
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: s3cret}
services:
  - name: users
    targets: [{url: "http://`+up+`"}]
    circuit_breaker: {}
  - name: gone
    targets: [{url: "http://`+gone+`"}]
    retries: 0
routes:
  - {name: users-api, paths: ["/users"], methods: [GET], service: users}
  - {name: down, paths: ["/down"], service: gone}
`)
	c := newClient(w.Addr)
	send := func(method, path string, want, n int) {
		t.Helper()
		for range n {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.Header.SetMethod(method)
			req.SetRequestURI("http://" + w.Addr + path)
			if err := c.DoTimeout(req, resp, 5*time.Second); err != nil || resp.StatusCode() != want {
				t.Fatalf("%s %s: %d %v %s, want %d", method, path, resp.StatusCode(), err, resp.Body(), want)
			}
			fasthttp.ReleaseRequest(req)
			fasthttp.ReleaseResponse(resp)
		}
	}
	send("GET", "/users/1", 200, 5)
	send("GET", "/nowhere", 404, 3)
	send("DELETE", "/users/1", 405, 2)
	send("GET", "/down", 502, 4)

	// The shell is open; what it shows is not.
	for path, want := range map[string]int{"/": 200, "/stats": 401, "/status": 401, "/services/users/health": 401} {
		resp, err := http.Get("http://" + w.Admin + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without the token: %d, want %d", path, resp.StatusCode, want)
		}
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+w.Admin+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#token"), "wrong"),
		chromedp.Click(chromedp.CSS("#login button")),
	); err != nil {
		t.Fatalf("opening the page and sending a wrong token: %v", err)
	}
	waitText(t, ctx, "#login-error", "a wrong token is refused with a message",
		func(s string) bool { return strings.Contains(s, "refused") })
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
		t.Fatal(err)
	}
	pageHidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('page').hidden`))
	if err != nil {
		t.Fatal(err)
	}
	if !pageHidden {
		t.Fatal("the page shows data after a wrong token")
	}

	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), "s3cret"),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#page")),
	); err != nil {
		t.Fatalf("logging in with the right token: %v", err)
	}
	// Each route's row: route, paths, service, total, req/s, 2xx, 4xx,
	// 5xx, error rate, p50, p99.
	latency := regexp.MustCompile(`^[0-9.]+ ms$`)
	users := waitRow(t, ctx, "#routes tbody", "users-api", "the route's counts, error rate and latency are shown", func(c []string) bool {
		return len(c) == 11 && c[3] == "5" && c[5] == "5" && c[7] == "0" && c[8] == "0.0 %" && latency.MatchString(c[9]) && latency.MatchString(c[10])
	})
	t.Logf("users-api shown: p50 %s, p99 %s, error rate %s", users[9], users[10], users[8])
	waitRow(t, ctx, "#routes tbody", "down", "a failing route's 5xx and error rate are shown", func(c []string) bool {
		return len(c) == 11 && c[3] == "4" && c[7] == "4" && c[8] == "100.0 %"
	})
	waitText(t, ctx, "#unmatched-404", "the 3 unmatched requests are counted", func(s string) bool { return s == "3" })
	waitText(t, ctx, "#unmatched-405", "the 2 wrong-method requests are counted", func(s string) bool { return s == "2" })
	// Each target's row: service, target, weight, healthy, circuit, ...
	waitRow(t, ctx, "#targets tbody", up, "the target's health and circuit are shown", func(c []string) bool {
		return len(c) == 7 && c[0] == "users" && c[3] == "healthy" && c[4] == "closed"
	})
	want := strconv.Itoa(w.configVersion())
	waitText(t, ctx, "#config-version", "the config version is shown", func(s string) bool { return s == want })
	waitText(t, ctx, "#last-reload", "the last reload result is shown", func(s string) bool { return s == "ok" })
	w.write("listen: [\"{{LISTEN}}\"\nroutes: {{{\n") // broken YAML: refused
	waitText(t, ctx, "#last-reload", "a refused reload is shown as failed", func(s string) bool { return s == "failed" })
	waitText(t, ctx, "#config-version", "the running config stays", func(s string) bool { return s == want })

	// The token lives in the tab's session storage, not in the URL.
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('weir-admin-token')`))
	if err != nil {
		t.Fatal(err)
	}
	href, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if stored != "s3cret" || strings.Contains(href, "s3cret") {
		t.Fatalf("token: session storage %q, location %q", stored, href)
	}
}
