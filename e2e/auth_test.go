package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestConsumerHeaders: an authenticated request reaches the upstream with
// X-Consumer-Name / X-Consumer-Groups, and a client cannot forge them on
// any route, authenticated or not.
func TestConsumerHeaders(t *testing.T) {
	up := startEcho(t, "e1")
	w := startWeir(t, strings.ReplaceAll(`
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}"}
services: [{name: a, targets: [{url: "http://UP"}]}]
consumers:
  - {name: alice, groups: [gold, beta], credentials: {key_auth: [{key: "alice-key-1"}]}}
routes:
  - {name: keyed, paths: ["/keyed"], service: a, plugins: [{name: key_auth, config: {hide_credentials: true}}]}
  - {name: open, paths: ["/open"], service: a}
`, "UP", up))
	c := newClient(w.Addr)
	forged := map[string]string{"X-Consumer-Name": "root", "X-Consumer-Groups": "admin", "X_Consumer_Name": "root"}

	code, body, _ := get(t, c, "/keyed", forged)
	if code != 401 || !strings.Contains(body, `"status":401`) {
		t.Fatalf("no key: %d %s", code, body)
	}
	hdr := map[string]string{"X-API-Key": "alice-key-1"}
	for k, v := range forged {
		hdr[k] = v
	}
	code, body, _ = get(t, c, "/keyed", hdr)
	if code != 200 {
		t.Fatalf("with key: %d %s", code, body)
	}
	var r struct {
		Headers map[string]string `json:"headers"`
	}
	_ = json.Unmarshal([]byte(body), &r)
	if r.Headers["X-Consumer-Name"] != "alice" || r.Headers["X-Consumer-Groups"] != "gold,beta" {
		t.Fatalf("consumer headers upstream: %v", r.Headers)
	}
	for k := range r.Headers {
		if strings.Contains(k, "_") || strings.EqualFold(k, "X-Api-Key") {
			t.Fatalf("%s reached the upstream: %v", k, r.Headers)
		}
	}
	code, body, _ = get(t, c, "/open", forged)
	r.Headers = nil
	_ = json.Unmarshal([]byte(body), &r)
	if len(r.Headers) == 0 {
		t.Fatalf("open route: %d %s", code, body)
	}
	for k := range r.Headers {
		if strings.Contains(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-consumer") {
			t.Fatalf("forged %s reached the upstream on an open route (%d)", k, code)
		}
	}
}
