package proxy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestAggregate(t *testing.T) {
	users := startUpstream(t, func(rc *fasthttp.RequestCtx) {
		rc.SetContentType("application/json")
		rc.SetBodyString(`{"id":"` + strings.TrimPrefix(string(rc.Path()), "/users/") + `","name":"Ada"}`)
	})
	orders := startUpstream(t, func(rc *fasthttp.RequestCtx) {
		if string(rc.QueryArgs().Peek("user")) == "slow" {
			time.Sleep(400 * time.Millisecond)
		}
		if string(rc.QueryArgs().Peek("user")) == "500" {
			rc.SetStatusCode(500)
			return
		}
		rc.SetBodyString(`[{"order":1,"user":"` + string(rc.QueryArgs().Peek("user")) + `"}]`)
	})
	g := startGateway(t, strings.NewReplacer("USERS", users.URL, "ORDERS", orders.URL).Replace(`
listen: "127.0.0.1:0"
services:
  - {name: users, targets: [{url: "USERS"}]}
  - {name: orders, targets: [{url: "ORDERS"}]}
  - {name: dead, targets: [{url: "http://127.0.0.1:1"}], retries: 0}
routes:
  - name: profile
    paths: ["/profile/{id}"]
    aggregate:
      timeout: 200ms
      backends:
        - {service: users, path: "/users/{id}", key: user}
        - {service: orders, path: "/orders?user={id}", key: orders, optional: true}
  - name: strict
    paths: ["/strict/{id}"]
    aggregate:
      backends:
        - {service: users, path: "/users/{id}", key: user}
        - {service: dead, path: "/x", key: x}
`))
	resp, body := g.get("/profile/42")
	var got struct {
		User   map[string]string `json:"user"`
		Orders []map[string]any  `json:"orders"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("%d %s", resp.StatusCode(), body)
	}
	if got.User["id"] != "42" || len(got.Orders) != 1 || got.Orders[0]["user"] != "42" {
		t.Fatalf("merged: %s", body)
	}
	// An optional leg that fails or times out becomes null and is named.
	for _, id := range []string{"500", "slow"} {
		resp, body = g.get("/profile/" + id)
		if resp.StatusCode() != 200 || !strings.Contains(body, `"orders":null`) ||
			string(resp.Header.Peek("X-Weir-Aggregate-Missing")) != "orders" {
			t.Fatalf("optional leg %s: %d %s %q", id, resp.StatusCode(), body, resp.Header.Peek("X-Weir-Aggregate-Missing"))
		}
	}
	// A parameter value is escaped into the leg's query string.
	_, body = g.get("/profile/a%26b")
	if !strings.Contains(body, `"user":"a&b"`) {
		t.Fatalf("escaped param: %s", body)
	}
	// A required leg failing fails the whole answer.
	resp, body = g.get("/strict/1")
	decodeError(t, resp, body, 502)
}
