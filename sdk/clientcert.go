package sdk

import "crypto/x509"

// ClientCertificate is the certificate the client presented on a TLS
// listener with client_auth (README.md, "TLS listeners"), nil on a
// cleartext listener or when the client sent none. It is only ever a
// verified one: the listener fails the handshake of a certificate that
// does not chain to client_auth.ca, so no request reaches a plugin with
// it. The certificate belongs to the connection; do not modify it.
//
// A connection that keeps its verified certificate (the gateway's TLS
// listener records it once, at the handshake) answers without a copy;
// any other TLS connection's state is copied (fasthttp's
// TLSConnectionState), one allocation.
func (c *Ctx) ClientCertificate() *x509.Certificate {
	if kc, ok := c.rc.Conn().(interface{ VerifiedClientCertificate() *x509.Certificate }); ok {
		return kc.VerifiedClientCertificate()
	}
	st := c.rc.TLSConnectionState()
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil
	}
	return st.VerifiedChains[0][0]
}
