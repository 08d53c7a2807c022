package config

import "testing"

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
