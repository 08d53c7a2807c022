// Package config is Weir's config file: the schema (docs/config.md, generated
// from it), parsing of YAML and JSON into one canonical form, ${VAR}
// expansion, defaults applied in one place, and validation that reports
// every error with its place and a fix.
//
// The proxy compiles a validated Config into an immutable snapshot; this
// package knows nothing of the data plane.
package config

import (
	"encoding/json"

	"github.com/weirgw/weir/sdk"
)

// Config is the whole file. Field names are the file's snake_case keys (docs/config.md).
type Config struct {
	Listen    Listeners  `json:"listen"`               // the proxy listeners: one address, or a list of addresses and listener objects
	Admin     *Admin     `json:"admin,omitempty"`      // the admin listener (admin API, /metrics, status page); off when absent
	Redis     *Redis     `json:"redis,omitempty"`      // the Redis a cluster shares (rate limits, cache, ACME storage); none when absent
	Server    Server     `json:"server"`               // the proxy listeners' limits and timeouts
	Services  []Service  `json:"services,omitempty"`   // the named groups of upstream targets routes send to
	Routes    []Route    `json:"routes,omitempty"`     // what requests match and where they go; the first match wins (README, "Route precedence")
	Consumers []Consumer `json:"consumers,omitempty"`  // the identified clients that auth plugins attribute requests to
	Plugins   []Plugin   `json:"plugins,omitempty"`    // global plugins, on every route; a route's own instance of the same name replaces the global one
	Tracing   *Tracing   `json:"tracing,omitempty"`    // trace spans exported over OTLP/HTTP; off when absent
	AccessLog *AccessLog `json:"access_log,omitempty"` // one line per request, json or combined; off when absent
	Analytics *Analytics `json:"analytics,omitempty"`  // per-consumer traffic metrics; off when absent

	facts *routeFacts // what a Reader knows of Routes (routefacts.go)
}

// Listener is one proxy listener. In the file it is either an address
// string (cleartext HTTP/1.1) or an object with an address and a tls
// section (HTTPS).
type Listener struct {
	Address string       `json:"address"`       // host:port to listen on; ":8080" listens on every address
	TLS     *ListenerTLS `json:"tls,omitempty"` // terminates TLS (HTTPS) on this listener; cleartext when absent
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
	// "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"); ECDHE CBC suites are taken
	// with a warning, RSA key exchange never; TLS 1.3 suites are fixed.
	Ciphers    []string    `json:"ciphers,omitempty"`
	ClientAuth *ClientAuth `json:"client_auth,omitempty"` // asks clients for a certificate (mutual TLS); none asked when absent
	// ACME obtains and renews certificates for its domains from an ACME
	// CA; certificates from files still win for the names they cover.
	ACME *ACME `json:"acme,omitempty"`
}

// ACME is a listener's automatic certificates (README.md, "TLS
// listeners", ACME).
type ACME struct {
	Email     string   `json:"email,omitempty"`     // the ACME account's contact address
	Domains   []string `json:"domains"`             // the host names to obtain certificates for
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
	Cert string `json:"cert"` // PEM certificate chain file, leaf first
	Key  string `json:"key"`  // PEM private key file of cert
}

// ClientAuth asks clients for a certificate signed by CA.
type ClientAuth struct {
	Mode string `json:"mode,omitempty"` // none | optional | require
	CA   string `json:"ca,omitempty"`   // PEM file of the CAs client certificates must chain to
}

// Admin is the admin listener: admin API, /metrics, status page, pprof.
type Admin struct {
	Listen string `json:"listen"`          // host:port of the admin listener; a non-loopback one needs a token
	Token  string `json:"token,omitempty"` // when set, every admin endpoint needs Authorization: Bearer TOKEN
	// Pprof exposes /debug/pprof/* on the admin listener (behind the token
	// when one is set). Off by default.
	Pprof bool `json:"pprof,omitempty"`
}

// Redis is the shared state of a cluster.
type Redis struct {
	Addrs     []string `json:"addrs"`                // host:port of the Redis server; with master_set, of the sentinels
	Username  string   `json:"username,omitempty"`   // ACL user name (Redis 6+)
	Password  string   `json:"password,omitempty"`   // AUTH password; masked in GET /config
	DB        int      `json:"db,omitempty"`         // the logical database number (SELECT)
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
	MaxHeaderBytes int      `json:"max_header_bytes,omitempty"` // the largest request header accepted; a larger one is answered 431
	MaxBodyBytes   int64    `json:"max_body_bytes,omitempty"`   // the largest request body accepted; a larger one is answered 413
	ReadTimeout    Duration `json:"read_timeout,omitempty"`     // bounds reading one client request (header and buffered body)
	WriteTimeout   Duration `json:"write_timeout,omitempty"`    // bounds writing one response to the client
	IdleTimeout    Duration `json:"idle_timeout,omitempty"`     // closes a keep-alive client connection idle this long
	DrainTimeout   Duration `json:"drain_timeout,omitempty"`    // on stop, how long requests in flight may take to finish before connections are closed
	DrainGrace     Duration `json:"drain_grace,omitempty"`      // how long a stopping server keeps idle keep-alive connections open
	MaxConns       int      `json:"max_conns,omitempty"`        // concurrent client connections, 0 = default
	MaxConnsPerIP  int      `json:"max_conns_per_ip,omitempty"` // 0 = unlimited
	// MaxConcurrentStreams bounds the streams an HTTP/2 client may have
	// open on one connection.
	MaxConcurrentStreams int      `json:"max_concurrent_streams,omitempty"`
	LatencyHeaders       bool     `json:"latency_headers,omitempty"` // adds X-Weir-Upstream-Latency and X-Weir-Proxy-Latency (ms) to every response
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
	// GCHeapFloor is the least heap the Go garbage collector lets grow
	// before it collects (bytes): with a small live heap it collects
	// once per this much garbage instead of every 4 MiB; a larger live
	// heap keeps Go's own goal (GOGC 100). 0 turns it off; GOGC or
	// GOMEMLIMIT in the environment turn it off too. A reload or an
	// admin-API write applies it.
	GCHeapFloor *int64 `json:"gc_heap_floor,omitempty"`
}

// HeapFloor is server.gc_heap_floor, its default when unset.
func (s *Server) HeapFloor() int64 {
	if s.GCHeapFloor != nil {
		return *s.GCHeapFloor
	}
	return DefaultGCHeapFloor
}

// WebSocket settings, at server level (the default) or on a route.
type WebSocket struct {
	// IdleTimeout closes a WebSocket through which no byte has passed,
	// either way, for this long.
	IdleTimeout Duration `json:"idle_timeout,omitempty"`
}

// Service is a named group of targets.
type Service struct {
	Name              string          `json:"name"`                           // the name routes and aggregate backends refer to
	Targets           []Target        `json:"targets,omitempty"`              // the static upstream targets (discovery may add more)
	Balancer          string          `json:"balancer,omitempty"`             // round_robin | least_conn | consistent_hash | random
	HashOn            string          `json:"hash_on,omitempty"`              // ip | consumer | path | header:NAME | cookie:NAME
	ConnectTimeout    Duration        `json:"connect_timeout,omitempty"`      // bounds dialling a target (and the TLS handshake)
	Timeout           Duration        `json:"timeout,omitempty"`              // bounds one try, from sending the request until the whole response is read; a retry gets its own
	Retries           *int            `json:"retries,omitempty"`              // extra tries on another target: for any request after a failure that sent nothing (connect error, no free connection), else for idempotent requests without a streamed body, not after a timeout
	MaxConnsPerTarget int             `json:"max_conns_per_target,omitempty"` // the most connections open to one target; requests over it wait up to max_conn_wait
	MaxConnWait       Duration        `json:"max_conn_wait,omitempty"`        // bounded wait for a free connection, first come first served, within the try's timeout; then 503
	HealthCheck       *HealthCheck    `json:"health_check,omitempty"`         // active probing and passive observation of the targets; none when absent
	CircuitBreaker    *CircuitBreaker `json:"circuit_breaker,omitempty"`      // opens a target's circuit when too many requests fail; off when absent
	Discovery         *Discovery      `json:"discovery,omitempty"`            // takes more targets from DNS (SRV or A/AAAA), re-resolved every interval; off when absent
	TLS               *UpstreamTLS    `json:"tls,omitempty"`                  // for https:// targets
}

// UpstreamTLS configures the TLS client of a service's https:// targets
// (forwarding and health checks alike). Without it an https:// target is
// verified against the system roots with the target's host as SNI.
type UpstreamTLS struct {
	CA                 string `json:"ca,omitempty"`                   // PEM file of the CAs to trust instead of the system roots
	ServerName         string `json:"server_name,omitempty"`          // SNI and the name verified; default: the target's host
	Cert               string `json:"cert,omitempty"`                 // PEM client certificate (chain), with key
	Key                string `json:"key,omitempty"`                  // PEM private key of cert
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"` // skips verifying the target's certificate (tests only: anyone in the path can read the traffic)
	MinVersion         string `json:"min_version,omitempty"`          // "1.2" | "1.3"
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
	URL    string `json:"url"`              // http:// or https:// scheme, host and port of the target; no path
	Weight *int   `json:"weight,omitempty"` // default 100
}

// HealthCheck configures active probing and passive observation.
type HealthCheck struct {
	Active  *ActiveHealthCheck  `json:"active,omitempty"`  // probes each target on an interval; off when absent
	Passive *PassiveHealthCheck `json:"passive,omitempty"` // marks targets down from failures seen on real traffic; off when absent
}

// ActiveHealthCheck probes each target on an interval.
type ActiveHealthCheck struct {
	Path           string   `json:"path,omitempty"`            // the path probed with GET
	Interval       Duration `json:"interval,omitempty"`        // time between two probes of a target
	Timeout        Duration `json:"timeout,omitempty"`         // bounds one probe
	HealthyAfter   int      `json:"healthy_after,omitempty"`   // consecutive good probes that bring a down target back
	UnhealthyAfter int      `json:"unhealthy_after,omitempty"` // consecutive failed probes that take a target down
	ExpectStatus   []int    `json:"expect_status,omitempty"`   // default: any 2xx/3xx
}

// PassiveHealthCheck marks a target down after consecutive failures seen
// on real traffic, and back up after a quiet period.
type PassiveHealthCheck struct {
	UnhealthyAfter int `json:"unhealthy_after,omitempty"`  // consecutive failed requests (connect errors, 502/503/504) that take a target down
	HealthyAfterMs int `json:"healthy_after_ms,omitempty"` // milliseconds after which a target taken down passively gets traffic again
}

// CircuitBreaker opens per target when the failure ratio over a window is
// too high.
type CircuitBreaker struct {
	FailureRatio float64  `json:"failure_ratio,omitempty"` // the share of failed requests in the window that opens the circuit (0..1)
	MinRequests  int      `json:"min_requests,omitempty"`  // requests needed in the window before the ratio is judged
	Window       Duration `json:"window,omitempty"`        // the sliding window the failure ratio is counted over
	OpenFor      Duration `json:"open_for,omitempty"`      // how long an open circuit sends nothing to the target before a trial request
}

// Route matches requests and sends them to a service (or aggregates
// several).
type Route struct {
	Name         string            `json:"name"`                    // unique name, in metrics, logs and errors
	Hosts        []string          `json:"hosts,omitempty"`         // Host values matched: exact names or "*." wildcards; any host when empty
	Paths        []string          `json:"paths,omitempty"`         // paths matched: prefixes ("/users"), exact ("=/users"), parameters ("/users/{id}") or regexes ("~^/v[0-9]+/")
	Methods      []string          `json:"methods,omitempty"`       // methods matched; any when empty (a path match with another method is answered 405)
	Headers      map[string]string `json:"headers,omitempty"`       // request fields that must have these exact values
	StripPath    bool              `json:"strip_path,omitempty"`    // removes the matched prefix from the path sent upstream
	PreserveHost bool              `json:"preserve_host,omitempty"` // sends the client's Host upstream instead of the target's
	Service      string            `json:"service,omitempty"`       // the service requests are forwarded to; absent with aggregate
	Plugins      []Plugin          `json:"plugins,omitempty"`       // the route's plugins, run after the global ones
	Aggregate    *Aggregate        `json:"aggregate,omitempty"`     // GETs several backends in parallel and answers their JSON under one object; instead of service
	AccessLog    *bool             `json:"access_log,omitempty"`    // false: this route's requests are not logged
	WebSocket    *WebSocket        `json:"websocket,omitempty"`     // overrides server.websocket
}

// Aggregate fans a request out to several backends and merges their JSON.
type Aggregate struct {
	Timeout  Duration           `json:"timeout,omitempty"` // bounds the whole aggregate request, every backend included
	Backends []AggregateBackend `json:"backends"`          // the backends asked, one key of the answer each
}

// AggregateBackend is one leg of an aggregate route.
type AggregateBackend struct {
	Service  string `json:"service"`            // the service this backend is asked through
	Path     string `json:"path"`               // the path requested, with the route's {param}s substituted
	Key      string `json:"key"`                // the key of this backend's JSON in the answer
	Optional bool   `json:"optional,omitempty"` // a failure gives null (named in X-Weir-Aggregate-Missing) instead of a 502
}

// Consumer is an identified client.
type Consumer struct {
	Name        string          `json:"name"`                  // unique name, given to plugins, logs and limits keyed on consumer
	Groups      []string        `json:"groups,omitempty"`      // group names, for acl
	Credentials sdk.Credentials `json:"credentials,omitempty"` // per auth plugin (key_auth, jwt, mtls_auth...), a list of that plugin's credential objects (see its README)
}

// Plugin is one plugin instance, global or on a route.
type Plugin struct {
	Name    string          `json:"name"`              // the plugin, such as key_auth or rate_limit (README, plugin table)
	Enabled *bool           `json:"enabled,omitempty"` // default true
	Config  json.RawMessage `json:"config,omitempty"`  // the plugin's own settings (plugins/<name>/README.md)
}
