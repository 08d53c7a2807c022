package promlabel

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"users-api", `"users-api"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb", `"a\nb"`},
		{"tab\there", "\"tab\there\""},
		{"é/ü", `"é/ü"`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestQuoteMakesValidSeries: whatever the route is called, the series name
// is one the metrics library accepts (it panics on an invalid one).
func TestQuoteMakesValidSeries(t *testing.T) {
	for _, route := range []string{"r", `we"ird\route`, "line\nbreak", "{x}", "a,b=c"} {
		name := `weir_promlabel_test_total{route=` + Quote(route) + `}`
		before := metrics.GetOrCreateCounter(name).Get() // process-wide: -count=N runs again
		metrics.GetOrCreateCounter(name).Inc()
		if got := metrics.GetOrCreateCounter(name).Get() - before; got != 1 {
			t.Fatalf("%s moved by %d, want 1", name, got)
		}
	}
}
