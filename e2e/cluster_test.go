package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirgw/weir/internal/testredis"
)

// clusterCfg is one node of a cluster; every node has its own listen and
// admin addresses.
const clusterCfg = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: "s3cret"}
REDIS
services: [{name: a, targets: [{url: "http://UP"}]}]
routes: [{name: main, paths: ["/main"], service: a}]
consumers: [{name: alice, credentials: {key_auth: [{key: "alice-secret-key"}]}}]
`

// adminCall is one admin request with extra headers; it answers the
// status, the headers and the decoded JSON body.
func adminCall(t *testing.T, w *weir, method, path, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	code, h, raw := adminRequest(t, w, method, path, body, hdr)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return code, h, m
}

// startClusterPair runs two nodes of clusterCfg on one private Redis and
// one echo upstream, and returns them with the config they share.
func startClusterPair(t *testing.T) (a, b *weir, cfg string) {
	t.Helper()
	rs := testredis.Start(t)
	up := startEcho(t, "e1")
	cfg = strings.NewReplacer("UP", up, "REDIS", `redis: {addrs: ["`+rs.Addr+`"]}`).Replace(clusterCfg)
	return startWeir(t, cfg), startWeir(t, cfg), cfg
}

// stopWeir stops a node with SIGTERM and waits for it to exit.
func stopWeir(t *testing.T, w *weir) {
	t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	if !w.waitExit(15 * time.Second) {
		t.Fatalf("weir did not exit after SIGTERM\n%s", w.Logs())
	}
}

// restartWeir starts the binary again on a stopped node's file and
// addresses, as an operator restarting one node would.
func restartWeir(t *testing.T, old *weir) *weir {
	t.Helper()
	w := &weir{t: t, File: old.File, Addr: old.Addr, Admin: old.Admin}
	return w.launch(true)
}

// checkOwnAddresses fails unless w's GET /config shows w's own listen and
// admin addresses.
func checkOwnAddresses(t *testing.T, w *weir, who string) {
	t.Helper()
	code, _, cfg := adminCall(t, w, "GET", "/config", "", nil)
	if code != 200 {
		t.Fatalf("%s: GET /config: %d", who, code)
	}
	listen := fmt.Sprint(cfg["listen"])
	adm, _ := cfg["admin"].(map[string]any)
	if listen != "["+w.Addr+"]" || adm == nil || adm["listen"] != w.Admin {
		t.Fatalf("%s's config shows listen %s and admin %v; want its own %s and %s", who, listen, adm["listen"], w.Addr, w.Admin)
	}
}

// waitConsumer waits until w has consumer name, polling every millisecond.
func waitConsumer(t *testing.T, w *weir, name string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		code, _, _ := adminCall(t, w, "GET", "/consumers/"+name, "", nil)
		if code == 200 {
			return
		}
		if time.Since(start) > within {
			t.Fatalf("consumer %q did not reach the node within %v (last %d)\n%s", name, within, code, w.Logs())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClusterSharesObjectsNotNodeSettings: consumers written on node A
// reach node B within a bound, while B keeps its own listen and admin
// addresses. It reports the propagation time over 100 writes, each timed
// from the start of the POST on A to the first GET on B that finds it.
func TestClusterSharesObjectsNotNodeSettings(t *testing.T) {
	a, b, _ := startClusterPair(t)

	const writes = 100
	var took []time.Duration
	for i := range writes {
		name := fmt.Sprintf("c%03d", i)
		start := time.Now()
		if code, _, body := adminCall(t, a, "POST", "/consumers", `{"name":"`+name+`"}`, nil); code != 201 {
			t.Fatalf("POST /consumers on A: %d %v", code, body)
		}
		waitConsumer(t, b, name, 5*time.Second)
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("propagation of an admin write A→B over %d writes (POST on A to GET on B): median %v, p99 %v, max %v",
		writes, took[writes/2], took[(writes*99+99)/100-1], took[writes-1])

	// No node ends on a stale config: after the notices settle, both hold
	// every consumer.
	time.Sleep(200 * time.Millisecond)
	for _, n := range []*weir{a, b} {
		code, _, list := adminCall(t, n, "GET", "/consumers", "", nil)
		if data, _ := list["data"].([]any); code != 200 || len(data) != writes+1 {
			t.Fatalf("a node holds %d consumers after the writes, want %d: %v", len(data), writes+1, list)
		}
	}
	checkOwnAddresses(t, b, "node B")
	checkOwnAddresses(t, a, "node A")
	// B still serves on its own listener.
	if st, _, _ := get(t, newClient(b.Addr), "/main", nil); st != 200 {
		t.Fatalf("node B's listener answers %d after the sync", st)
	}
}

// TestClusterRestartTakesClusterConfig: a node that was down while the
// cluster changed takes the cluster's config from Redis when it starts,
// not only its own file.
func TestClusterRestartTakesClusterConfig(t *testing.T) {
	a, b, _ := startClusterPair(t)

	stopWeir(t, a)
	if code, _, body := adminCall(t, b, "POST", "/consumers", `{"name":"late"}`, nil); code != 201 {
		t.Fatalf("POST /consumers on B: %d %v", code, body)
	}
	a = restartWeir(t, a)
	// Join runs before the admin listener opens, so the first answer
	// must already have it.
	if code, _, body := adminCall(t, a, "GET", "/consumers/late", "", nil); code != 200 {
		t.Fatalf("restarted node A lacks the consumer added on B while it was down: %d %v", code, body)
	}
	checkOwnAddresses(t, a, "restarted node A")
	if !strings.Contains(a.Logs(), "differ from the cluster's") {
		t.Errorf("no warning that the file's objects differ from the cluster's\n%s", a.Logs())
	}
}

// TestClusterFileEditPrecedence: a file edit of node-local settings keeps
// the objects added through the admin API; a file edit of the shared
// objects replaces them (with a warning naming what it drops) and, in a
// cluster, reaches the other nodes.
func TestClusterFileEditPrecedence(t *testing.T) {
	a, b, cfg := startClusterPair(t)
	if code, _, body := adminCall(t, b, "POST", "/consumers", `{"name":"viaadmin"}`, nil); code != 201 {
		t.Fatalf("POST /consumers on B: %d %v", code, body)
	}
	waitConsumer(t, a, "viaadmin", 5*time.Second)

	// A node-local edit on A: latency headers on. The admin-added
	// consumer stays, on A and on B.
	local := cfg + "server: {latency_headers: true}\n"
	v := a.configVersion()
	a.write(local)
	a.waitVersion(v + 1)
	time.Sleep(300 * time.Millisecond) // let a wrong publish reach B, if there were one
	for _, n := range []*weir{a, b} {
		if code, _, _ := adminCall(t, n, "GET", "/consumers/viaadmin", "", nil); code != 200 {
			t.Fatalf("a node-local file edit dropped the admin-added consumer (%d)\n%s", code, a.Logs())
		}
	}

	// A shared edit on A: a new route. It replaces the shared objects on
	// A and B, dropping the admin-added consumer with a warning.
	a.write(strings.Replace(local, `routes: [{name: main, paths: ["/main"], service: a}]`,
		`routes: [{name: main, paths: ["/main"], service: a}, {name: fromfile, paths: ["/fromfile"], service: a}]`, 1))
	if !waitUntil(5*time.Second, 10*time.Millisecond, func() bool {
		code, _, _ := adminCall(t, b, "GET", "/routes/fromfile", "", nil)
		return code == 200
	}) {
		t.Fatalf("node B never got the route from A's file edit\nA:\n%s", a.Logs())
	}
	for _, n := range []*weir{a, b} {
		if code, _, _ := adminCall(t, n, "GET", "/consumers/viaadmin", "", nil); code != 404 {
			t.Fatalf("the shared file edit kept the admin-added consumer (%d)", code)
		}
	}
	if !strings.Contains(a.Logs(), "these admin changes are dropped") || !strings.Contains(a.Logs(), "viaadmin") {
		t.Fatalf("no warning naming the dropped admin change\n%s", a.Logs())
	}
	checkOwnAddresses(t, b, "node B")
}

// configJSON is a whole config for PUT /config and POST /config/diff,
// with w's own addresses and the given consumers.
func configJSON(w *weir, up string, consumers ...string) string {
	var cs []string
	for _, c := range consumers {
		cs = append(cs, `{"name":"`+c+`"}`)
	}
	return `{"listen":["` + w.Addr + `"],"admin":{"listen":"` + w.Admin + `","token":"s3cret"},` +
		`"services":[{"name":"a","targets":[{"url":"http://` + up + `"}]}],` +
		`"routes":[{"name":"main","paths":["/main"],"service":"a"}],` +
		`"consumers":[` + strings.Join(cs, ",") + `]}`
}

// TestConfigETagIfMatch: config answers carry an ETag; a write with a
// stale If-Match gets 412 and changes nothing.
func TestConfigETagIfMatch(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", "").Replace(clusterCfg))

	code, h, _ := adminCall(t, w, "GET", "/config", "", nil)
	e1 := h.Get("ETag")
	if code != 200 || !strings.HasPrefix(e1, `"`) || len(e1) < 10 {
		t.Fatalf("GET /config: %d, ETag %q", code, e1)
	}
	if code, h, _ := adminCall(t, w, "GET", "/consumers/alice", "", nil); code != 200 || h.Get("ETag") != e1 {
		t.Fatalf("GET /consumers/alice: %d, ETag %q, want %q", code, h.Get("ETag"), e1)
	}
	if _, h, _ := adminCall(t, w, "GET", "/config", "", nil); h.Get("ETag") != e1 {
		t.Fatalf("the ETag changed without a change: %q then %q", e1, h.Get("ETag"))
	}

	code, h, body := adminCall(t, w, "PUT", "/config", configJSON(w, up, "bob"), map[string]string{"If-Match": e1})
	e2 := h.Get("ETag")
	if code != 200 || e2 == "" || e2 == e1 {
		t.Fatalf("PUT /config with the current ETag: %d %v, ETag %q (was %q)", code, body, e2, e1)
	}
	if _, h, _ := adminCall(t, w, "GET", "/config", "", nil); h.Get("ETag") != e2 {
		t.Fatalf("GET /config after the PUT: ETag %q, the PUT answered %q", h.Get("ETag"), e2)
	}
	v := w.configVersion()
	code, h, body = adminCall(t, w, "PUT", "/config", configJSON(w, up, "carol"), map[string]string{"If-Match": e1})
	if code != 412 || body["error"] == nil || h.Get("ETag") != e2 {
		t.Fatalf("PUT /config with a stale ETag: %d %v, ETag %q", code, body, h.Get("ETag"))
	}
	// Object writes and deletes too; the precondition comes first.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/consumers", `{"name":"dave"}`},
		{"PUT", "/consumers/bob", `{"name":"bob","groups":["x"]}`},
		{"DELETE", "/consumers/bob", ""},
		{"DELETE", "/consumers/nosuch", ""},
		{"POST", "/services/a/targets", `{"url":"http://127.0.0.1:1"}`},
	} {
		if code, _, body := adminCall(t, w, c.method, c.path, c.body, map[string]string{"If-Match": e1}); code != 412 {
			t.Fatalf("%s %s with a stale ETag: %d %v", c.method, c.path, code, body)
		}
	}
	// A weak tag never matches (strong comparison).
	if code, _, _ := adminCall(t, w, "DELETE", "/consumers/bob", "", map[string]string{"If-Match": "W/" + e2}); code != 412 {
		t.Fatalf("DELETE with a weak tag: %d", code)
	}
	if w.configVersion() != v {
		t.Fatal("a refused write changed the config")
	}
	// "*" holds when the target exists.
	code, h, body = adminCall(t, w, "PUT", "/consumers/bob", `{"name":"bob","groups":["x"]}`, map[string]string{"If-Match": "*"})
	if code != 200 || h.Get("ETag") == e2 || h.Get("ETag") == "" {
		t.Fatalf("PUT /consumers/bob with If-Match *: %d %v, ETag %q", code, body, h.Get("ETag"))
	}
	if code, _, _ := adminCall(t, w, "PUT", "/consumers/nosuch", `{"name":"nosuch"}`, map[string]string{"If-Match": "*"}); code != 412 {
		t.Fatalf("PUT of a missing consumer with If-Match *: %d", code)
	}
	e3 := h.Get("ETag")
	// A list with the current tag in it holds.
	if code, h, body := adminCall(t, w, "DELETE", "/consumers/bob", "", map[string]string{"If-Match": e1 + ", " + e3}); code != 200 || h.Get("ETag") == e3 {
		t.Fatalf("DELETE with a list holding the current tag: %d %v", code, body)
	}
}

// TestConfigDiff: POST /config/diff answers what a PUT would change,
// object by object, and applies nothing; an invalid body is 400 with every
// error.
func TestConfigDiff(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.NewReplacer("UP", up, "REDIS", "").Replace(clusterCfg))
	_, h, before := adminCall(t, w, "GET", "/config", "", nil)
	tag, v := h.Get("ETag"), w.configVersion()

	// alice goes, bob comes; the route changes; the listen address too.
	body := strings.Replace(configJSON(w, up, "bob"), `"paths":["/main"]`, `"paths":["/main","/other"]`, 1)
	body = strings.Replace(body, `"listen":["`+w.Addr+`"]`, `"listen":["127.0.0.1:1"]`, 1)
	code, dh, d := adminCall(t, w, "POST", "/config/diff", body, nil)
	if code != 200 || dh.Get("ETag") != tag {
		t.Fatalf("POST /config/diff: %d %v, ETag %q (config's %q)", code, d, dh.Get("ETag"), tag)
	}
	got, _ := json.Marshal(d)
	for _, want := range []string{
		`"changed":true`,
		`"consumers":{"added":["bob"],"changed":[],"removed":["alice"]}`,
		`"routes":{"added":[],"changed":["main"],"removed":[]}`,
		`"services":{"added":[],"changed":[],"removed":[]}`,
		`"node_local":["listen"]`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("diff lacks %s: %s", want, got)
		}
	}
	// Nothing applied.
	_, h, after := adminCall(t, w, "GET", "/config", "", nil)
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if string(b1) != string(b2) || h.Get("ETag") != tag || w.configVersion() != v {
		t.Fatalf("the diff changed the config:\nbefore %s\nafter  %s", b1, b2)
	}
	// The same body with no change: nothing to report.
	code, _, d = adminCall(t, w, "POST", "/config/diff", strings.Replace(configJSON(w, up), `"consumers":[]`,
		`"consumers":[{"name":"alice","credentials":{"key_auth":[{"key":"alice-secret-key"}]}}]`, 1), nil)
	if code != 200 || d["changed"] != false {
		t.Fatalf("diff of the running config: %d %v", code, d)
	}
	// Invalid: 400 with every error, nothing applied.
	code, _, d = adminCall(t, w, "POST", "/config/diff",
		`{"listen":["`+w.Addr+`"],"routes":[{"name":"r","paths":["nope"],"service":"missing"}]}`, nil)
	if errs, _ := d["errors"].([]any); code != 400 || len(errs) < 2 {
		t.Fatalf("invalid diff body: %d %v", code, d)
	}
	if w.configVersion() != v {
		t.Fatal("an invalid diff changed the config")
	}
}
