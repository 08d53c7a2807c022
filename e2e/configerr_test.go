package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stagedErrorsDoc has errors of every stage: the schema (a wrong type, an
// unknown key), validation (an unknown balancer, a route to no service)
// and two plugins' own configs (rate_limit with three wrong keys, cors
// with three). Before, `weir validate` showed the schema errors only, and
// three more runs were needed to see the rest.
const stagedErrorsDoc = `listen: "127.0.0.1:0"
server:
  max_body_bytes: "10MB"
services:
  - name: users
    retires: 2
    balancer: roundrobin
    targets: [{url: "http://127.0.0.1:9"}]
routes:
  - name: r
    paths: ["/r"]
    service: user
    plugins:
      - name: rate_limit
        config: {rate: 0, per: soon, burst: -1}
      - name: cors
        config: {origins: 5, max_age: x, allow_everything: true}
`

// stagedErrors are the errors of stagedErrorsDoc after "FILE: ", in file
// order.
var stagedErrors = []string{
	`server.max_body_bytes: expected an integer, got "10MB"`,
	`services[0].retires: unknown key "retires" (did you mean "retries"?)`,
	`services[0].balancer: unknown balancer "roundrobin" (did you mean "round_robin"?): use one of round_robin, least_conn, consistent_hash, random`,
	`routes[0].service: no service named "user" (did you mean "users"?)`,
	`routes[0].plugins[0] (rate_limit): rate must be > 0`,
	`routes[0].plugins[0] (rate_limit): per must be a duration such as "1s"`,
	`routes[0].plugins[0] (rate_limit): burst must be >= 1`,
	`routes[0].plugins[1] (cors): origins: expected []string, got number`,
	`routes[0].plugins[1] (cors): max_age: "x" is not a duration; write seconds (600) or a duration ("10m")`,
	`routes[0].plugins[1] (cors): unknown field "allow_everything"`,
}

// yamlSyntaxCases are documents with one YAML syntax error each and the
// line it is on. yaml.v3 reported the line where the enclosing list or
// mapping starts, counted from 0: line 2 for all but the flow one.
var yamlSyntaxCases = []struct {
	name, doc, want string
}{
	{"bad indentation deep in a list",
		"listen: \":8080\"\nservices:\n  - name: users\n    targets:\n      - url: http://127.0.0.1:1\n      - url: http://127.0.0.1:2\n     - url: http://127.0.0.1:3\nroutes: []\n",
		"line 7: invalid YAML: did not find expected key"},
	{"a key indented less than its siblings",
		"listen: \":8080\"\nservices:\n  - name: users\n   targets: []\n",
		"line 4: invalid YAML: did not find expected '-' indicator"},
	{"a tab in the indentation",
		"listen: \":8080\"\nservices:\n  - name: users\n\ttargets: []\n",
		"line 4: invalid YAML: found a tab character that violates indentation"},
	{"a mapping where a list item belongs",
		"listen: \":8080\"\nroutes:\n  - name: a\n    paths: [/a]\n  name: b\n",
		"line 5: invalid YAML: did not find expected '-' indicator"},
}

// runValidate runs `weir validate -c file` and returns its output lines and
// exit code.
func runValidate(t *testing.T, file string) ([]string, int) {
	t.Helper()
	out, code := validateFile(t, file)
	return strings.Split(strings.TrimRight(out, "\n"), "\n"), code
}

// TestValidateReportsEveryStageInOneRun: one `weir validate` lists the
// schema, validation and plugin errors of a file, one a line, in file
// order, and exits 1.
func TestValidateReportsEveryStageInOneRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte(stagedErrorsDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, code := runValidate(t, file)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; output:\n%s", code, strings.Join(lines, "\n"))
	}
	want := make([]string, len(stagedErrors))
	for i, e := range stagedErrors {
		want[i] = file + ": " + e
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors differ\n--- got\n%s\n--- want\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestValidateYAMLSyntaxErrorLine: a YAML syntax error is reported at the
// line that holds it.
func TestValidateYAMLSyntaxErrorLine(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range yamlSyntaxCases {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, string(rune('a'+i))+".yaml")
			if err := os.WriteFile(file, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			lines, code := runValidate(t, file)
			if code != 1 || len(lines) != 1 || lines[0] != file+": "+tc.want {
				t.Fatalf("exit %d, output:\n%s\nwant the one line:\n%s: %s", code, strings.Join(lines, "\n"), file, tc.want)
			}
		})
	}
}

// putConfig sends body to PUT /config as YAML and returns the status and
// the "errors" of the answer.
func putConfig(t *testing.T, w *weir, body string) (int, []string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", "http://"+w.Admin+"/config", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ans struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, raw)
	}
	return resp.StatusCode, ans.Errors
}

// TestPutConfigReportsEveryStageInOneAnswer: PUT /config with the same
// document answers 400 with every error, as `weir validate` prints them,
// and a YAML syntax error at its line; the running config stays.
func TestPutConfigReportsEveryStageInOneAnswer(t *testing.T) {
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: "s3cret"}
services: [{name: a, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{name: main, paths: ["/main"], service: a}]
`)
	before := w.configVersion()
	code, errs := putConfig(t, w, stagedErrorsDoc)
	want := make([]string, len(stagedErrors))
	for i, e := range stagedErrors {
		want[i] = "admin.yaml: " + e
	}
	if code != http.StatusBadRequest || strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("status %d, errors:\n%s\n--- want 400 and:\n%s", code, strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
	for _, tc := range yamlSyntaxCases {
		code, errs := putConfig(t, w, tc.doc)
		if code != http.StatusBadRequest || len(errs) != 1 || errs[0] != "admin.yaml: "+tc.want {
			t.Fatalf("%s: status %d, errors %q; want 400 and %q", tc.name, code, errs, "admin.yaml: "+tc.want)
		}
	}
	if v := w.configVersion(); v != before {
		t.Fatalf("config version %d after refused PUTs, want %d", v, before)
	}
}

// TestValidatePluginReportsEveryKey: in an otherwise valid file, a
// plugin's config with three wrong keys gives three errors in one run
// (before: rate, then per, then burst took three runs).
func TestValidatePluginReportsEveryKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	doc := `listen: "127.0.0.1:0"
services: [{name: users, targets: [{url: "http://127.0.0.1:9"}]}]
routes:
  - name: r
    paths: ["/r"]
    service: users
    plugins:
      - name: rate_limit
        config: {rate: 0, per: soon, burst: -1}
`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	lines, code := runValidate(t, file)
	want := []string{
		file + `: routes[0].plugins[0] (rate_limit): rate must be > 0`,
		file + `: routes[0].plugins[0] (rate_limit): per must be a duration such as "1s"`,
		file + `: routes[0].plugins[0] (rate_limit): burst must be >= 1`,
	}
	if code != 1 || strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("exit %d, output:\n%s\n--- want exit 1 and:\n%s", code, strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestReloadLogsEveryStage: a file change to a config with errors of every
// stage is refused, and the log has every error, as `weir validate` prints
// them; the running config stays.
func TestReloadLogsEveryStage(t *testing.T) {
	w := startWeir(t, `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", token: "s3cret"}
services: [{name: a, targets: [{url: "http://127.0.0.1:9"}]}]
routes: [{name: main, paths: ["/main"], service: a}]
`)
	before := w.configVersion()
	w.write(stagedErrorsDoc)
	_ = w.cmd.Process.Signal(syscall.SIGHUP)
	// The log is JSON: each error is a JSON string in it.
	inLog := func(e string) string {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(w.File + ": " + e)
		return strings.TrimSpace(b.String())
	}
	last := inLog(stagedErrors[len(stagedErrors)-1])
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.Logs(), last) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logs := w.Logs()
	for _, e := range stagedErrors {
		if !strings.Contains(logs, inLog(e)) {
			t.Errorf("the log lacks %q", e)
		}
	}
	if v := w.configVersion(); v != before {
		t.Fatalf("config version %d after a refused reload, want %d", v, before)
	}
}
