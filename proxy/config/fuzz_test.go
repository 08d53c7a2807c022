package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents through everything `weir validate`
// and the admin API do with a config: it must never panic, every error
// must carry the file and a place, and an accepted config must survive
// defaults, validation, masking, cloning and a canonical round trip.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join(goldenDir, dir, "*"))
		for _, file := range files {
			if strings.HasSuffix(file, ".err") {
				continue
			}
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data, strings.HasSuffix(file, ".json"))
		}
	}
	for _, s := range []string{
		"", "{}", "[]", "null", "listen: ${PORT}", "a: &a [*a]", "<<: 1", "? [a]\n: b",
		`{"listen": "\ud800"}`, "listen: \"\\xff\"", "services: [{name: a, retries: ${RETRIES}}]",
		"plugins: [{name: cors, config: {x: !!float .nan}}]", "routes: [{headers: {a: 1}}]",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		file := "fuzz.yaml"
		if asJSON {
			file = "fuzz.json"
		}
		c, err := ParseEnv(file, data, testEnv)
		// Check goes on past schema errors with the refused values left
		// out: that config must decode (no "bug in the schema check"),
		// validate without panicking, and every parse error stays.
		_, cerr := Check(file, data, testEnv, nil)
		if (err == nil) != (cerr == nil) && err != nil {
			t.Fatalf("ParseEnv fails but Check does not: %v", err)
		}
		if err != nil {
			checkFuzzErr(t, err, file)
			checkFuzzErr(t, cerr, file)
			have := map[string]bool{}
			for _, e := range cerr.(ErrorList) {
				have[e.Error()] = true
			}
			for _, e := range err.(ErrorList) {
				if !have[e.Error()] && len(cerr.(ErrorList)) < MaxErrors {
					t.Fatalf("Check lost the parse error %q; it reports:\n%v", e, cerr)
				}
			}
			return
		}
		ApplyDefaults(c)
		if err := Validate(c, file); err != nil {
			checkFuzzErr(t, err, file)
		}
		if cl := c.Clone(); !reflect.DeepEqual(cl, c) {
			t.Fatal("clone differs")
		}
		m := c.Masked()
		if _, err := Marshal(m); err != nil {
			t.Fatalf("marshal masked: %v", err)
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := ParseEnv("canonical.json", out, nil)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, out)
		}
		out2, err := Marshal(back)
		if err != nil || string(out) != string(out2) {
			t.Fatalf("canonical form is not stable: %v\n%s\n---\n%s", err, out, out2)
		}
	})
}

func checkFuzzErr(t *testing.T, err error, file string) {
	t.Helper()
	list, ok := err.(ErrorList)
	if !ok || len(list) == 0 {
		t.Fatalf("error is %T %v, want a non-empty ErrorList", err, err)
	}
	for _, e := range list {
		if e.File != file || e.Place == "" || e.Msg == "" {
			t.Fatalf("error without file, place or message: %#v", e)
		}
		if strings.Contains(e.Msg, "a bug in the schema check") {
			t.Fatalf("schema check and decoder disagree: %v", e)
		}
	}
}

// FuzzExpand: expansion never panics, leaves strings without "$" alone,
// and a string it accepts has no unescaped reference left behind.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "$", "$$", "${PORT}", "${NOPE:-x}", "${", "${}", "a$b", "$${PORT}", "${PORT:-}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, used, err := expand(s, testEnv)
		if !strings.Contains(s, "$") && (out != s || used || err != nil) {
			t.Fatalf("expand(%q) = %q, %v, %v", s, out, used, err)
		}
		if err == nil && !strings.Contains(s, "${") && used {
			t.Fatalf("expand(%q) reports a substitution without a reference", s)
		}
	})
}
