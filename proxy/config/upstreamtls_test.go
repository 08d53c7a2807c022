package config

import (
	"strings"
	"testing"
)

// TestWarningsInsecureSkipVerify: only insecure_skip_verify: true warns,
// with its place; the config stays valid.
func TestWarningsInsecureSkipVerify(t *testing.T) {
	c := &Config{Services: []Service{
		{Name: "a", TLS: &UpstreamTLS{CA: "ca.pem"}},
		{Name: "b"},
		{Name: "c", TLS: &UpstreamTLS{InsecureSkipVerify: true}},
	}}
	ApplyDefaults(c)
	if err := Validate(c, "f.yaml"); err != nil {
		t.Fatal(err)
	}
	w := Warnings(c, "f.yaml")
	if len(w) != 1 || w[0].Place != "services[2].tls.insecure_skip_verify" || w[0].File != "f.yaml" {
		t.Fatalf("warnings %v, want one for services[2].tls.insecure_skip_verify", w)
	}
	if c.Services[0].TLS.MinVersion != DefaultUpstreamTLSMinVersion {
		t.Fatalf("min_version %q, want the default", c.Services[0].TLS.MinVersion)
	}
}

// TestWarningsCBCCipher: an ECDHE CBC suite named in tls.ciphers is taken
// with a warning naming its place; the default policy has none.
func TestWarningsCBCCipher(t *testing.T) {
	c := &Config{Listen: Listeners{{Address: ":8443", TLS: &ListenerTLS{Ciphers: []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"}}}}}
	w := Warnings(c, "w.yaml")
	if len(w) != 1 || w[0].Place != "listen.tls.ciphers[1]" || !strings.Contains(w[0].Msg, "CBC") {
		t.Fatalf("warnings: %v", w)
	}
	c.Listen[0].TLS.Ciphers = nil
	if w := Warnings(c, "w.yaml"); len(w) != 0 {
		t.Fatalf("the default policy warned: %v", w)
	}
}
