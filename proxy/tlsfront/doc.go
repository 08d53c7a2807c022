// Package tlsfront terminates TLS on Weir's proxy listeners (README.md,
// "TLS listeners").
//
// A Front is one TLS listener's state: its tls.Config, built once, and the
// certificate set its GetCertificate reads through an atomic pointer, so a
// reload of the certificate files swaps the set without touching a
// connection or a handshake in progress. Listener wraps a TCP listener:
// Accept returns at once (the handshake would otherwise stall fasthttp's
// single accept loop); the connection's first Read, on the worker that
// serves it, looks at the first byte (a plain-HTTP request is answered 400
// and closed), then drives the handshake bounded by the handshake timeout,
// and counts it in weir_tls_handshakes_total.
//
// Conn implements fasthttp's tlsConn interface (Handshake and
// ConnectionState), so RequestCtx.IsTLS and TLSConnectionState see it.
package tlsfront
