package confval

import (
	stdjson "encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

type testConfig struct {
	A Duration `json:"a"`
	B Duration `json:"b"`
}

func TestDuration(t *testing.T) {
	cases := []struct {
		name, raw string
		a, b      time.Duration
		err       string
	}{
		{"absent: defaults", `{}`, time.Second, 2 * time.Minute, ""},
		{"set", `{"a":"250ms","b":"1h"}`, 250 * time.Millisecond, time.Hour, ""},
		{"zero is a value", `{"a":"0s"}`, 0, 2 * time.Minute, ""},
		{"bare number", `{"a":5}`, 0, 0, `a: a duration must be a string such as "1s" or "250ms", got 5`},
		{"object", `{"b":{}}`, 0, 0, `b: a duration must be a string such as "1s" or "250ms", got {}`},
		{"no unit", `{"a":"5"}`, 0, 0, `a: invalid duration "5": use a number with a unit such as "1s" or "250ms"`},
		{"words", `{"b":"5 minutes"}`, 0, 0, `b: invalid duration "5 minutes": use a number with a unit such as "1s" or "250ms"`},
		{"null", `{"a":null}`, 0, 0, `a: invalid duration "": use a number with a unit such as "1s" or "250ms"`},
		{"negative", `{"a":"-1s"}`, 0, 0, `a: duration "-1s" must not be negative`},
		{"every error, in key order", `{"a":"x","b":"-1s"}`, 0, 0, "a: invalid duration \"x\": use a number with a unit such as \"1s\" or \"250ms\"\nb: duration \"-1s\" must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cfg testConfig
			if err := json.Unmarshal([]byte(tc.raw), &cfg); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			err := CheckDurations(
				DurationKey{"a", &cfg.A, time.Second},
				DurationKey{"b", &cfg.B, 2 * time.Minute},
			)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Fatalf("error = %q, want %q", got, tc.err)
			}
			if err == nil && (cfg.A.D() != tc.a || cfg.B.D() != tc.b || !cfg.A.IsSet() || !cfg.B.IsSet()) {
				t.Fatalf("got %v %v, want %v %v", cfg.A.D(), cfg.B.D(), tc.a, tc.b)
			}
		})
	}
}

func TestDur(t *testing.T) {
	d := Dur(3 * time.Second)
	if d.D() != 3*time.Second || !d.IsSet() || d.Check("k", time.Hour) != nil || d.D() != 3*time.Second {
		t.Fatalf("Dur: %+v", d)
	}
}

// TestIsTokenEveryByte checks each byte against RFC 9110 §5.6.2: a tchar
// is any visible ASCII character except the delimiters.
func TestIsTokenEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c > 0x20 && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
		if got := IsToken(string([]byte{byte(c)})); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", byte(c), got, want)
		}
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"Authorization": true, "X-Api-Key": true, "session_id": true, "a!#$%&'*+-.^_`|~9": true,
		"": false, "X Key": false, "X:Key": false, "a;b": false, "é": false, "a\x00": false,
	} {
		if got := IsToken(s); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzDuration: UnmarshalJSON reads what encoding/json reads (the plugins
// used either before they shared this type), and never fails.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"1s"`, `5`, `null`, `"-1s"`, `"\u00e9s"`, "\"\xff\"", `"\ud800"`, `{}`, `"1h2m3.5s"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !stdjson.Valid([]byte(raw)) {
			return // the config decoder refuses the document first
		}
		var d Duration
		if err := d.UnmarshalJSON([]byte(raw)); err != nil {
			t.Fatalf("UnmarshalJSON(%s) failed: %v", raw, err)
		}
		var s string
		stdErr := stdjson.Unmarshal([]byte(raw), &s)
		if (stdErr != nil) != (d.err != nil && strings.HasPrefix(d.err.Error(), "a duration must be a string")) {
			t.Fatalf("%s: encoding/json error %v, Duration error %v", raw, stdErr, d.err)
		}
		if stdErr != nil {
			return
		}
		v, perr := time.ParseDuration(s)
		if perr == nil && v >= 0 && (d.err != nil || d.d != v) {
			t.Fatalf("%s: got %v %v, want %v", raw, d.d, d.err, v)
		}
		if (perr != nil || v < 0) && (d.err == nil || !strings.Contains(d.err.Error(), fmt.Sprintf("%q", s))) {
			t.Fatalf("%s: error %v does not quote %q", raw, d.err, s)
		}
	})
}
