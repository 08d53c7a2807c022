package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"
)

// analyticsConfig: four consumers by key, per-consumer metrics capped at
// two; route api needs a key, is rate limited and cached; route open
// does not; route byhost matches a host.
const analyticsConfig = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: s3cret}
analytics: {consumers: true, max_consumers: 2}
services:
  - {name: a, targets: [{url: "http://{{UP}}"}]}
consumers:
  - {name: alice, credentials: {key_auth: [{key: "k-alice"}]}}
  - {name: bob, credentials: {key_auth: [{key: "k-bob"}]}}
  - {name: carol, credentials: {key_auth: [{key: "k-carol"}]}}
  - {name: dave, credentials: {key_auth: [{key: "k-dave"}]}}
routes:
  - name: api
    paths: ["/api"]
    service: a
    plugins:
      - {name: key_auth}
      - {name: rate_limit, config: {rate: 100000, per: 1s, burst: 100000, key: consumer}}
      - {name: cache, config: {store: memory, default_ttl: 60s}}
  - {name: open, paths: ["/open"], methods: [GET, POST], service: a}
  - {name: byhost, hosts: ["api.example"], paths: ["/h"], service: a}
`

func startAnalytics(t *testing.T) *weir {
	up := serveFast(t, func(rc *fasthttp.RequestCtx) {
		if strings.HasSuffix(string(rc.Path()), "/fail") {
			rc.SetStatusCode(500)
		}
		rc.SetBodyString("ok")
	})
	return startWeir(t, strings.ReplaceAll(analyticsConfig, "{{UP}}", up))
}

// scrape reads /metrics: the samples (series -> value) and the # HELP
// and # TYPE lines by family.
func scrape(t *testing.T, w *weir) (series map[string]float64, help, typ map[string]string) {
	t.Helper()
	code, _, body := adminRequest(t, w, "GET", "/metrics", "", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	series, help, typ = map[string]float64{}, map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# HELP "):
			f := strings.SplitN(strings.TrimPrefix(line, "# HELP "), " ", 2)
			help[f[0]] = strings.Join(f[1:], "")
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(strings.TrimPrefix(line, "# TYPE "))
			typ[f[0]] = f[1]
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			i := strings.LastIndexByte(line, ' ')
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			series[line[:i]] = v
		}
	}
	return series, help, typ
}

func TestConsumerRequestsCapped(t *testing.T) {
	w := startAnalytics(t)
	c := newClient(w.Addr)
	send := func(key, path string, n int) {
		for range n {
			get(t, c, path, map[string]string{"X-API-Key": key})
		}
	}
	send("k-alice", "/api/x", 5)
	send("k-alice", "/api/fail", 1)
	send("k-bob", "/api/y", 3)
	send("k-carol", "/api/z", 2)
	send("k-dave", "/api/fail", 1)
	send("nobody's key", "/api/x", 4) // 401: no consumer, not counted
	send("", "/open", 2)
	series, _, _ := scrape(t, w)
	want := map[string]float64{
		`weir_consumer_requests_total{consumer="alice",status_class="2xx"}`:  5,
		`weir_consumer_requests_total{consumer="alice",status_class="5xx"}`:  1,
		`weir_consumer_requests_total{consumer="bob",status_class="2xx"}`:    3,
		`weir_consumer_requests_total{consumer="_other",status_class="2xx"}`: 2,
		`weir_consumer_requests_total{consumer="_other",status_class="5xx"}`: 1,
	}
	var got []string
	for s, v := range series {
		if strings.HasPrefix(s, "weir_consumer_requests_total") {
			got = append(got, fmt.Sprintf("%s %v", s, v))
			if want[s] != v {
				t.Errorf("%s = %v, want %v", s, v, want[s])
			}
		}
	}
	sort.Strings(got)
	if len(got) != len(want) {
		t.Errorf("series:\n%s\nwant %d series", strings.Join(got, "\n"), len(want))
	}

	// The status page's data: the top routes and consumers.
	code, _, body := adminRequest(t, w, "GET", "/stats", "", nil)
	var st struct {
		TopRoutes    []map[string]any `json:"top_routes"`
		TopConsumers []map[string]any `json:"top_consumers"`
	}
	if err := json.Unmarshal(body, &st); err != nil || code != 200 {
		t.Fatalf("/stats: %d %v", code, err)
	}
	if s := fmt.Sprint(st.TopRoutes); s != "[map[name:api requests:16] map[name:open requests:2]]" {
		t.Errorf("top routes %s", s)
	}
	if s := fmt.Sprint(st.TopConsumers); s != "[map[name:alice requests:6] map[name:_other requests:3] map[name:bob requests:3]]" {
		t.Errorf("top consumers %s", s)
	}

	// And the page shows them (a real browser; skipped without Chromium
	// outside CI).
	t.Run("page", func(t *testing.T) { topOnPage(t, w) })
}

func topOnPage(t *testing.T, w *weir) {
	ctx := newBrowser(t, 60*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+w.Admin+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#token"), "s3cret"),
		chromedp.Click(chromedp.CSS("#login button")),
		chromedp.WaitVisible(chromedp.CSS("#page")),
	); err != nil {
		t.Fatalf("logging in: %v", err)
	}
	waitText(t, ctx, "#top tbody", "the top routes and consumers are shown", func(s string) bool {
		return regexp.MustCompile(`api\s*16\s*alice\s*6`).MatchString(s) && strings.Contains(s, "_other")
	})
}

// Label values come from the config, never from the client: random
// paths, hosts, methods, API keys, consumer names and request IDs leave
// the set of series as the first requests of each kind made it.
func TestMetricsBoundedAndDescribed(t *testing.T) {
	w := startAnalytics(t)
	c := newClient(w.Addr)
	// One request of each kind, so that every series that can exist does.
	kinds := []struct{ method, host, path, key string }{
		{"GET", "", "/open", ""}, {"POST", "", "/open", ""}, {"GET", "", "/open/fail", ""},
		{"GET", "", "/nowhere", ""}, {"DELETE", "", "/open", ""},
		{"GET", "", "/api/x", ""}, {"GET", "", "/api/x", "bad"},
		{"GET", "", "/api/x", "k-alice"}, {"GET", "", "/api/fail", "k-alice"},
		{"GET", "", "/api/x", "k-bob"}, {"GET", "", "/api/fail", "k-bob"},
		{"GET", "", "/api/x", "k-carol"}, {"GET", "", "/api/fail", "k-carol"},
		{"GET", "api.example", "/h", ""}, {"GET", "api.example", "/h/fail", ""},
	}
	do := func(method, host, path, key string, hdr map[string]string) int {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + w.Addr + path)
		req.Header.SetMethod(method)
		if host != "" {
			req.Header.SetHost(host)
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if err := c.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode()
	}
	for range 2 {
		for _, k := range kinds {
			do(k.method, k.host, k.path, k.key, nil)
		}
	}
	before, _, _ := scrape(t, w)

	rnd := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		const abc = "abcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, 1+rnd.IntN(12))
		for i := range b {
			b[i] = abc[rnd.IntN(len(abc))]
		}
		return string(b)
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}
	statuses := map[int]int{}
	for i := 0; i < 600; i++ {
		method := methods[rnd.IntN(len(methods))]
		if rnd.IntN(4) == 0 {
			method = strings.ToUpper(word()) // an extension method no route lists
		}
		host := []string{"", "api.example", word() + ".example", word()}[rnd.IntN(4)]
		path := []string{"/api/", "/open/", "/h/", "/", "/" + word() + "/"}[rnd.IntN(5)] + word()
		key := []string{"", "k-alice", "k-dave", word()}[rnd.IntN(4)]
		statuses[do(method, host, path, key, map[string]string{
			"X-Consumer-Name": word(), "X-Request-Id": word(), "User-Agent": word(), "X-Forwarded-For": "10.0.0." + strconv.Itoa(rnd.IntN(255)),
		})]++
	}
	t.Logf("random requests answered %v", statuses)
	after, help, typ := scrape(t, w)
	for s := range after {
		if _, ok := before[s]; !ok {
			t.Errorf("client input created a series: %s", s)
		}
	}
	t.Logf("%d series before the random requests, %d after", len(before), len(after))

	// Every family is described.
	for s := range after {
		name := s
		if i := strings.IndexByte(s, '{'); i >= 0 {
			name = s[:i]
		}
		fam := name
		if _, ok := typ[fam]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(name, suf); cut && (typ[base] == "histogram" || typ[base] == "summary") {
					fam = base
				}
			}
		}
		if typ[fam] == "" {
			t.Errorf("%s: no # TYPE for its family", s)
		}
		// The Go runtime's and the process's families (go_*, process_*)
		// come from the metrics library with a bare # HELP line; Weir's
		// own say what they count.
		if h, ok := help[fam]; !ok || strings.HasPrefix(fam, "weir_") && strings.TrimSpace(h) == "" {
			t.Errorf("%s: no # HELP (text) for family %s", s, fam)
			help[fam] = "reported" // once per family
		}
	}
}
