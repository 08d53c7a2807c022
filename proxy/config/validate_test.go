package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/weirgw/weir/sdk"
)

type validateCase struct {
	name string
	doc  string
	want []string // nil: valid
}

func runValidate(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseValidate(tc.doc)
			check(t, err, tc.want)
		})
	}
}

// svcs defines services users and orders for route tests.
const svcs = `
services:
  - name: users
    targets: [{url: "http://127.0.0.1:9001"}]
  - name: orders
    targets: [{url: "http://127.0.0.1:9002"}]
`

func TestValidateListen(t *testing.T) {
	runValidate(t, []validateCase{
		{"default", "server: {}", nil},
		{"one", `listen: ":80"`, nil},
		{"several", `listen: [":80", "127.0.0.1:8443", "[::1]:81", "localhost:0"]`, nil},
		{"bare port", `listen: "8080"`, []string{`listen: "8080" is not host:port: write ":8080" to listen on port 8080 on every interface`}},
		{"bad in list", `listen: [":80", "x"]`, []string{`listen[1]: "x" is not host:port: write it as ":8080" or "127.0.0.1:8080"`}},
		{"empty", `listen: [""]`, []string{`listen: the address is empty: write ":8080" to listen on every interface or "127.0.0.1:8080" for this host only`}},
		{"duplicate", `listen: [":80", ":81", ":80"]`, []string{`listen[2]: ":80" is listed twice (also listen[0]); keep one`}},
	})
}

func TestValidateListenTLS(t *testing.T) {
	runValidate(t, []validateCase{
		{"object", `listen: {address: ":8443", tls: {certificates: [{cert: a.pem, key: a-key.pem}]}}`, nil},
		{"mixed list", `listen: [":8080", {address: ":8443", tls: {certificates: [{cert: a.pem, key: k.pem}], min_version: "1.3", ciphers: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256], client_auth: {mode: require, ca: ca.pem}}}]`, nil},
		{"object without tls", `listen: [{address: ":8080"}]`, nil},
		{"no certificates", `listen: {address: ":8443", tls: {}}`,
			[]string{`listen.tls.certificates: a TLS listener needs at least one certificate: list {cert: FILE, key: FILE} pairs, or set acme`}},
		{"acme only", `listen: {address: ":8443", tls: {acme: {email: ops@example.com, domains: [api.example.com], storage: /var/lib/weir/acme}}}`, nil},
		{"acme beside files", `listen: {address: ":8443", tls: {certificates: [{cert: a, key: b}], acme: {domains: [api.example.com], directory: "https://acme.example/dir"}}}`, nil},
		{"acme wrong", `listen: {address: ":8443", tls: {acme: {email: ops, directory: "http://acme.example/dir", renew_window: 1.5}}}`,
			[]string{
				`listen.tls.acme.domains: no domains: list the names the certificate is for, such as [api.example.com]`,
				`listen.tls.acme.directory: "http://acme.example/dir" is not an https URL: give the ACME CA's directory URL, such as "https://acme-v02.api.letsencrypt.org/directory"`,
				`listen.tls.acme.email: "ops" is not an email address: the CA writes to it about expiring certificates`,
				`listen.tls.acme.renew_window: 1.5 is not a share of a certificate's lifetime: give a number between 0 and 1, such as 0.33 (renew in the last third)`,
			}},
		{"acme wildcard", `listen: {address: ":8443", tls: {acme: {domains: ["*.example.com"]}}}`,
			[]string{`listen.tls.acme.domains[0]: "*.example.com" is not a domain name an ACME CA issues for with TLS-ALPN: give a host name such as api.example.com (no wildcard, port or scheme)`}},
		{"pair without key", `listen: [":80", {address: ":8443", tls: {certificates: [{cert: a.pem}]}}]`,
			[]string{`listen[1].tls.certificates[0].key: no key file: give the path of the certificate's PEM private key`}},
		{"bad address", `listen: {address: "8443", tls: {certificates: [{cert: a, key: b}]}}`,
			[]string{`listen.address: "8443" is not host:port: write ":8443" to listen on port 8443 on every interface`}},
		{"bad version", `listen: {address: ":8443", tls: {certificates: [{cert: a, key: b}], min_version: "1.1"}}`,
			[]string{`listen.tls.min_version: "1.1" is not a TLS version Weir accepts: write "1.2" or "1.3"`}},
		{"weak cipher", `listen: {address: ":8443", tls: {certificates: [{cert: a, key: b}], ciphers: [TLS_RSA_WITH_AES_128_CBC_SHA]}}`,
			[]string{`listen.tls.ciphers[0]: "TLS_RSA_WITH_AES_128_CBC_SHA" is not a TLS 1.2 cipher suite Weir accepts: use a Go name such as "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" (ECDHE with AES-GCM or ChaCha20-Poly1305; ECDHE CBC suites only when old clients need them; RSA key exchange, RC4 and 3DES never)`}},
		{"client auth without ca", `listen: {address: ":8443", tls: {certificates: [{cert: a, key: b}], client_auth: {mode: optional}}}`,
			[]string{`listen.tls.client_auth.ca: client_auth mode "optional" needs ca: the PEM file of the CAs that sign client certificates`}},
		{"client auth mode", `listen: {address: ":8443", tls: {certificates: [{cert: a, key: b}], client_auth: {mode: always, ca: c}}}`,
			[]string{`listen.tls.client_auth.mode: "always" is not a client_auth mode: write none, optional or require`}},
		{"duplicate across forms", `listen: [":8443", {address: ":8443", tls: {certificates: [{cert: a, key: b}]}}]`,
			[]string{`listen[1]: ":8443" is listed twice (also listen[0]); keep one`}},
	})
}

func TestListenForms(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"x.yaml", "listen: [\":8080\", {address: \":8443\", tls: {certificates: [{cert: c.pem, key: k.pem}]}}]\n"},
		{"x.json", `{"listen": [":8080", {"address": ":8443", "tls": {"certificates": [{"cert": "c.pem", "key": "k.pem"}]}}]}`},
	} {
		c, err := ParseEnv(tc.name, []byte(tc.doc), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ApplyDefaults(c)
		if len(c.Listen) != 2 || c.Listen[0].Address != ":8080" || c.Listen[0].TLS != nil ||
			c.Listen[1].Address != ":8443" || c.Listen[1].TLS == nil || c.Listen[1].TLS.Certificates[0].Key != "k.pem" ||
			c.Listen[1].TLS.MinVersion != "1.2" {
			t.Fatalf("%s: listen = %+v", tc.name, c.Listen)
		}
		// A clone shares nothing, and Marshal reads back equal.
		n := c.Clone()
		n.Listen[1].TLS.Certificates[0].Key = "other"
		if c.Listen[1].TLS.Certificates[0].Key != "k.pem" {
			t.Fatal("Clone shares the tls section")
		}
		b, err := Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseEnv("back.json", b, nil)
		if err != nil || back.Listen[0].Address != ":8080" || back.Listen[1].TLS.Certificates[0].Cert != "c.pem" {
			t.Fatalf("%s: read back %s: %v", tc.name, b, err)
		}
	}
}

func TestValidateAdmin(t *testing.T) {
	runValidate(t, []validateCase{
		{"loopback without token", `admin: {listen: "127.0.0.1:8081"}`, nil},
		{"localhost without token", `admin: {listen: "localhost:8081"}`, nil},
		{"ipv6 loopback without token", `admin: {listen: "[::1]:8081"}`, nil},
		{"open with token", `admin: {listen: ":8081", token: "${TOKEN}"}`, nil},
		{"open without token", `admin: {listen: "0.0.0.0:8081"}`,
			[]string{`admin.token: the admin API listens on "0.0.0.0:8081" without a token, open to the network: set admin.token or listen on 127.0.0.1`}},
		{"all interfaces without token", `admin: {listen: ":8081", token: "${EMPTY}"}`,
			[]string{`admin.token: the admin API listens on ":8081" without a token, open to the network: set admin.token or listen on 127.0.0.1`}},
		{"no address", `admin: {token: x}`,
			[]string{`admin.listen: the admin listener needs an address: write "127.0.0.1:8081", or remove the admin section to turn it off`}},
		{"bad address", `admin: {listen: "8081"}`,
			[]string{`admin.listen: "8081" is not host:port: write ":8081" to listen on port 8081 on every interface`}},
		{"same as proxy", "listen: \":8080\"\nadmin: {listen: \"127.0.0.1:8080\"}",
			[]string{`admin.listen: "127.0.0.1:8080" collides with the proxy listener ":8080": give the admin listener another port`}},
		{"same as default proxy", `admin: {listen: "127.0.0.1:8080"}`,
			[]string{`admin.listen: "127.0.0.1:8080" collides with the proxy listener ":8080": give the admin listener another port`}},
		{"token with newline", `admin: {listen: "127.0.0.1:1", token: "a\nb"}`,
			[]string{`admin.token: the token holds control characters: use printable characters only`}},
	})
}

func TestValidateRedis(t *testing.T) {
	runValidate(t, []validateCase{
		{"one", `redis: {addrs: ["127.0.0.1:6379"], password: x, db: 2, timeout: 20ms}`, nil},
		{"sentinel", `redis: {addrs: ["s1:26379", "s2:26379"], master_set: mymaster}`, nil},
		{"no addrs", `redis: {}`,
			[]string{`redis.addrs: no address: list at least one host:port, such as ["127.0.0.1:6379"], or remove the redis section to keep state in memory`}},
		{"no host", `redis: {addrs: [":6379"]}`, []string{`redis.addrs[0]: ":6379" is not host:port: write it as "127.0.0.1:6379"`}},
		{"no port", `redis: {addrs: ["redis"]}`, []string{`redis.addrs[0]: "redis" is not host:port: write it as "127.0.0.1:6379"`}},
		{"port 0", `redis: {addrs: ["redis:0"]}`, []string{`redis.addrs[0]: port "0" of "redis:0" is not a number from 1 to 65535`}},
		{"duplicate", `redis: {addrs: ["a:1", "a:1"]}`, []string{`redis.addrs[1]: "a:1" is listed twice; keep one`}},
		{"negative db", `redis: {addrs: ["a:1"], db: -1}`, []string{`redis.db: -1 is negative: use a database number from 0 (the default)`}},
		{"long timeout", `redis: {addrs: ["a:1"], timeout: 1m}`, []string{`redis.timeout: 1m0s is too long: use at most 10s`}},
		{"flush delay", `redis: {addrs: ["a:1"], flush_delay: 50us}`, nil},
		{"long flush delay", `redis: {addrs: ["a:1"], flush_delay: 5ms}`, []string{`redis.flush_delay: 5ms is too long: use at most 1ms`}},
	})
}

func TestValidateServer(t *testing.T) {
	runValidate(t, []validateCase{
		{"all set", `server: {max_header_bytes: 1024, max_body_bytes: 1, read_timeout: 1ms, write_timeout: 1h, idle_timeout: 1s, drain_timeout: 1ns, max_conns: 1, max_conns_per_ip: 1, trusted_proxies: ["::1", "fd00::/8", "10.0.0.0/8"]}`, nil},
		{"header bytes small", `server: {max_header_bytes: 1023}`,
			[]string{`server.max_header_bytes: 1023 is too small for real requests: use at least 1024 (the default is 8192)`}},
		{"header bytes large", `server: {max_header_bytes: 1048577}`,
			[]string{`server.max_header_bytes: 1048577 is over 1 MiB: every connection reserves a buffer this size; use at most 1048576`}},
		{"negatives", `server: {max_header_bytes: -1, max_body_bytes: -1, max_conns: -1, max_conns_per_ip: -1}`,
			[]string{
				`server.max_header_bytes: -1 is negative: use at least 1024 (the default is 8192)`,
				`server.max_body_bytes: -1 is negative: use a size in bytes (the default is 10485760)`,
				`server.max_conns: -1 is negative: use a number of connections (the default is 262144)`,
				`server.max_conns_per_ip: -1 is negative: use 0 for no limit or a number of connections`,
			}},
		{"http2 streams", `server: {max_concurrent_streams: 1001}`,
			[]string{`server.max_concurrent_streams: 1001 is out of range: use 1 to 1000 HTTP/2 streams per connection (the default is 100)`}},
		{"http2 listeners", `listen: [{address: ":8080", http2: true}, {address: ":8081", http2: false}]`, nil},
		{"http2 targets", `services: [{name: g, targets: [{url: "grpc://10.0.0.1:50051"}, {url: "h2c://a"}, {url: "grpcs://b"}, {url: "h2://c:8443"}]}]`, nil},
		{"short timeouts", `server: {read_timeout: 1us, write_timeout: 10ns, idle_timeout: 999us}`,
			[]string{
				`server.read_timeout: 1µs is too short: use at least 1ms`,
				`server.write_timeout: 10ns is too short: use at least 1ms`,
				`server.idle_timeout: 999µs is too short: use at least 1ms`,
			}},
		{"websockets", `server: {max_websockets: -1, websocket: {idle_timeout: 10us}}`,
			[]string{
				`server.max_websockets: -1 is negative: use a number of WebSockets (the default is 16384)`,
				`server.websocket.idle_timeout: 10µs is too short: use at least 1ms`,
			}},
		{"trusted proxies", `server: {trusted_proxies: ["10.0.0.0/33", "1.2.3", ""]}`,
			[]string{
				`server.trusted_proxies[0]: "10.0.0.0/33" is not an IP address or a CIDR such as "10.0.0.0/8"`,
				`server.trusted_proxies[1]: "1.2.3" is not an IP address or a CIDR such as "10.0.0.0/8"`,
				`server.trusted_proxies[2]: "" is not an IP address or a CIDR such as "10.0.0.0/8"`,
			}},
	})
}

func TestValidateServices(t *testing.T) {
	runValidate(t, []validateCase{
		{"minimal", `services: [{name: a}]`, nil},
		{"full", `
services:
  - name: a.b_c-1
    targets: [{url: "http://h:1", weight: 0}, {url: "https://h", weight: 1000}, {url: "HTTP://H:01"}]
    balancer: consistent_hash
    hash_on: header:X-User
    connect_timeout: 1ms
    timeout: 1ms
    retries: 10
    max_conns_per_target: 1
    max_conn_wait: 0s
    health_check:
      active: {path: /, interval: 100ms, timeout: 100ms, healthy_after: 100, unhealthy_after: 1, expect_status: [100, 599]}
      passive: {unhealthy_after: 1000, healthy_after_ms: 1}
    circuit_breaker: {failure_ratio: 1, min_requests: 1, window: 100ms, open_for: 1ms}`,
			[]string{`services[0].targets[2].url: "http://h:1" is also targets[0]: list a target once and give it a larger weight instead`}},
		{"names", `services: [{name: ""}, {name: "a/b"}, {name: a}, {name: a}]`,
			[]string{
				`services[0].name: a service needs a name: letters, digits, "_", "." and "-"`,
				`services[1].name: "a/b" has characters other than letters, digits, "_", "." and "-": rename it`,
				`services[3].name: services[2] is already named "a": service names must be unique`,
			}},
		{"zero targets allowed", `services: [{name: a, targets: []}]`, nil},
		{"discovery", `services: [{name: a, discovery: {dns: "_http._tcp.a.example", interval: 1s, resolver: "127.0.0.1:5353"}}, {name: b, discovery: {dns: b.example, port: 8080}}]`, nil},
		{"discovery errors", `
services:
  - {name: a, discovery: {dns: "", interval: 10ms, resolver: "localhost"}}
  - {name: b, discovery: {dns: b.example}}
  - {name: c, discovery: {dns: "_x._tcp.c", port: 80, scheme: ftp}}
  - {name: d, discovery: {dns: d.example, type: MX}}`,
			[]string{
				`services[0].discovery.dns: a DNS name is required, e.g. "_http._tcp.users.svc.example" (SRV) or "users.svc.example" (A/AAAA, with port)`,
				`services[0].discovery.port: 0 is out of range: type A needs the targets' port, 1 to 65535`,
				`services[0].discovery.interval: 10ms is too short: use at least 100ms`,
				`services[0].discovery.resolver: "localhost" is not an IP:port address, e.g. "127.0.0.53:53"`,
				`services[1].discovery.port: 0 is out of range: type A needs the targets' port, 1 to 65535`,
				`services[2].discovery.port: an SRV record carries the port: remove port, or use type A or AAAA`,
				`services[2].discovery.scheme: "ftp" is not a scheme targets use: use http or https`,
				`services[3].discovery.type: "MX" is not a record type discovery reads: use SRV, A or AAAA`,
			}},
		{"target url", `services: [{name: a, targets: [{url: "h:1"}, {url: "http://h/p"}]}]`,
			[]string{
				`services[0].targets[0].url: "h:1" has no scheme: write "http://h:1"`,
				`services[0].targets[1].url: "http://h/p" has a path: a target is scheme://host:port only; use strip_path or the request_transformer plugin to change paths`,
			}},
		{"weights", `services: [{name: a, targets: [{url: "http://h:1", weight: -1}, {url: "http://h:2", weight: 1001}]}]`,
			[]string{
				`services[0].targets[0].weight: -1 is out of range: use 0 (drained) to 1000 (the default is 100)`,
				`services[0].targets[1].weight: 1001 is out of range: use 0 (drained) to 1000 (the default is 100)`,
			}},
		{"balancer", `services: [{name: a, balancer: leastconn}, {name: b, balancer: magic}]`,
			[]string{
				`services[0].balancer: unknown balancer "leastconn" (did you mean "least_conn"?): use one of round_robin, least_conn, consistent_hash, random`,
				`services[1].balancer: unknown balancer "magic": use one of round_robin, least_conn, consistent_hash, random`,
			}},
		{"hash_on without consistent_hash", `services: [{name: a, hash_on: ip}, {name: b, balancer: random, hash_on: ip}]`,
			[]string{
				`services[0].hash_on: hash_on is only used by balancer consistent_hash: set balancer: consistent_hash or remove hash_on`,
				`services[1].hash_on: hash_on is only used by balancer consistent_hash: set balancer: consistent_hash or remove hash_on`,
			}},
		{"hash_on grammar", `services: [{name: a, balancer: consistent_hash, hash_on: "header:"}, {name: b, balancer: consistent_hash, hash_on: cookie:sid}, {name: c, balancer: consistent_hash, hash_on: uri}]`,
			[]string{
				`services[0].hash_on: hash_on "header:": "" is not a header name`,
				`services[2].hash_on: invalid hash_on "uri": use ip, consumer, path, header:NAME or cookie:NAME`,
			}},
		{"retries", `services: [{name: a, retries: 0}, {name: b, retries: -1}, {name: c, retries: 11}]`,
			[]string{
				`services[1].retries: -1 is out of range: use 0 (no retry) to 10`,
				`services[2].retries: 11 is out of range: use 0 (no retry) to 10`,
			}},
		{"timeouts and pool", `services: [{name: a, connect_timeout: 1us, timeout: 500us, max_conns_per_target: -1}]`,
			[]string{
				`services[0].connect_timeout: 1µs is too short: use at least 1ms`,
				`services[0].timeout: 500µs is too short: use at least 1ms`,
				`services[0].max_conns_per_target: -1 is negative: use a number of connections (the default is 1024)`,
			}},
		{"active health check", `services: [{name: a, health_check: {active: {path: ping, interval: 10ms, timeout: 2s, healthy_after: 0, unhealthy_after: 101, expect_status: [99, 600]}}}]`,
			[]string{
				`services[0].health_check.active.path: "ping" must start with "/", such as "/healthz"`,
				`services[0].health_check.active.interval: 10ms is too short: use at least 100ms`,
				`services[0].health_check.active.timeout: 2s is longer than the interval 10ms, so probes would overlap: shorten timeout or lengthen interval`,
				`services[0].health_check.active.unhealthy_after: 101 is out of range: use 1 to 100`,
				`services[0].health_check.active.expect_status[0]: 99 is not an HTTP status: use 100 to 599`,
				`services[0].health_check.active.expect_status[1]: 600 is not an HTTP status: use 100 to 599`,
			}},
		{"active timeout over default interval", `services: [{name: a, health_check: {active: {timeout: 6s}}}]`,
			[]string{`services[0].health_check.active.timeout: 6s is longer than the interval 5s, so probes would overlap: shorten timeout or lengthen interval`}},
		{"passive health check", `services: [{name: a, health_check: {passive: {unhealthy_after: -1, healthy_after_ms: -1}}}]`,
			[]string{
				`services[0].health_check.passive.unhealthy_after: -1 is out of range: use 1 to 1000`,
				`services[0].health_check.passive.healthy_after_ms: -1 is negative: use a number of milliseconds (the default is 30000)`,
			}},
		{"circuit breaker", `services: [{name: a, circuit_breaker: {failure_ratio: 1.01, min_requests: -1, window: 99ms}}, {name: b, circuit_breaker: {failure_ratio: -0.1}}]`,
			[]string{
				`services[0].circuit_breaker.failure_ratio: 1.01 is out of range: use a ratio above 0 and at most 1, such as 0.5`,
				`services[0].circuit_breaker.min_requests: -1 is negative: use at least 1 (the default is 20)`,
				`services[0].circuit_breaker.window: 99ms is too short: use at least 100ms`,
				`services[1].circuit_breaker.failure_ratio: -0.1 is out of range: use a ratio above 0 and at most 1, such as 0.5`,
			}},
	})
}

func TestValidateRoutes(t *testing.T) {
	runValidate(t, []validateCase{
		{"full", svcs + `
routes:
  - name: r
    hosts: ["api.example.com", "*.example.org"]
    paths: ["/users", "=/users/me", "/users/{id}", "~^/v[0-9]+/"]
    methods: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT]
    headers: {X-Version: v2}
    strip_path: true
    preserve_host: true
    service: users
    plugins: [{name: key_auth}, {name: rate_limit, config: {rate: 1}}, {name: cors, enabled: false, config: null}]
  - name: no-paths
    service: orders`, nil},
		{"names", svcs + `routes: [{name: "", service: users}, {name: "a b", service: users}, {name: x, service: users}, {name: x, service: users}]`,
			[]string{
				`routes[0].name: a route needs a name: letters, digits, "_", "." and "-"`,
				`routes[1].name: "a b" has characters other than letters, digits, "_", "." and "-": rename it`,
				`routes[3].name: routes[2] is already named "x": route names must be unique`,
			}},
		{"target", svcs + `routes: [{name: a}, {name: b, service: users, aggregate: {backends: [{service: users, path: /, key: k}]}}, {name: c, service: nosuch}, {name: d, service: order}]`,
			[]string{
				`routes[0]: the route sends requests nowhere: set service (one of: users, orders) or aggregate`,
				`routes[1]: a route has either service or aggregate, not both: remove one`,
				`routes[2].service: no service named "nosuch" (known: users, orders)`,
				`routes[3].service: no service named "order" (did you mean "orders"?)`,
			}},
		{"websocket", svcs + `routes: [{name: a, service: users, websocket: {idle_timeout: 5m}}, {name: b, service: users, websocket: {idle_timeout: 1us}}, {name: c, websocket: {}, aggregate: {backends: [{service: users, path: /, key: k}]}}]`,
			[]string{
				`routes[1].websocket.idle_timeout: 1µs is too short: use at least 1ms`,
				`routes[2].websocket: an aggregate route answers itself and carries no WebSocket: remove websocket`,
			}},
		{"no services at all", `routes: [{name: a, service: x}, {name: b}]`,
			[]string{
				`routes[0].service: no service named "x" (no services are defined)`,
				`routes[1]: the route sends requests nowhere: set service or aggregate`,
			}},
		{"paths", svcs + `routes: [{name: a, service: users, paths: ["", "users", "~", "=users", "/a", "/a", "=/a"]}]`,
			[]string{
				`routes[0].paths[0]: a path is empty: write "/" to match every path`,
				`routes[0].paths[1]: "users" must start with "/" (prefix), "=/" (exact) or "~" (regular expression)`,
				`routes[0].paths[2]: "~" starts a regular expression but none follows: write one such as "~^/v[0-9]+/"`,
				`routes[0].paths[3]: "=users" must start with "/" (prefix), "=/" (exact) or "~" (regular expression)`,
				`routes[0].paths[5]: "/a" is listed twice; keep one`,
			}},
		{"methods", svcs + `routes: [{name: a, service: users, methods: [get, Post, PROPFIND, "", GET, GET]}]`,
			[]string{
				`routes[0].methods[0]: unknown method "get": methods are case-sensitive, write "GET"`,
				`routes[0].methods[1]: unknown method "Post": methods are case-sensitive, write "POST"`,
				`routes[0].methods[2]: unknown method "PROPFIND": use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT`,
				`routes[0].methods[3]: unknown method "": use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT`,
				`routes[0].methods[5]: "GET" is listed twice; keep one`,
			}},
		{"hosts", svcs + `routes: [{name: a, service: users, hosts: ["a.com", "A.COM", "*", "a_b.com:80", "x..y"]}]`,
			[]string{
				`routes[0].hosts[1]: "A.COM" is listed twice; keep one`,
				`routes[0].hosts[2]: "*" is not a host pattern: leave hosts out to match every host`,
				`routes[0].hosts[4]: "x..y" is not a host name: write a host name such as "api.example.com" or "*.example.com"`,
			}},
		{"headers", svcs + `routes: [{name: a, service: users, headers: {"": x, "a:b": y, X-A: "v\r\n", X-B: ""}}]`,
			[]string{
				`routes[0].headers[""]: "" is not a header name: use letters, digits and -`,
				`routes[0].headers.X-A: the value holds control characters: use printable characters only`,
				`routes[0].headers["a:b"]: "a:b" is not a header name: use letters, digits and -`,
			}},
	})
}

func TestValidateAggregate(t *testing.T) {
	runValidate(t, []validateCase{
		{"good", svcs + `routes: [{name: p, paths: ["/p/{id}"], aggregate: {timeout: 1s, backends: [{service: users, path: "/u/{id}", key: u}, {service: orders, path: "/o?u={id}", key: o, optional: true}]}}]`, nil},
		{"no backends", svcs + `routes: [{name: p, aggregate: {}}]`,
			[]string{`routes[0].aggregate.backends: an aggregate needs at least one backend: add {service: NAME, path: /PATH, key: KEY}`}},
		{"bad backends", svcs + `routes: [{name: p, aggregate: {timeout: 10us, backends: [{service: users, path: /a, key: k}, {service: nope, path: a, key: k}, {}]}}]`,
			[]string{
				`routes[0].aggregate.timeout: 10µs is too short: use at least 1ms`,
				`routes[0].aggregate.backends[1].service: no service named "nope" (known: users, orders)`,
				`routes[0].aggregate.backends[1].path: "a" must start with "/", such as "/users/{id}"`,
				`routes[0].aggregate.backends[1].key: backends[0] already uses key "k": keys must be unique`,
				`routes[0].aggregate.backends[2].service: a backend needs a service (one of: users, orders)`,
				`routes[0].aggregate.backends[2].path: "" must start with "/", such as "/users/{id}"`,
				`routes[0].aggregate.backends[2].key: a backend needs a key: the name its JSON gets in the merged answer`,
			}},
		{"unknown params", svcs + `routes: [{name: p, paths: ["/p/{id}", "~^/v(?P<ver>[0-9]+)/"], aggregate: {backends: [{service: users, path: "/u/{id}?v={ver}&x={uid}", key: u}, {service: users, path: "/{}/{id", key: w}]}}, {name: q, paths: ["/q"], aggregate: {backends: [{service: users, path: "/u/{id}", key: u}]}}]`,
			[]string{
				`routes[0].aggregate.backends[0].path: {uid} is not a parameter of the route (it has {id}, {ver}): use one of those or add {uid} to its paths`,
				`routes[1].aggregate.backends[0].path: {id} is not a parameter of the route, which has none: add {id} to its paths`,
			}},
	})
}

func TestValidateConsumers(t *testing.T) {
	runValidate(t, []validateCase{
		{"good", `consumers: [{name: alice@example.com, groups: [gold, beta], credentials: {key_auth: [{key: a}], jwt: []}}, {name: bob}]`, nil},
		{"names", `consumers: [{name: ""}, {name: "a b"}, {name: "é"}, {name: x}, {name: x}]`,
			[]string{
				`consumers[0].name: a consumer needs a name`,
				`consumers[1].name: "a b" holds spaces, control or non-ASCII characters, which cannot go upstream in X-Consumer-Name: rename it`,
				`consumers[2].name: "é" holds spaces, control or non-ASCII characters, which cannot go upstream in X-Consumer-Name: rename it`,
				`consumers[4].name: consumers[3] is already named "x": consumer names must be unique`,
			}},
		{"groups", `consumers: [{name: a, groups: [g, "a,b", "a b", "", g]}]`,
			[]string{
				`consumers[0].groups[1]: "a,b" is not a group name: use printable ASCII without spaces or commas (X-Consumer-Groups is comma separated)`,
				`consumers[0].groups[2]: "a b" is not a group name: use printable ASCII without spaces or commas (X-Consumer-Groups is comma separated)`,
				`consumers[0].groups[3]: "" is not a group name: use printable ASCII without spaces or commas (X-Consumer-Groups is comma separated)`,
				`consumers[0].groups[4]: "g" is listed twice; keep one`,
			}},
		// Each consumer's groups are its own: one group per consumer is
		// not a repeat of the last consumer's.
		{"groups per consumer", `consumers: [{name: a, groups: [g, h]}, {name: b, groups: [g]}, {name: c, groups: [h, g, h]}]`,
			[]string{`consumers[2].groups[2]: "h" is listed twice; keep one`}},
		{"credentials", `consumers: [{name: a, credentials: {"": [{key: k}], key_auth: [k, [k], {key: k}, null]}}]`,
			[]string{
				`consumers[0].credentials[""]: a credential kind is empty: use the name of the plugin the credentials are for, such as key_auth`,
				`consumers[0].credentials.key_auth[0]: expected a mapping of the key_auth plugin's credential fields, such as {key: "..."}`,
				`consumers[0].credentials.key_auth[1]: expected a mapping of the key_auth plugin's credential fields, such as {key: "..."}`,
				`consumers[0].credentials.key_auth[3]: expected a mapping of the key_auth plugin's credential fields, such as {key: "..."}`,
			}},
	})
}

func TestValidatePlugins(t *testing.T) {
	runValidate(t, []validateCase{
		{"global", `plugins: [{name: cors, config: {origins: ["*"]}}, {name: key_auth}, {name: test_plugin, enabled: false}]`, nil},
		{"same plugin globally and on a route", svcs + "plugins: [{name: cors}]\nroutes: [{name: r, service: users, plugins: [{name: cors}]}]", nil},
		{"unknown with suggestion", svcs + `routes: [{name: r, service: users, plugins: [{name: key_auth}, {name: rate_limt}]}]`,
			[]string{`routes[0].plugins[1]: unknown plugin "rate_limt" (did you mean "rate_limit"?)`}},
		{"unknown without suggestion", `plugins: [{name: zzz}]`,
			[]string{`plugins[0]: unknown plugin "zzz" (known: cors, key_auth, rate_limit, test_plugin)`}},
		{"no name", `plugins: [{config: {}}]`,
			[]string{`plugins[0].name: a plugin needs a name (known: cors, key_auth, rate_limit, test_plugin)`}},
		{"twice", `plugins: [{name: cors}, {name: key_auth}, {name: cors, enabled: false}]`,
			[]string{`plugins[2]: plugin "cors" is also plugins[0]: keep one instance per list`}},
		{"several instances", `plugins: [{name: test_plugin}, {name: test_plugin}, {name: test_plugin, config: {name: a}}, {name: test_plugin, config: {name: b}}]`, nil},
		{"several instances, one name twice", `plugins: [{name: test_plugin, config: {name: a}}, {name: test_plugin, config: {name: a}, enabled: false}]`,
			[]string{`plugins[1]: plugin test_plugin "a" is also plugins[0]: give each instance its own name`}},
		{"config not a mapping", `plugins: [{name: cors, config: [1]}, {name: key_auth, config: "x"}]`,
			[]string{
				`plugins[0].config: expected a mapping of the cors plugin's settings`,
				`plugins[1].config: expected a mapping of the key_auth plugin's settings`,
			}},
	})
}

// Five unrelated mistakes in one file give five lines, in file order.
func TestValidateReportsEveryError(t *testing.T) {
	_, err := parseValidate(`
listen: "8080"
services:
  - name: users
    balancer: roundrobin
    targets: [{url: "ftp://h:1"}]
routes:
  - name: users
    service: user
    plugins: [{name: rate_limt}]
`)
	got := lines(t, err)
	if len(got) != 5 {
		t.Fatalf("want 5 errors, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, prefix := range []string{"t.yaml: listen:", "t.yaml: services[0].targets[0].url:", "t.yaml: services[0].balancer:", "t.yaml: routes[0].service:", "t.yaml: routes[0].plugins[0]:"} {
		if !strings.HasPrefix(got[i], prefix) {
			t.Errorf("line %d = %q, want prefix %q", i, got[i], prefix)
		}
	}
}

// Validate accepts a config without defaults: zero reads as default.
func TestValidateWithoutDefaults(t *testing.T) {
	c := mustParse(t, `
routes: [{name: r, service: users, aggregate: null}]
services:
  - name: users
    targets: [{url: "http://h"}]
    balancer: consistent_hash
    health_check: {active: {}, passive: {}}
    circuit_breaker: {}
`)
	if err := Validate(c, "t.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&Config{}, "t.yaml"); err != nil {
		t.Fatal(err)
	}
}

// Configs built in code (the admin API edits Config values) can hold what
// the parser refuses: negative durations, raw JSON that is not a mapping.
func TestValidateBuiltInCode(t *testing.T) {
	c := &Config{
		Server:   Server{ReadTimeout: Duration(-time.Second)},
		Services: []Service{{Name: "s", Timeout: Duration(-1)}},
		Consumers: []Consumer{{Name: "c", Credentials: sdk.Credentials{{Plugin: "key_auth",
			List: []json.RawMessage{json.RawMessage(`  {"key":"k"}`), json.RawMessage(``), json.RawMessage(`"k"`)},
		}}}},
		Plugins: []Plugin{{Name: "cors", Config: json.RawMessage(` null `)}, {Name: "key_auth", Config: json.RawMessage(`1`)}},
	}
	check(t, Validate(c, "t.yaml"), []string{
		`server.read_timeout: -1s is negative: use a positive duration such as "1s"`,
		`services[0].timeout: -1ns is negative: use a positive duration such as "1s"`,
		`consumers[0].credentials.key_auth[1]: expected a mapping of the key_auth plugin's credential fields, such as {key: "..."}`,
		`consumers[0].credentials.key_auth[2]: expected a mapping of the key_auth plugin's credential fields, such as {key: "..."}`,
		`plugins[1].config: expected a mapping of the key_auth plugin's settings`,
	})
}

func TestRouteParams(t *testing.T) {
	got := RouteParams([]string{"/users/{id}", "=/a/{id}/{name}", "~^/v(?P<ver>[0-9]+)/", "/plain"})
	want := []string{"id", "name", "ver"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%v, want %v", got, want)
	}
	if p := RouteParams([]string{"/x"}); p == nil || len(p) != 0 {
		t.Fatalf("no params must be empty, not nil: %#v", p)
	}
}
