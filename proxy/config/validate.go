package config

import (
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/weirgw/weir/internal/httpsyntax"
)

// Validate checks c and returns an ErrorList with every problem found
// (nil when there is none), each naming file, the place and the fix.
//
// Validate accepts a config with or without defaults applied: a zero value
// reads as "the default". Call ApplyDefaults first anyway, so that the
// config that was validated is the one that runs. Plugin configs are
// checked later by each plugin's Factory.New when the config is compiled;
// here only the plugin names are.
func Validate(c *Config, file string) error {
	v := &validator{errs: errs{file: file}, c: c, services: map[string]int{}}
	for i, s := range c.Services {
		if _, dup := v.services[s.Name]; !dup && s.Name != "" {
			v.services[s.Name] = i
			v.serviceNames = append(v.serviceNames, s.Name)
		}
	}
	v.listen()
	v.admin()
	v.redis()
	v.server()
	v.checkServices()
	v.checkRoutes()
	v.checkConsumers()
	v.pluginList("plugins", c.Plugins)
	v.tracing()
	v.accessLog()
	v.analytics()
	return v.err()
}

type validator struct {
	errs
	c *Config
	// services indexes the first service of each name; serviceNames keeps
	// them in file order for "known: ..." hints.
	services     map[string]int
	serviceNames []string
}

func (v *validator) listen() {
	seen := map[string]int{}
	for i, l := range v.c.Listen {
		place := "listen"
		if len(v.c.Listen) > 1 {
			place = index("listen", i)
		}
		a := l.Address
		if err := checkListenAddr(a); err != nil {
			if l.TLS != nil {
				place = key(place, "address")
			}
			v.add(place, "%v", err)
		} else if j, dup := seen[a]; dup {
			v.add(place, "%q is listed twice (also listen[%d]); keep one", a, j)
		} else {
			seen[a] = i
		}
		if l.TLS != nil {
			v.listenerTLS(key(place, "tls"), l.TLS)
		}
	}
}

// acme checks a listener's acme section. Whether the storage directory
// can be made and the CA answers is found at start.
func (v *validator) acme(place string, a *ACME) {
	if len(a.Domains) == 0 {
		v.add(key(place, "domains"), "no domains: list the names the certificate is for, such as [api.example.com]")
	}
	for i, d := range a.Domains {
		if d == "" || strings.ContainsAny(d, " /:@") || strings.HasPrefix(d, "*") {
			v.add(index(key(place, "domains"), i), "%q is not a domain name an ACME CA issues for with TLS-ALPN: give a host name such as api.example.com (no wildcard, port or scheme)", d)
		}
	}
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		v.add(key(place, "directory"), "%q is not an https URL: give the ACME CA's directory URL, such as %q", a.Directory, DefaultACMEDirectory)
	}
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		v.add(key(place, "email"), "%q is not an email address: the CA writes to it about expiring certificates", a.Email)
	}
	if a.RenewWindow < 0 || a.RenewWindow >= 1 {
		v.add(key(place, "renew_window"), "%v is not a share of a certificate's lifetime: give a number between 0 and 1, such as 0.33 (renew in the last third)", a.RenewWindow)
	}
}

// listenerTLS checks a listener's tls section as written. Whether its
// files load, match and are in date is checked where they are read
// (package tlsfront), by `weir validate` and at start.
func (v *validator) listenerTLS(place string, t *ListenerTLS) {
	if len(t.Certificates) == 0 && t.ACME == nil {
		v.add(key(place, "certificates"), "a TLS listener needs at least one certificate: list {cert: FILE, key: FILE} pairs, or set acme")
	}
	if t.ACME != nil {
		v.acme(key(place, "acme"), t.ACME)
	}
	for i, c := range t.Certificates {
		p := index(key(place, "certificates"), i)
		if c.Cert == "" {
			v.add(key(p, "cert"), "no certificate file: give the path of a PEM certificate (chain)")
		}
		if c.Key == "" {
			v.add(key(p, "key"), "no key file: give the path of the certificate's PEM private key")
		}
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		v.add(key(place, "min_version"), `%q is not a TLS version Weir accepts: write "1.2" or "1.3"`, t.MinVersion)
	}
	for i, name := range t.Ciphers {
		if _, _, ok := TLSCipherSuite(name); !ok {
			v.add(index(key(place, "ciphers"), i), "%q is not a TLS 1.2 cipher suite Weir accepts: use a Go name such as %q (ECDHE with AES-GCM or ChaCha20-Poly1305; ECDHE CBC suites only when old clients need them; RSA key exchange, RC4 and 3DES never)", name, DefaultTLSCiphers[1])
		}
	}
	if ca := t.ClientAuth; ca != nil {
		p := key(place, "client_auth")
		switch ca.Mode {
		case "", ClientAuthNone:
		case ClientAuthOptional, ClientAuthRequire:
			if ca.CA == "" {
				v.add(key(p, "ca"), "client_auth mode %q needs ca: the PEM file of the CAs that sign client certificates", ca.Mode)
			}
		default:
			v.add(key(p, "mode"), "%q is not a client_auth mode: write none, optional or require", ca.Mode)
		}
	}
}

func (v *validator) admin() {
	a := v.c.Admin
	if a == nil {
		return
	}
	if a.Listen == "" {
		v.add("admin.listen", `the admin listener needs an address: write "127.0.0.1:8081", or remove the admin section to turn it off`)
		return
	}
	if err := checkListenAddr(a.Listen); err != nil {
		v.add("admin.listen", "%v", err)
		return
	}
	for _, l := range v.c.Listen {
		if sameListener(a.Listen, l.Address) {
			v.add("admin.listen", "%q collides with the proxy listener %q: give the admin listener another port", a.Listen, l.Address)
			break
		}
	}
	if !httpsyntax.ValidFieldValue(a.Token) {
		v.add("admin.token", "the token holds control characters: use printable characters only")
	}
	if a.Token == "" && !isLoopback(a.Listen) {
		v.add("admin.token", "the admin API listens on %q without a token, open to the network: set admin.token or listen on 127.0.0.1", a.Listen)
	}
}

func (v *validator) redis() {
	r := v.c.Redis
	if r == nil {
		return
	}
	if len(r.Addrs) == 0 {
		v.add("redis.addrs", `no address: list at least one host:port, such as ["127.0.0.1:6379"], or remove the redis section to keep state in memory`)
	}
	seen := map[string]bool{}
	for i, a := range r.Addrs {
		p := index("redis.addrs", i)
		if err := checkDialAddr(a); err != nil {
			v.add(p, "%v", err)
			continue
		}
		if seen[a] {
			v.add(p, "%q is listed twice; keep one", a)
		}
		seen[a] = true
	}
	if r.DB < 0 {
		v.add("redis.db", "%d is negative: use a database number from 0 (the default)", r.DB)
	}
	v.duration("redis.timeout", r.Timeout, 0, 10*time.Second)
	v.duration("redis.flush_delay", r.FlushDelay, 0, time.Millisecond)
}

func (v *validator) server() {
	s := &v.c.Server
	switch {
	case s.MaxHeaderBytes < 0:
		v.add("server.max_header_bytes", "%d is negative: use at least 1024 (the default is %d)", s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	case s.MaxHeaderBytes > 0 && s.MaxHeaderBytes < 1024:
		v.add("server.max_header_bytes", "%d is too small for real requests: use at least 1024 (the default is %d)", s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	case s.MaxHeaderBytes > 1<<20:
		v.add("server.max_header_bytes", "%d is over 1 MiB: every connection reserves a buffer this size; use at most 1048576", s.MaxHeaderBytes)
	}
	if s.MaxBodyBytes < 0 {
		v.add("server.max_body_bytes", "%d is negative: use a size in bytes (the default is %d)", s.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if s.MaxConns < 0 {
		v.add("server.max_conns", "%d is negative: use a number of connections (the default is %d)", s.MaxConns, DefaultMaxConns)
	}
	if s.MaxConcurrentStreams < 0 || s.MaxConcurrentStreams > 1000 {
		v.add("server.max_concurrent_streams", "%d is out of range: use 1 to 1000 HTTP/2 streams per connection (the default is %d)", s.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	}
	if s.MaxConnsPerIP < 0 {
		v.add("server.max_conns_per_ip", "%d is negative: use 0 for no limit or a number of connections", s.MaxConnsPerIP)
	}
	if f := s.GCHeapFloor; f != nil && *f < 0 {
		v.add("server.gc_heap_floor", "%d is negative: use a size in bytes, or 0 for off (the default is %d)", *f, DefaultGCHeapFloor)
	}
	if s.MaxWebSockets < 0 {
		v.add("server.max_websockets", "%d is negative: use a number of WebSockets (the default is %d)", s.MaxWebSockets, DefaultMaxWebSockets)
	}
	if s.WebSocket != nil {
		v.duration("server.websocket.idle_timeout", s.WebSocket.IdleTimeout, time.Millisecond, 0)
	}
	v.duration("server.read_timeout", s.ReadTimeout, time.Millisecond, 0)
	v.duration("server.write_timeout", s.WriteTimeout, time.Millisecond, 0)
	v.duration("server.idle_timeout", s.IdleTimeout, time.Millisecond, 0)
	v.duration("server.drain_timeout", s.DrainTimeout, 0, 0)
	v.duration("server.drain_grace", s.DrainGrace, 0, 0)
	for i, p := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err == nil {
			continue
		}
		v.add(index("server.trusted_proxies", i), "%q is not an IP address or a CIDR such as \"10.0.0.0/8\"", p)
	}
}

// duration checks a non-zero duration against bounds (0: no bound). Zero
// means the default and is always fine; negative values only come from
// configs built in code, the parser refuses them.
func (v *validator) duration(place string, d Duration, lo, hi time.Duration) {
	switch {
	case d == 0:
	case d < 0:
		v.add(place, "%s is negative: use a positive duration such as \"1s\"", d.D())
	case lo > 0 && d.D() < lo:
		v.add(place, "%s is too short: use at least %s", d.D(), lo)
	case hi > 0 && d.D() > hi:
		v.add(place, "%s is too long: use at most %s", d.D(), hi)
	}
}
