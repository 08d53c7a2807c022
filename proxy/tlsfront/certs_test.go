package tlsfront

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed pair for names and returns its
// file paths.
func writeSelfSigned(t *testing.T, dir, name string, useRSA bool, names ...string) [2]string {
	t.Helper()
	var key crypto.Signer
	if useRSA {
		key, _ = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	p := [2]string{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")}
	_ = os.WriteFile(p[0], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(p[1], pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return p
}

func TestPick(t *testing.T) {
	dir := t.TempDir()
	set, err := loadSet([][2]string{
		writeSelfSigned(t, dir, "default", true, "default.test"),
		writeSelfSigned(t, dir, "rsa", true, "api.test", "*.wild.test"),
		writeSelfSigned(t, dir, "ec", false, "API.test", "*.wild.test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ecdsaSchemes := []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}
	rsaSchemes := []tls.SignatureScheme{tls.PSSWithSHA256, tls.PKCS1WithSHA256}
	all := append(append([]tls.SignatureScheme{}, ecdsaSchemes...), rsaSchemes...)
	v13 := []uint16{tls.VersionTLS13}
	for _, tc := range []struct {
		name, sni string
		schemes   []tls.SignatureScheme
		want      string
	}{
		{"exact, ECDSA preferred", "api.test", all, "ec"},
		{"exact, case and trailing dot", "API.Test.", all, "ec"},
		{"exact, RSA-only client", "api.test", rsaSchemes, "rsa"},
		{"wildcard", "x.wild.test", all, "ec"},
		{"wildcard covers one label", "a.b.wild.test", all, "default"},
		{"unknown", "nope.test", all, "default"},
		{"no SNI", "", all, "default"},
		{"no SNI, ECDSA-only client", "", ecdsaSchemes, "ec"},
	} {
		hello := &tls.ClientHelloInfo{ServerName: tc.sni, SignatureSchemes: tc.schemes, SupportedVersions: v13,
			SupportedCurves: []tls.CurveID{tls.X25519, tls.CurveP256}, CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}}
		got := set.pick(hello)
		if got.Leaf.Subject.CommonName != tc.want {
			t.Errorf("%s: picked %s, want %s", tc.name, got.Leaf.Subject.CommonName, tc.want)
		}
	}
}

func TestLoadSetErrors(t *testing.T) {
	dir := t.TempDir()
	a := writeSelfSigned(t, dir, "a", false, "a.test")
	b := writeSelfSigned(t, dir, "b", false, "b.test")
	garbage := filepath.Join(dir, "garbage.pem")
	_ = os.WriteFile(garbage, []byte("not pem"), 0o600)
	for _, tc := range []struct {
		name string
		pair [2]string
		want string
	}{
		{"missing cert", [2]string{filepath.Join(dir, "nope.pem"), a[1]}, "reading certificate file " + filepath.Join(dir, "nope.pem") + ": open " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{"mismatched key", [2]string{a[0], b[1]}, "loading certificate " + a[0] + " with key " + b[1] + ": tls: private key does not match public key"},
		{"garbage", [2]string{garbage, a[1]}, "loading certificate " + garbage + " with key " + a[1] + ": tls: failed to find any PEM data in certificate input"},
	} {
		_, err := loadSet([][2]string{a, tc.pair})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v\nwant %s", tc.name, err, tc.want)
		}
	}
}
