package config

import "testing"

// The export headers are credentials: GET /config masks them, a config
// written back with the mask keeps the stored value, and a clone shares
// nothing with the original.
func TestTracingHeadersMaskedAndKept(t *testing.T) {
	zero := 0.0
	c := &Config{Tracing: &Tracing{OTLP: OTLP{Headers: map[string]string{"X-Api-Key": "k1", "X-Empty": ""}}, Sample: &zero}}
	m := c.Masked()
	if m.Tracing.OTLP.Headers["X-Api-Key"] != Mask || m.Tracing.OTLP.Headers["X-Empty"] != "" {
		t.Fatalf("masked headers %v", m.Tracing.OTLP.Headers)
	}
	if c.Tracing.OTLP.Headers["X-Api-Key"] != "k1" {
		t.Fatal("Masked changed the running config")
	}
	*m.Tracing.Sample = 1
	if *c.Tracing.Sample != 0 {
		t.Fatal("the clone shares sample with the original")
	}
	if err := m.Unmask(c, "put"); err != nil || m.Tracing.OTLP.Headers["X-Api-Key"] != "k1" {
		t.Fatalf("unmask: %v %v", err, m.Tracing.OTLP.Headers)
	}
	n := &Config{Tracing: &Tracing{OTLP: OTLP{Headers: map[string]string{"X-New": Mask}}}}
	if err := n.Unmask(c, "put"); err == nil {
		t.Fatal("a mask with no stored header was accepted")
	}
}
