package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults, all of them, applied by ApplyDefaults. A zero value in the
// file ("0", "0s", absent) means "the default" for every key listed here,
// except where the table says 0 has a meaning of its own.
//
//	key                                          default      notes
//	listen                                       ":8080"
//	listen[].tls.min_version                     1.2          "1.2" | "1.3"
//	listen[].tls.ciphers                         -            TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305 only (DefaultTLSCiphers)
//	listen[].tls.client_auth.mode                none         only when client_auth is set
//	listen[].tls.acme.directory                  Let's Encrypt https://acme-v02.api.letsencrypt.org/directory
//	listen[].tls.acme.storage                    acme         relative to the config file; unused when redis is set
//	listen[].tls.acme.renew_window               0.3333       the last third of a certificate's lifetime
//	listen[].tls.acme.renew_check_interval       10m
//	redis.timeout                                50ms         only when redis is set
//	server.max_header_bytes                      8192
//	server.max_body_bytes                        10485760     10 MiB
//	server.read_timeout                          30s
//	server.write_timeout                         30s
//	server.idle_timeout                          60s
//	server.drain_timeout                         10s
//	server.drain_grace                           2s           at most drain_timeout
//	server.max_conns                             262144
//	server.max_conns_per_ip                      0            unlimited
//	server.max_concurrent_streams                100          HTTP/2 streams open at once on one client connection
//	server.underscores_in_headers                false        request fields whose names hold "_" are dropped
//	server.max_websockets                        16384        WebSockets open at once; over it a handshake gets 503
//	server.websocket.idle_timeout                60s          routes[].websocket.idle_timeout overrides it
//	server.wasm_cache_dir                        <user cache>/weir/wasm  os.UserCacheDir (~/.cache on Linux); "off": in memory only; relative to the config file; resolved when used (WasmCacheDir)
//	server.gc_heap_floor                         67108864     64 MiB; 0 is kept: off (Go's own 4 MiB minimum); off when GOGC or GOMEMLIMIT is set
//	services[].balancer                          round_robin
//	services[].hash_on                           ip           only with balancer consistent_hash
//	services[].connect_timeout                   1s
//	services[].timeout                           30s
//	services[].retries                           1            0 is kept: no retry
//	services[].max_conns_per_target              1024
//	services[].max_conn_wait                     30s          as long as timeout's default: a queue that outlasts what an answer may take is overload (503)
//	services[].targets[].weight                  100          0 is kept: drained
//	services[].targets[].url                     -            canonical form: lower-case scheme and host, explicit port (80/443)
//	services[].health_check.active.path          /healthz     only when active is set
//	services[].health_check.active.interval      5s
//	services[].health_check.active.timeout       1s
//	services[].health_check.active.healthy_after 2
//	services[].health_check.active.unhealthy_after 3
//	services[].health_check.passive.unhealthy_after 5         only when passive is set
//	services[].health_check.passive.healthy_after_ms 30000
//	services[].circuit_breaker.failure_ratio     0.5          only when circuit_breaker is set
//	services[].circuit_breaker.min_requests      20
//	services[].circuit_breaker.window            10s
//	services[].circuit_breaker.open_for          30s
//	services[].discovery.type                    SRV or A     only when discovery is set; SRV when dns starts with "_"
//	services[].discovery.scheme                  http
//	services[].discovery.interval                10s
//	services[].discovery.resolver                -            the system's (/etc/resolv.conf)
//	services[].tls.min_version                   "1.2"        only when tls is set; "1.3" is the other choice
//	services[].tls.server_name                   -            the target's host (an IP sends no SNI but is verified)
//	services[].tls.ca                            -            the system roots
//	routes[].aggregate.timeout                   2s
//	routes[].plugins[].enabled, plugins[].enabled true
//	tracing.otlp.endpoint                        http://127.0.0.1:4318/v1/traces  only when tracing is set
//	tracing.otlp.timeout                         2s           one export, retries included
//	tracing.sample                               0.01         0 is kept: only requests that arrive sampled
//	tracing.service_name                         weir
//	routes[].access_log                          true         only when the access_log section is set
//	access_log.path                              stdout       only when access_log is set; a file is relative to the config file
//	access_log.format                            json
//	access_log.fields                            -            every field (AccessLogFields), json only
//	access_log.sample                            1.0          0 is kept: only answers >= 400
//	access_log.buffer                            8192         lines waiting for the writer
//	analytics.max_consumers                      100          only when analytics is set
//
// Fixed, not configurable (the upstream transport's, proxy/transport):
//
//	stream threshold                             256 KiB      bodies up to this are buffered, larger ones stream
//	upstream idle timeout                        90s          pooled connections idle longer are closed
//	upstream max response header                 64 KiB
//
// Health checks and the circuit breaker are off unless their section is
// present; `health_check: {active: {}}` turns active checks on with the
// defaults above. admin, redis and tracing are off unless present. A service with
// no targets is valid (targets may be registered through the admin API);
// its routes answer 503 until one is.
const (
	DefaultListen               = ":8080"
	DefaultTLSMinVersion        = "1.2"
	DefaultClientAuthMode       = ClientAuthNone
	DefaultACMEDirectory        = "https://acme-v02.api.letsencrypt.org/directory"
	DefaultACMEStorage          = "acme"
	DefaultACMERenewWindow      = 1.0 / 3
	DefaultACMERenewCheck       = 10 * time.Minute
	DefaultRedisTimeout         = 50 * time.Millisecond
	DefaultMaxHeaderBytes       = 8192
	DefaultMaxConcurrentStreams = 100
	DefaultMaxBodyBytes         = 10 << 20
	DefaultReadTimeout          = 30 * time.Second
	DefaultWriteTimeout         = 30 * time.Second
	DefaultIdleTimeout          = 60 * time.Second
	DefaultDrainTimeout         = 10 * time.Second
	DefaultDrainGrace           = 2 * time.Second
	DefaultMaxConns             = 262144
	DefaultMaxWebSockets        = 16384
	DefaultWebSocketIdle        = 60 * time.Second
	DefaultGCHeapFloor          = 64 << 20
	DefaultBalancer             = BalancerRoundRobin
	DefaultHashOn               = "ip"
	DefaultConnectTimeout       = time.Second
	DefaultServiceTimeout       = 30 * time.Second
	DefaultRetries              = 1
	DefaultMaxConnsPerTarget    = 1024
	DefaultMaxConnWait          = 30 * time.Second
	DefaultWeight               = 100

	DefaultActivePath           = "/healthz"
	DefaultActiveInterval       = 5 * time.Second
	DefaultActiveTimeout        = time.Second
	DefaultActiveHealthyAfter   = 2
	DefaultActiveUnhealthyAfter = 3
	DefaultPassiveUnhealthy     = 5
	DefaultPassiveHealthyAfter  = 30000 // ms

	DefaultFailureRatio = 0.5
	DefaultMinRequests  = 20
	DefaultWindow       = 10 * time.Second
	DefaultOpenFor      = 30 * time.Second

	DefaultDiscoveryScheme   = "http"
	DefaultDiscoveryInterval = 10 * time.Second

	DefaultAggregateTimeout = 2 * time.Second

	DefaultUpstreamTLSMinVersion = "1.2"

	DefaultAccessLogSample        = 1.0
	DefaultAccessLogBuffer        = 8192
	DefaultMaxConsumers           = 100
	DefaultStreamThreshold        = 256 << 10
	DefaultUpstreamIdleTimeout    = 90 * time.Second
	DefaultUpstreamMaxHeaderBytes = 64 << 10
)

// WasmCacheOff as server.wasm_cache_dir keeps compiled wasm modules in
// memory only.
const WasmCacheOff = "off"

// WasmCacheDir is the directory the wasm plugin caches compiled modules
// in: server.wasm_cache_dir, relative paths resolved against configDir,
// else <os.UserCacheDir>/weir/wasm; "" (in memory only) for "off" or
// when the user has no cache directory (no $HOME nor $XDG_CACHE_HOME).
func WasmCacheDir(s *Server, configDir string) string {
	switch d := s.WasmCacheDir; {
	case d == WasmCacheOff:
		return ""
	case d != "":
		if !filepath.IsAbs(d) && configDir != "" {
			d = filepath.Join(configDir, d)
		}
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "weir", "wasm")
}

// DefaultTLSCiphers are the TLS 1.2 cipher suites of a listener without
// tls.ciphers: forward secrecy (ECDHE) and AEAD only, no RSA key exchange
// and no CBC, ECDSA first (Mozilla's "intermediate" profile). TLS 1.3
// suites are not configurable (Go always offers its three).
var DefaultTLSCiphers = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// Client authentication modes of a TLS listener.
const (
	ClientAuthNone     = "none"
	ClientAuthOptional = "optional"
	ClientAuthRequire  = "require"
)

// Balancer names.
const (
	BalancerRoundRobin     = "round_robin"
	BalancerLeastConn      = "least_conn"
	BalancerConsistentHash = "consistent_hash"
	BalancerRandom         = "random"
)

// ApplyDefaults fills every unset value of c with its default (see the
// table above) and puts target URLs in canonical form. It is idempotent
// and never fails: values it cannot canonicalize are left for Validate to
// report.
func ApplyDefaults(c *Config) {
	if len(c.Listen) == 0 {
		c.Listen = Listeners{{Address: DefaultListen}}
	}
	for i := range c.Listen {
		if t := c.Listen[i].TLS; t != nil {
			if t.MinVersion == "" {
				t.MinVersion = DefaultTLSMinVersion
			}
			if t.ClientAuth != nil && t.ClientAuth.Mode == "" {
				t.ClientAuth.Mode = DefaultClientAuthMode
			}
			if a := t.ACME; a != nil {
				if a.Directory == "" {
					a.Directory = DefaultACMEDirectory
				}
				if a.Storage == "" {
					a.Storage = DefaultACMEStorage
				}
				if a.RenewWindow == 0 {
					a.RenewWindow = DefaultACMERenewWindow
				}
				setDur(&a.RenewCheckInterval, DefaultACMERenewCheck)
			}
		}
	}
	if c.Redis != nil {
		setDur(&c.Redis.Timeout, DefaultRedisTimeout)
	}
	s := &c.Server
	setInt(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setInt(&s.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDur(&s.ReadTimeout, DefaultReadTimeout)
	setDur(&s.WriteTimeout, DefaultWriteTimeout)
	setDur(&s.IdleTimeout, DefaultIdleTimeout)
	setDur(&s.DrainTimeout, DefaultDrainTimeout)
	setDur(&s.DrainGrace, DefaultDrainGrace)
	setInt(&s.MaxConns, DefaultMaxConns)
	setInt(&s.MaxWebSockets, DefaultMaxWebSockets)
	if s.WebSocket == nil {
		s.WebSocket = &WebSocket{}
	}
	setDur(&s.WebSocket.IdleTimeout, DefaultWebSocketIdle)
	if s.GCHeapFloor == nil {
		s.GCHeapFloor = ptr(int64(DefaultGCHeapFloor))
	}

	for i := range c.Services {
		applyServiceDefaults(&c.Services[i])
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Aggregate != nil {
			setDur(&r.Aggregate.Timeout, DefaultAggregateTimeout)
		}
		applyPluginDefaults(r.Plugins)
	}
	applyPluginDefaults(c.Plugins)
	applyTracingDefaults(c.Tracing)
	applyAccessLogDefaults(c)
}

func applyServiceDefaults(s *Service) {
	if s.Balancer == "" {
		s.Balancer = DefaultBalancer
	}
	if s.Balancer == BalancerConsistentHash && s.HashOn == "" {
		s.HashOn = DefaultHashOn
	}
	setDur(&s.ConnectTimeout, DefaultConnectTimeout)
	setDur(&s.Timeout, DefaultServiceTimeout)
	if s.Retries == nil {
		s.Retries = ptr(DefaultRetries)
	}
	setInt(&s.MaxConnsPerTarget, DefaultMaxConnsPerTarget)
	setDur(&s.MaxConnWait, DefaultMaxConnWait)
	for j := range s.Targets {
		t := &s.Targets[j]
		if t.Weight == nil {
			t.Weight = ptr(DefaultWeight)
		}
		if u, err := CanonicalTargetURL(t.URL); err == nil {
			t.URL = u
		}
	}
	if hc := s.HealthCheck; hc != nil {
		if a := hc.Active; a != nil {
			if a.Path == "" {
				a.Path = DefaultActivePath
			}
			setDur(&a.Interval, DefaultActiveInterval)
			setDur(&a.Timeout, DefaultActiveTimeout)
			setInt(&a.HealthyAfter, DefaultActiveHealthyAfter)
			setInt(&a.UnhealthyAfter, DefaultActiveUnhealthyAfter)
		}
		if p := hc.Passive; p != nil {
			setInt(&p.UnhealthyAfter, DefaultPassiveUnhealthy)
			setInt(&p.HealthyAfterMs, DefaultPassiveHealthyAfter)
		}
	}
	if cb := s.CircuitBreaker; cb != nil {
		if cb.FailureRatio == 0 {
			cb.FailureRatio = DefaultFailureRatio
		}
		setInt(&cb.MinRequests, DefaultMinRequests)
		setDur(&cb.Window, DefaultWindow)
		setDur(&cb.OpenFor, DefaultOpenFor)
	}
	if d := s.Discovery; d != nil {
		if d.Type == "" {
			d.Type = DiscoveryA
			if strings.HasPrefix(d.DNS, "_") {
				d.Type = DiscoverySRV
			}
		}
		if d.Scheme == "" {
			d.Scheme = DefaultDiscoveryScheme
		}
		setDur(&d.Interval, DefaultDiscoveryInterval)
	}
	if t := s.TLS; t != nil && t.MinVersion == "" {
		t.MinVersion = DefaultUpstreamTLSMinVersion
	}
}

func applyPluginDefaults(ps []Plugin) {
	for i := range ps {
		if ps[i].Enabled == nil {
			ps[i].Enabled = ptr(true)
		}
	}
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func setDur(v *Duration, def time.Duration) {
	if *v == 0 {
		*v = Duration(def)
	}
}

func ptr[T any](v T) *T { return &v }

// TLSCipherSuite returns the id of a TLS 1.2 cipher suite that tls.ciphers
// may name: one of Go's secure list, all with forward secrecy (ECDHE).
// Go's insecure list (RSA key exchange, RC4, 3DES, CBC-SHA256) is refused.
// aead is false for the ECDHE CBC suites: outside the default policy, taken
// only when asked for, with a warning (see Warnings).
func TLSCipherSuite(name string) (id uint16, aead, ok bool) {
	for _, s := range tls.CipherSuites() {
		if s.Name != name || !strings.HasPrefix(name, "TLS_ECDHE_") {
			continue
		}
		return s.ID, !strings.Contains(name, "_CBC_"), true
	}
	return 0, false, false
}
