package sdk_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// selfSigned makes a certificate usable both as a CA and as a leaf.
func selfSigned(t *testing.T, cn string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf
}

// TestClientCertificate: the verified client certificate of a TLS
// connection is what Ctx.ClientCertificate returns; a cleartext
// connection, or a TLS one without a client certificate, gives nil.
func TestClientCertificate(t *testing.T) {
	server, _ := selfSigned(t, "server.test")
	client, clientLeaf := selfSigned(t, "client.test")
	pool := x509.NewCertPool()
	pool.AddCert(clientLeaf)
	serverPool := x509.NewCertPool()
	serverPool.AddCert(server.Leaf)

	for _, withCert := range []bool{true, false} {
		a, b := net.Pipe()
		srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven})
		cc := &tls.Config{ServerName: "server.test", RootCAs: serverPool}
		if withCert {
			cc.Certificates = []tls.Certificate{client}
		}
		cli := tls.Client(b, cc)
		errc := make(chan error, 1)
		go func() { errc <- cli.Handshake() }()
		if err := srv.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		var rc fasthttp.RequestCtx
		rc.Init2(srv, nil, false)
		c := sdk.AcquireCtx(&rc)
		got := c.ClientCertificate()
		if withCert && (got == nil || got.Subject.CommonName != "client.test") {
			t.Errorf("with a certificate: got %v", got)
		}
		if !withCert && got != nil {
			t.Errorf("without a certificate: got %v", got.Subject)
		}
		sdk.ReleaseCtx(c)
		// Close the pipe, not the TLS conns: their close_notify would wait
		// for a reader that is not there.
		a.Close()
		b.Close()
	}
	var rc fasthttp.RequestCtx
	rc.Init2(&net.TCPConn{}, nil, false)
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	if c.ClientCertificate() != nil {
		t.Error("a cleartext connection has a client certificate")
	}
}

// keptCertConn is a connection that kept its verified client certificate
// at the handshake, as the gateway's TLS listener does.
type keptCertConn struct {
	net.Conn
	cert *x509.Certificate
}

func (k keptCertConn) VerifiedClientCertificate() *x509.Certificate { return k.cert }

// TestClientCertificateKeptByTheConn: a connection that keeps its
// certificate is asked, not copied: no allocation per request.
func TestClientCertificateKeptByTheConn(t *testing.T) {
	_, leaf := selfSigned(t, "kept.test")
	var rc fasthttp.RequestCtx
	rc.Init2(keptCertConn{Conn: &net.TCPConn{}, cert: leaf}, nil, false)
	c := sdk.AcquireCtx(&rc)
	defer sdk.ReleaseCtx(c)
	if got := c.ClientCertificate(); got != leaf {
		t.Fatalf("got %v, want the connection's certificate", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.ClientCertificate() }); n != 0 {
		t.Fatalf("ClientCertificate allocates %v times on a connection that keeps its certificate", n)
	}
}
