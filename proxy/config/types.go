// Package config is Weir's config file: the schema (docs/config.md, generated
// from it), parsing of YAML and JSON into one canonical form, ${VAR}
// expansion, defaults applied in one place, and validation that reports
// every error with its place and a fix.
//
// The proxy compiles a validated Config into an immutable snapshot; this
// package knows nothing of the data plane.
package config

import "encoding/json"

// Config is the whole file. Field names are the file's snake_case keys (docs/config.md).
type Config struct {
	Listen    Listeners  `json:"listen"`
	Admin     *Admin     `json:"admin,omitempty"`
	Redis     *Redis     `json:"redis,omitempty"`
	Server    Server     `json:"server"`
	Services  []Service  `json:"services,omitempty"`
	Routes    []Route    `json:"routes,omitempty"`
	Consumers []Consumer `json:"consumers,omitempty"`
	Plugins   []Plugin   `json:"plugins,omitempty"`
	Tracing   *Tracing   `json:"tracing,omitempty"`    // trace spans exported over OTLP/HTTP; off when absent
	AccessLog *AccessLog `json:"access_log,omitempty"` // one line per request, json or combined; off when absent
	Analytics *Analytics `json:"analytics,omitempty"`  // per-consumer traffic metrics; off when absent
}

// Listener is one proxy listener. In the file it is either an address
// string (cleartext HTTP/1.1) or an object with an address and a tls
// section (HTTPS).
type Listener struct {
	Address string       `json:"address"`
	TLS     *ListenerTLS `json:"tls,omitempty"`
	// HTTP2 speaks HTTP/2 beside HTTP/1.1: h2 through ALPN with tls, else
	// h2c (prior knowledge and Upgrade: h2c).
	HTTP2 bool `json:"http2,omitempty"`
}

// ListenerTLS terminates TLS on a listener (README.md, "TLS listeners").
type ListenerTLS struct {
	// Certificates are chosen per connection by SNI against each
	// certificate's DNS names, then by what the client supports (ECDSA
	// preferred); the first is the default.
	Certificates []CertificatePair `json:"certificates"`
	MinVersion   string            `json:"min_version,omitempty"` // "1.2" | "1.3"
	// Ciphers replaces the default TLS 1.2 cipher suites (Go names, such as
	// "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"); TLS 1.3 suites are fixed.
	Ciphers    []string    `json:"ciphers,omitempty"`
	ClientAuth *ClientAuth `json:"client_auth,omitempty"`
	// ACME obtains and renews certificates for its domains from an ACME
	// CA; certificates from files still win for the names they cover.
	ACME *ACME `json:"acme,omitempty"`
}

// ACME is a listener's automatic certificates (README.md, "TLS
// listeners", ACME).
type ACME struct {
	Email     string   `json:"email,omitempty"`
	Domains   []string `json:"domains"`
	Directory string   `json:"directory,omitempty"` // the CA's directory URL (https)
	// Storage is the directory that keeps the account, keys and
	// certificates (relative to the config file) when no redis is set;
	// with redis they are kept there, shared by the cluster.
	Storage string `json:"storage,omitempty"`
	// CA is a PEM file of the roots the ACME server's own certificate
	// chains to, for private ACME servers; the system roots otherwise.
	CA string `json:"ca,omitempty"`
	// RenewWindow is the share of a certificate's lifetime, counted back
	// from its expiry, in which it is renewed (certmagic's renewal window
	// ratio), unless the CA's renewal information (ARI) says sooner.
	RenewWindow float64 `json:"renew_window,omitempty"`
	// RenewCheckInterval is how often the certificates are checked for
	// renewal.
	RenewCheckInterval Duration `json:"renew_check_interval,omitempty"`
}

// CertificatePair is a PEM certificate chain file and its key file.
// Relative paths are relative to the config file's directory.
type CertificatePair struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// ClientAuth asks clients for a certificate signed by CA.
type ClientAuth struct {
	Mode string `json:"mode,omitempty"` // none | optional | require
	CA   string `json:"ca,omitempty"`   // PEM file of the CAs client certificates must chain to
}

// Admin is the admin listener: admin API, /metrics, status page, pprof.
type Admin struct {
	Listen string `json:"listen"`
	Token  string `json:"token,omitempty"`
	// Pprof exposes /debug/pprof/* on the admin listener (behind the token
	// when one is set). Off by default.
	Pprof bool `json:"pprof,omitempty"`
}

// Redis is the shared state of a cluster.
type Redis struct {
	Addrs     []string `json:"addrs"`
	Username  string   `json:"username,omitempty"`
	Password  string   `json:"password,omitempty"`
	DB        int      `json:"db,omitempty"`
	MasterSet string   `json:"master_set,omitempty"` // sentinel master name; addrs are then sentinels
	// Timeout bounds one Redis round trip made on a request's time.
	Timeout Duration `json:"timeout,omitempty"`
	// FlushDelay lets the client's pipeline wait up to this long after a
	// write to gather the next commands into one write (rueidis
	// MaxFlushDelay): fewer system calls on both sides under load, up to
	// that much added to a Redis round trip. 0 writes at once.
	FlushDelay Duration `json:"flush_delay,omitempty"`
}

// Server holds the proxy listener's limits.
type Server struct {
	MaxHeaderBytes int      `json:"max_header_bytes,omitempty"`
	MaxBodyBytes   int64    `json:"max_body_bytes,omitempty"`
	ReadTimeout    Duration `json:"read_timeout,omitempty"`
	WriteTimeout   Duration `json:"write_timeout,omitempty"`
	IdleTimeout    Duration `json:"idle_timeout,omitempty"`
	DrainTimeout   Duration `json:"drain_timeout,omitempty"`
	DrainGrace     Duration `json:"drain_grace,omitempty"`      // how long a stopping server keeps idle keep-alive connections open
	MaxConns       int      `json:"max_conns,omitempty"`        // concurrent client connections, 0 = default
	MaxConnsPerIP  int      `json:"max_conns_per_ip,omitempty"` // 0 = unlimited
	// MaxConcurrentStreams bounds the streams an HTTP/2 client may have
	// open on one connection.
	MaxConcurrentStreams int      `json:"max_concurrent_streams,omitempty"`
	LatencyHeaders       bool     `json:"latency_headers,omitempty"`
	TrustedProxies       []string `json:"trusted_proxies,omitempty"` // CIDRs whose X-Forwarded-For is believed
	// UnderscoresInHeaders keeps request fields whose names hold "_"; by
	// default they are dropped (nginx's underscores_in_headers).
	UnderscoresInHeaders bool `json:"underscores_in_headers,omitempty"`
	// MaxWebSockets caps the WebSockets open at once; a handshake over it
	// is answered 503.
	MaxWebSockets int        `json:"max_websockets,omitempty"`
	WebSocket     *WebSocket `json:"websocket,omitempty"` // defaults for every route's WebSockets
	// WasmCacheDir is where the wasm plugin keeps the machine code of
	// the modules it compiled, so that a restart or reload does not
	// compile them again; "off" keeps it in memory only.
	WasmCacheDir string `json:"wasm_cache_dir,omitempty"`
}

// WebSocket settings, at server level (the default) or on a route.
type WebSocket struct {
	// IdleTimeout closes a WebSocket through which no byte has passed,
	// either way, for this long.
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
}

// Service is a named group of targets.
type Service struct {
	Name              string          `json:"name"`
	Targets           []Target        `json:"targets,omitempty"`
	Balancer          string          `json:"balancer,omitempty"` // round_robin | least_conn | consistent_hash | random
	HashOn            string          `json:"hash_on,omitempty"`  // ip | consumer | path | header:NAME | cookie:NAME
	ConnectTimeout    Duration        `json:"connect_timeout,omitempty"`
	Timeout           Duration        `json:"timeout,omitempty"`
	Retries           *int            `json:"retries,omitempty"`
	MaxConnsPerTarget int             `json:"max_conns_per_target,omitempty"`
	MaxConnWait       Duration        `json:"max_conn_wait,omitempty"` // bounded wait for a free connection
	HealthCheck       *HealthCheck    `json:"health_check,omitempty"`
	CircuitBreaker    *CircuitBreaker `json:"circuit_breaker,omitempty"`
	Discovery         *Discovery      `json:"discovery,omitempty"`
	TLS               *UpstreamTLS    `json:"tls,omitempty"` // for https:// targets
}

// UpstreamTLS configures the TLS client of a service's https:// targets
// (forwarding and health checks alike). Without it an https:// target is
// verified against the system roots with the target's host as SNI.
type UpstreamTLS struct {
	CA                 string `json:"ca,omitempty"`          // PEM file of the CAs to trust instead of the system roots
	ServerName         string `json:"server_name,omitempty"` // SNI and the name verified; default: the target's host
	Cert               string `json:"cert,omitempty"`        // PEM client certificate (chain), with key
	Key                string `json:"key,omitempty"`         // PEM private key of cert
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
	MinVersion         string `json:"min_version,omitempty"` // "1.2" | "1.3"
}

// Discovery takes a service's targets from DNS, re-resolved every
// Interval: an SRV name (its records give host and port) or a name whose
// A/AAAA records are used with Port. Discovered targets come in addition
// to the static ones and are not part of the config a GET /config returns.
type Discovery struct {
	DNS      string   `json:"dns"`                // "_users._tcp.svc.example" (SRV) or "users.svc.example" (A/AAAA)
	Type     string   `json:"type,omitempty"`     // SRV | A | AAAA; default SRV when dns starts with "_", else A
	Port     int      `json:"port,omitempty"`     // required for A/AAAA
	Scheme   string   `json:"scheme,omitempty"`   // http | https
	Interval Duration `json:"interval,omitempty"` // re-resolution period
	Resolver string   `json:"resolver,omitempty"` // "127.0.0.1:5353"; empty: the system's (/etc/resolv.conf)
}

// Discovery record types.
const (
	DiscoverySRV  = "SRV"
	DiscoveryA    = "A"
	DiscoveryAAAA = "AAAA"
)

// Target is one backend address of a service.
type Target struct {
	URL    string `json:"url"`
	Weight *int   `json:"weight,omitempty"` // default 100
}

// HealthCheck configures active probing and passive observation.
type HealthCheck struct {
	Active  *ActiveHealthCheck  `json:"active,omitempty"`
	Passive *PassiveHealthCheck `json:"passive,omitempty"`
}

// ActiveHealthCheck probes each target on an interval.
type ActiveHealthCheck struct {
	Path           string   `json:"path,omitempty"`
	Interval       Duration `json:"interval,omitempty"`
	Timeout        Duration `json:"timeout,omitempty"`
	HealthyAfter   int      `json:"healthy_after,omitempty"`
	UnhealthyAfter int      `json:"unhealthy_after,omitempty"`
	ExpectStatus   []int    `json:"expect_status,omitempty"` // default: any 2xx/3xx
}

// PassiveHealthCheck marks a target down after consecutive failures seen
// on real traffic, and back up after a quiet period.
type PassiveHealthCheck struct {
	UnhealthyAfter int `json:"unhealthy_after,omitempty"`
	HealthyAfterMs int `json:"healthy_after_ms,omitempty"`
}

// CircuitBreaker opens per target when the failure ratio over a window is
// too high.
type CircuitBreaker struct {
	FailureRatio float64  `json:"failure_ratio,omitempty"`
	MinRequests  int      `json:"min_requests,omitempty"`
	Window       Duration `json:"window,omitempty"`
	OpenFor      Duration `json:"open_for,omitempty"`
}

// Route matches requests and sends them to a service (or aggregates
// several).
type Route struct {
	Name         string            `json:"name"`
	Hosts        []string          `json:"hosts,omitempty"`
	Paths        []string          `json:"paths,omitempty"`
	Methods      []string          `json:"methods,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	StripPath    bool              `json:"strip_path,omitempty"`
	PreserveHost bool              `json:"preserve_host,omitempty"`
	Service      string            `json:"service,omitempty"`
	Plugins      []Plugin          `json:"plugins,omitempty"`
	Aggregate    *Aggregate        `json:"aggregate,omitempty"`
	AccessLog    *bool             `json:"access_log,omitempty"` // false: this route's requests are not logged
	WebSocket    *WebSocket        `json:"websocket,omitempty"`  // overrides server.websocket
}

// Aggregate fans a request out to several backends and merges their JSON.
type Aggregate struct {
	Timeout  Duration           `json:"timeout,omitempty"`
	Backends []AggregateBackend `json:"backends"`
}

// AggregateBackend is one leg of an aggregate route.
type AggregateBackend struct {
	Service  string `json:"service"`
	Path     string `json:"path"`
	Key      string `json:"key"`
	Optional bool   `json:"optional,omitempty"`
}

// Consumer is an identified client.
type Consumer struct {
	Name        string                       `json:"name"`
	Groups      []string                     `json:"groups,omitempty"`
	Credentials map[string][]json.RawMessage `json:"credentials,omitempty"`
}

// Plugin is one plugin instance, global or on a route.
type Plugin struct {
	Name    string          `json:"name"`
	Enabled *bool           `json:"enabled,omitempty"` // default true
	Config  json.RawMessage `json:"config,omitempty"`
}
