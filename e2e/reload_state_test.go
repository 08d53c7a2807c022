package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// stateConfig is scaleConfig at 200 routes (route 0 answers X-Gen: gen)
// with a route "limited" that allows rate requests an hour, counted per
// route, and route 1 on path1.
func stateConfig(up string, gen, rate int, path1 string) string {
	cfg := scaleConfig(up, 200, gen)
	cfg = replaceOnce(cfg, `paths: ["/r1/{id}"]`, fmt.Sprintf("paths: [%q]", path1))
	return cfg + fmt.Sprintf("  - name: limited\n    paths: [\"/limited\"]\n    service: echo\n    plugins:\n"+
		"      - {name: rate_limit, config: {rate: %d, per: 1h, key: route}}\n", rate)
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

func getStatus(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A SIGHUP reload that changes one route keeps the plugin instances, and
// so the state, of the routes it did not change: the rate_limit bucket of
// an unchanged route stays spent. A reload that changes that route builds
// it anew (its new limit, a full bucket), and one that changes a route's
// path moves it: nothing of the last config is reused where it changed.
func TestReloadKeepsUnchangedRoutesState(t *testing.T) {
	up := startEcho(t, "state")
	w := startWeir(t, stateConfig(up, 0, 2, "/r1/{id}"))
	c := &http.Client{Timeout: 5 * time.Second}
	limited := "http://" + w.Addr + "/limited"
	for i, want := range []int{200, 200, 429} {
		if got := getStatus(t, c, limited); got != want {
			t.Fatalf("request %d to the limited route: %d, want %d", i+1, got, want)
		}
	}

	// Route 0 changes: the limited route's bucket is the one spent.
	w.write(stateConfig(up, 1, 2, "/r1/{id}"))
	hupUntilGen(t, w, c, 1)
	if got := getStatus(t, c, limited); got != 429 {
		t.Fatalf("after a reload that changed another route, the limited route answers %d, want 429 (its bucket kept)", got)
	}

	// Route 1's path changes: it answers on the new path only; the
	// limited route is still unchanged.
	w.write(stateConfig(up, 2, 2, "/moved/{id}"))
	hupUntilGen(t, w, c, 2)
	if got := getStatus(t, c, "http://"+w.Addr+"/moved/7"); got != 200 {
		t.Fatalf("route 1 on its new path: %d, want 200", got)
	}
	if got := getStatus(t, c, "http://"+w.Addr+"/r1/7"); got != 404 {
		t.Fatalf("route 1 on its old path: %d, want 404", got)
	}
	if got := getStatus(t, c, limited); got != 429 {
		t.Fatalf("after a path change of another route, the limited route answers %d, want 429", got)
	}

	// The limited route itself changes: a new instance, a full bucket of
	// the new size.
	w.write(stateConfig(up, 3, 3, "/moved/{id}"))
	hupUntilGen(t, w, c, 3)
	for i, want := range []int{200, 200, 200, 429} {
		if got := getStatus(t, c, limited); got != want {
			t.Fatalf("request %d to the changed limited route: %d, want %d", i+1, got, want)
		}
	}
}
