package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// decodeViaJSON is what parse did before decodeTree: write the tree as
// JSON and decode it strictly.
func decodeViaJSON(root *node, c *Config) error {
	dec := json.NewDecoder(bytes.NewReader(root.appendJSON(nil)))
	dec.DisallowUnknownFields()
	return dec.Decode(c)
}

// sameDecoding reads data as parse does, schema errors and all, and
// decodes the checked tree both ways: the configs must be equal, or both
// decoders must fail.
func sameDecoding(t *testing.T, file string, data []byte) {
	t.Helper()
	_, root := parse(file, data, testEnv, &errs{file: file}, false, nil)
	if root == nil || root.drop {
		return
	}
	var a, b Config
	errA, errB := decodeTree(root, &a), decodeViaJSON(root, &b)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%s: decodeTree: %v; encoding/json: %v", file, errA, errB)
	}
	if errA == nil && !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		t.Fatalf("%s: the decoders disagree\ndecodeTree:    %s\nencoding/json: %s\n%#v\n%#v", file, ja, jb, a, b)
	}
}

// Every golden config, valid or not, and some edge cases decode to the
// same Config through decodeTree as through encoding/json.
func TestDecodeTreeMatchesEncodingJSON(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*", "*"))
	if len(files) < 20 {
		t.Fatalf("only %d golden files", len(files))
	}
	for _, file := range files {
		if strings.HasSuffix(file, ".err") {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sameDecoding(t, file, data)
	}
	for i, doc := range decodeEdgeCases {
		sameDecoding(t, "edge"+string(rune('a'+i))+".yaml", []byte(doc))
	}
}

var decodeEdgeCases = []string{
	"listen: :8080\nserver: {read_timeout: null, websocket: null}\n",
	"listen: null\n",
	"listen: [\":1\", {address: \":2\", http2: true}]\n",
	"listen: {address: \":2\"}\n",
	"listen: :1\nservices: [null, {name: a, retries: null, targets: [{url: 'http://x:1', weight: 3}]}]\n",
	"listen: :1\nroutes: [{name: r, paths: [/a], headers: {X-A: '1'}, plugins: [{name: cors, config: null}, {name: cors}, {name: x, config: {a: [1, 2.5, 'x', null, true]}}]}]\n",
	"listen: :1\nconsumers: [{name: c, groups: [g], credentials: {key_auth: [{key: k}], jwt: null}}]\n",
	"listen: :1\nservices: [{name: a, retries: 1.5, timeout: 5}]\n",
	"listen: :1\nroutes: [{name: r, hosts: x, paths: 7, strip_path: 'yes'}]\n",
	"listen: :1\naccess_log: {sample: 1e400, buffer: 99999999999999999999}\n",
	"listen: :1\ntracing: {otlp: {endpoint: 'http://x', headers: {a: b, c: null}}, sample: 0.5}\n",
	"Listen: :1\nRoutes: [{Name: r}]\n",
	`{"listen": ":1", "routes": [{"name": "r", "name": "s"}], "services": [{"name": "a", "unknown": 1}]}`,
}

// FuzzDecodeTree: whatever the document, decodeTree and encoding/json
// agree on the checked tree.
func FuzzDecodeTree(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*", "*"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil && !strings.HasSuffix(file, ".err") {
			f.Add(data, strings.HasSuffix(file, ".json"))
		}
	}
	for _, doc := range decodeEdgeCases {
		f.Add([]byte(doc), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		file := "fuzz.yaml"
		if asJSON {
			file = "fuzz.json"
		}
		sameDecoding(t, file, data)
	})
}
