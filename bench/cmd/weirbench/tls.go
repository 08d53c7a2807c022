package main

// The TLS rows (weirbench -tls, make bench-tls): Weir's HTTPS listener
// against nginx terminating TLS, both forwarding to the same backend as
// the plain rows. Keep-alive throughput comes from wrk over https (OpenSSL
// on the client side); handshakes per second from a Go client run as a
// child process pinned to the load CPUs (WEIRBENCH_CHILD=tlsclient), one
// request per connection, with and without resumption.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The same suites for both: ECDHE with AEAD only (Weir refuses others).
// TLS 1.3 suites are set for nginx too, with its preference on, so that
// both pick AES-128-GCM for an OpenSSL client (wrk) that lists
// AES-256-GCM first; Go's server picks AES-128-GCM on AES-NI hardware.
var (
	tlsGoCiphers = []string{
		"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	}
	tlsOpenSSLCiphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" +
		"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" +
		"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)

// nginxHead opens the nginx configs of the TLS and WebSocket rows: one
// worker, no access log, temp paths in the work dir, and an open http
// block.
const nginxHead = `worker_processes 1;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path {{DIR}}/client_body;
    proxy_temp_path {{DIR}}/proxy;
    fastcgi_temp_path {{DIR}}/fastcgi;
    uwsgi_temp_path {{DIR}}/uwsgi;
    scgi_temp_path {{DIR}}/scgi;
`

const nginxTLSTemplate = `# nginx terminating TLS, one worker, the same ciphers and curves as Weir.
` + nginxHead + `    keepalive_requests 10000000;
    keepalive_timeout 60s;
    upstream backend {
        server {{BACKEND}};
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen {{LISTEN}} ssl backlog=4096;
        ssl_certificate {{CERT}};
        ssl_certificate_key {{KEY}};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {{CIPHERS}};
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
        ssl_prefer_server_ciphers on;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        # Tickets on, as Weir (which always issues them); no server-side cache.
        ssl_session_tickets on;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-Id $request_id;
        }
    }
}
`

const weirTLSTemplate = `listen:
  - address: "{{LISTEN}}"
    tls:
      certificates: [{cert: "{{CERT}}", key: "{{KEY}}"}]
      min_version: "1.2"
      ciphers: [{{CIPHERS}}]
admin: {listen: "{{ADMIN}}", pprof: true}
services:
  - name: backend
    targets: [{url: "http://{{BACKEND}}"}]
routes:
  - name: all
    paths: ["/"]
    service: backend
`

// writeCert writes a self-signed certificate for localhost and 127.0.0.1
// with an ECDSA P-256 or an RSA-2048 key, as PEM files under dir.
func writeCert(dir, kind string) (certFile, keyFile string, err error) {
	var pub, priv any
	switch kind {
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		pub, priv = &k.PublicKey, k
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", "", err
		}
		pub, priv = &k.PublicKey, k
	default:
		return "", "", fmt.Errorf("unknown key kind %q", kind)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return "", "", fmt.Errorf("create %s certificate: %w", kind, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("marshal %s key: %w", kind, err)
	}
	certFile = filepath.Join(dir, kind+"-cert.pem")
	keyFile = filepath.Join(dir, kind+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	// 0644: nginx's worker may run as another user and reads it.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// tlsContender is nginx or Weir serving one certificate.
type tlsContender struct {
	name  string // weir-ecdsa, nginx-rsa...
	kind  string // weir | nginx
	cert  string // ecdsa | rsa
	addr  string
	admin string
	proc  *proc
}

func (r *rig) startTLSNginx(kind, cert, key string) (*tlsContender, error) {
	name := "nginx-" + kind
	addr, err := r.ports.next()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(r.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	_ = os.Chmod(r.dir, 0o755)
	conf := strings.NewReplacer("{{DIR}}", dir, "{{LISTEN}}", addr, "{{BACKEND}}", r.backend,
		"{{CERT}}", cert, "{{KEY}}", key, "{{CIPHERS}}", tlsOpenSSLCiphers).Replace(nginxTLSTemplate)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := r.start(name, r.opts.proxyCPUs, nil, r.tools["nginx"], "-p", dir, "-c", file, "-e", filepath.Join(dir, "nginx-error.log"), "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(addr, 10*time.Second); err != nil {
		return nil, err
	}
	return &tlsContender{name: name, kind: "nginx", cert: kind, addr: addr, proc: p}, nil
}

func (r *rig) startTLSWeir(kind, cert, key string) (*tlsContender, error) {
	name := "weir-" + kind
	addr, err := r.ports.next()
	if err != nil {
		return nil, err
	}
	admin, err := r.ports.next()
	if err != nil {
		return nil, err
	}
	quoted := make([]string, len(tlsGoCiphers))
	for i, c := range tlsGoCiphers {
		quoted[i] = strconv.Quote(c)
	}
	conf := strings.NewReplacer("{{LISTEN}}", addr, "{{ADMIN}}", admin, "{{BACKEND}}", r.backend,
		"{{CERT}}", cert, "{{KEY}}", key, "{{CIPHERS}}", strings.Join(quoted, ", ")).Replace(weirTLSTemplate)
	file := filepath.Join(r.dir, name+".yaml")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(r.opts.weir, "validate", "-c", file).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("weir validate %s: %v: %s", file, err, strings.TrimSpace(string(out)))
	}
	p, err := r.start(name, r.opts.proxyCPUs, []string{"GOMAXPROCS=1"}, r.opts.weir, "run", "-c", file, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(addr, 10*time.Second); err != nil {
		return nil, err
	}
	return &tlsContender{name: name, kind: "weir", cert: kind, addr: addr, admin: admin, proc: p}, nil
}

// hsSpec is one handshake run, handed to the tlsclient child as JSON.
type hsSpec struct {
	Target   string        `json:"target"`
	Path     string        `json:"path"`
	Conns    int           `json:"conns"`
	Duration time.Duration `json:"duration"`
	Resume   bool          `json:"resume"`
	TLS12    bool          `json:"tls12"` // offer TLS 1.2 only
}

// hsResult is what the tlsclient child reports.
type hsResult struct {
	Handshakes int64   `json:"handshakes"` // connections that got a 200
	Resumed    int64   `json:"resumed"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	Version    string  `json:"version"`
	Cipher     string  `json:"cipher"`
	Curve      string  `json:"curve"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	FirstError string  `json:"first_error,omitempty"`
}

// tlsClientChildMain runs one handshake run (WEIRBENCH_TLS_SPEC) and
// prints its hsResult as JSON.
func tlsClientChildMain() int {
	var spec hsSpec
	if err := json.Unmarshal([]byte(os.Getenv("WEIRBENCH_TLS_SPEC")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "tlsclient: bad spec:", err)
		return 2
	}
	res := runHandshakes(spec)
	_ = json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// runHandshakes opens one connection per request, spec.Conns at a time,
// for spec.Duration. The client offers X25519 then P-256: Go's default
// would put X25519MLKEM768 first, which Weir accepts and the OpenSSL 3.0
// under nginx does not, so the two would not do the same key exchange.
// P-256 is offered (never picked: both servers prefer X25519) because
// OpenSSL refuses a TLS 1.2 client whose groups do not include the ECDSA
// certificate's curve.
func runHandshakes(spec hsSpec) hsResult {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // a self-signed test certificate; the signature is still checked
		CurvePreferences:   []tls.CurveID{tls.X25519, tls.CurveP256},
		ServerName:         "localhost",
		NextProtos:         []string{"http/1.1"},
	}
	if spec.TLS12 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	if spec.Resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	}
	req := []byte("GET " + spec.Path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	var (
		mu  sync.Mutex
		res hsResult
		h   = newHistogram()
	)
	start := time.Now()
	deadline := start.Add(spec.Duration)
	var wg sync.WaitGroup
	for i := 0; i < spec.Conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lh := newHistogram()
			var ok, resumed, errs int64
			var firstErr, version, cipher, curve string
			buf := make([]byte, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				st, err := oneTLSRequest(spec.Target, cfg, req, buf)
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				lh.record(time.Since(t0))
				ok++
				if st.DidResume {
					resumed++
				}
				version, cipher, curve = tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID.String()
			}
			mu.Lock()
			res.Handshakes += ok
			res.Resumed += resumed
			res.Errors += errs
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
			if version != "" {
				res.Version, res.Cipher, res.Curve = version, cipher, curve
			}
			h.merge(lh)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.P50us = float64(h.quantile(0.5)) / 1e3
	res.P99us = float64(h.quantile(0.99)) / 1e3
	return res
}

// oneTLSRequest dials, shakes hands, sends one request with Connection:
// close and reads the answer to the end, wanting a 200.
func oneTLSRequest(target string, cfg *tls.Config, req, buf []byte) (tls.ConnectionState, error) {
	raw, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, fmt.Errorf("handshake: %w", err)
	}
	if _, err := c.Write(req); err != nil {
		return tls.ConnectionState{}, err
	}
	n, head := 0, []byte(nil)
	for {
		m, err := c.Read(buf)
		if head == nil && m > 0 {
			head = append(head, buf[:min(m, 16)]...)
		}
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return tls.ConnectionState{}, err
		}
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 200") {
		return tls.ConnectionState{}, fmt.Errorf("answer %q (%d bytes), want 200", head, n)
	}
	// The state after reading: a TLS 1.3 session ticket arrives after
	// the handshake and is stored by then.
	return c.ConnectionState(), nil
}

// tlsRow is one line of the TLS table, for one contender.
type tlsRow struct {
	Row       string    `json:"row"`
	Contender string    `json:"contender"`
	Rate      []float64 `json:"rate_rounds"` // req/s or handshakes/s per round
	CPUus     []float64 `json:"cpu_us_rounds"`
	P50us     []float64 `json:"p50_us_rounds"`
	P99us     []float64 `json:"p99_us_rounds"`
	ProxyBusy []float64 `json:"proxy_cpu_busy_rounds"`
	LoadBusy  []float64 `json:"load_cpu_busy_rounds"`
	Resumed   []float64 `json:"resumed_share_rounds,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

type tlsReport struct {
	Date     string    `json:"date"`
	Machine  string    `json:"machine"`
	LoadAvg  []string  `json:"loadavg"`
	Rounds   int       `json:"rounds"`
	Duration string    `json:"duration"`
	Conns    int       `json:"conns"`
	HSConns  int       `json:"handshake_conns"`
	Rows     []*tlsRow `json:"rows"`
	Notes    []string  `json:"notes"`
	Failures []string  `json:"failures,omitempty"`
}

// tlsBenchRow is one measurement to alternate between Weir and nginx.
type tlsBenchRow struct {
	name   string
	cert   string // which pair of contenders
	kind   string // keepalive | full | resumed
	path   string
	resume bool
	tls12  bool
}

func runTLSBench(o options, stdout io.Writer) int {
	b, r, cleanup, fifo, ok := newSideRig(&o, "tls", "the TLS rows")
	if !ok {
		return 2
	}
	defer cleanup()
	dir := r.dir
	rep := &tlsReport{Date: time.Now().UTC().Format(time.RFC3339), Rounds: o.rounds, Duration: o.duration.String(), Conns: o.conns, HSConns: 16}
	rep.Machine = machineLine()
	if fifo {
		rep.Notes = append(rep.Notes, "contenders run SCHED_FIFO 1, pinned to CPU "+o.proxyCPUs+"; wrk, the TLS client and the backend on CPU "+o.loadCPUs)
	}
	rep.LoadAvg = append(rep.LoadAvg, "start "+loadAvg())
	if err := r.startBackend(b.self); err != nil {
		logf("backend: %v", err)
		return 1
	}
	certs := map[string][2]string{}
	for _, k := range []string{"ecdsa", "rsa"} {
		c, key, err := writeCert(dir, k)
		if err != nil {
			logf("%v", err)
			return 1
		}
		certs[k] = [2]string{c, key}
	}
	cont := map[string]*tlsContender{}
	for _, k := range []string{"ecdsa", "rsa"} {
		w, err := r.startTLSWeir(k, certs[k][0], certs[k][1])
		if err != nil {
			logf("weir-%s: %v", k, err)
			return 1
		}
		n, err := r.startTLSNginx(k, certs[k][0], certs[k][1])
		if err != nil {
			logf("nginx-%s: %v", k, err)
			return 1
		}
		cont[w.name], cont[n.name] = w, n
		// One request each before measuring: a contender that answers
		// errors fast must not be measured.
		for _, c := range []*tlsContender{w, n} {
			res := runHandshakes(hsSpec{Target: c.addr, Path: "/static", Conns: 1, Duration: 200 * time.Millisecond})
			if res.Handshakes == 0 {
				logf("%s does not answer 200 over TLS: %s", c.name, res.FirstError)
				return 1
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s negotiates %s %s %s with the Go client", c.name, res.Version, res.Cipher, res.Curve))
		}
	}
	rows := []tlsBenchRow{
		{"keep-alive 64B", "ecdsa", "keepalive", "/static", false, false},
		{"keep-alive 1KiB", "ecdsa", "keepalive", "/static1k", false, false},
		{"full handshake ECDSA", "ecdsa", "full", "/static", false, false},
		{"full handshake RSA", "rsa", "full", "/static", false, false},
		{"full handshake ECDSA TLS 1.2", "ecdsa", "full", "/static", false, true},
		{"resumed handshake ECDSA", "ecdsa", "resumed", "/static", true, false},
	}
	byKey := map[string]*tlsRow{}
	for _, row := range rows {
		for _, k := range []string{"weir", "nginx"} {
			tr := &tlsRow{Row: row.name, Contender: k}
			byKey[row.name+"|"+k] = tr
			rep.Rows = append(rep.Rows, tr)
		}
	}
	// Warm-up: each contender once, short.
	for _, c := range cont {
		_, _ = b.sideWrk("https://"+c.addr+"/static", "", o.conns, time.Second, false)
	}
	for round := 0; round < o.rounds; round++ {
		rep.LoadAvg = append(rep.LoadAvg, fmt.Sprintf("round %d %s", round+1, loadAvg()))
		for _, row := range rows {
			// Alternate who goes first each round.
			order := []string{"weir", "nginx"}
			if round%2 == 1 {
				order = []string{"nginx", "weir"}
			}
			for _, k := range order {
				c := cont[k+"-"+row.cert]
				tr := byKey[row.name+"|"+k]
				if err := b.tlsMeasure(c, row, tr); err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("%s %s round %d: %v", row.name, k, round+1, err))
					logf("%s %s: %v", row.name, k, err)
				}
			}
		}
	}
	rep.LoadAvg = append(rep.LoadAvg, "end "+loadAvg())
	if o.pprof {
		// Profiles come from an extra, unmeasured run of each row, so
		// that the sampling costs nothing in the figures.
		for _, row := range rows[:4] {
			for _, k := range []string{"weir", "nginx"} {
				c := cont[k+"-"+row.cert]
				file, err := b.tlsProfileRow(c, row)
				if err != nil {
					rep.Notes = append(rep.Notes, fmt.Sprintf("profile of %s in %s: %v", k, row.name, err))
					continue
				}
				rep.Notes = append(rep.Notes, fmt.Sprintf("profile of %s in %s: %s", k, row.name, file))
			}
		}
	}
	printTLSReport(stdout, rep)
	return finishSideRun(o.out, "tls-latest.json", rep, len(rep.Failures))
}

// newSideRig starts a run that puts Weir beside nginx (-tls, -shape): the
// bench, a work dir (weirbench-KIND-*), the tools, and pinning with
// SCHED_FIFO when the machine allows it (fifo). cleanup stops every
// process and removes the dir unless -keep. It fails (ok false, the
// reason logged) without nginx and wrk.
func newSideRig(o *options, kind, what string) (b *bench, r *rig, cleanup func(), fifo, ok bool) {
	b, ok = newBench(o)
	if !ok {
		return nil, nil, nil, false, false
	}
	dir, err := os.MkdirTemp("", "weirbench-"+kind+"-")
	if err != nil {
		logf("make work dir: %v", err)
		return nil, nil, nil, false, false
	}
	r = &rig{opts: *o, dir: dir, tools: map[string]string{}}
	b.r = r
	for _, t := range []string{"nginx", "wrk", "taskset", "chrt"} {
		r.tools[t] = lookTool(t)
	}
	cleanup = func() {
		r.stopAll()
		if o.keep {
			logf("process logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}
	if r.tools["nginx"] == "" || r.tools["wrk"] == "" {
		logf("%s need nginx and wrk (apt-get install -y nginx wrk)", what)
		cleanup()
		return nil, nil, nil, false, false
	}
	if !o.noPin && r.tools["taskset"] != "" {
		r.pin.taskset = r.tools["taskset"]
		b.loadCPUs, _ = parseCPUList(o.loadCPUs)
		b.proxyCPUs, _ = parseCPUList(o.proxyCPUs)
		if !o.noRT && r.tools["chrt"] != "" {
			if err := exec.Command(r.tools["chrt"], "-f", "1", "true").Run(); err == nil {
				r.pin.chrt = r.tools["chrt"]
				fifo = true
			}
		}
	}
	return b, r, cleanup, fifo, true
}

// tlsMeasure runs one row on one contender and appends its figures.
func (b *bench) tlsMeasure(c *tlsContender, row tlsBenchRow, tr *tlsRow) error {
	pids := []int{c.proc.pid()}
	cpu0, err0 := treeCPU(pids)
	stat0, errs0 := cpuSnapshot()
	var n, rate, p50, p99 float64
	switch row.kind {
	case "keepalive":
		w, err := b.sideWrk("https://"+c.addr+row.path, "", b.r.opts.conns, b.r.opts.duration, false)
		if err != nil {
			return err
		}
		if w.Errors > 0 || w.Non2xx > 0 {
			return fmt.Errorf("wrk: %d socket errors, %d non-2xx", w.Errors, w.Non2xx)
		}
		n, rate, p50, p99 = float64(w.Requests), w.RPS, w.P50us, w.P99us
	default:
		res, err := b.tlsClient(hsSpec{Target: c.addr, Path: row.path, Conns: 16, Duration: b.r.opts.duration, Resume: row.resume, TLS12: row.tls12})
		if err != nil {
			return err
		}
		if res.Handshakes == 0 || float64(res.Errors) > 0.01*float64(res.Handshakes) {
			return fmt.Errorf("%d handshakes, %d errors (first: %s)", res.Handshakes, res.Errors, res.FirstError)
		}
		n, rate, p50, p99 = float64(res.Handshakes), float64(res.Handshakes)/res.Seconds, res.P50us, res.P99us
		if row.resume {
			tr.Resumed = append(tr.Resumed, float64(res.Resumed)/float64(res.Handshakes))
		}
		tr.Detail = res.Version + " " + res.Cipher + " " + res.Curve
	}
	tr.Rate = append(tr.Rate, rate)
	tr.P50us = append(tr.P50us, p50)
	tr.P99us = append(tr.P99us, p99)
	if cpu1, err := treeCPU(pids); err == nil && err0 == nil && n > 0 {
		tr.CPUus = append(tr.CPUus, b.ticksToUs(cpu1-cpu0)/n)
	}
	if stat1, err := cpuSnapshot(); err == nil && errs0 == nil && len(b.proxyCPUs) > 0 {
		tr.ProxyBusy = append(tr.ProxyBusy, max(busiestBetween(stat0, stat1, b.proxyCPUs), 0))
		tr.LoadBusy = append(tr.LoadBusy, max(busiestBetween(stat0, stat1, b.loadCPUs), 0))
	}
	return nil
}

// sideWrk runs wrk, one thread, against url (with a Lua script when
// script is set), pinned to the load CPUs unless anyCPU (the unpinned
// shape rows). -tls and -shape measure through it.
func (b *bench) sideWrk(url, script string, conns int, dur time.Duration, anyCPU bool) (wrkResult, error) {
	args := []string{b.r.tools["wrk"], "-t1", "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(max(int(dur/time.Second), 1)) + "s", "--timeout", "5s", "--latency"}
	if script != "" {
		args = append(args, "-s", script)
	}
	args = append(args, url)
	if !anyCPU {
		args = b.r.pin.wrap(b.r.opts.loadCPUs, args)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return parseWrk(string(out))
}

// finishSideRun writes a -tls or -shape report as OUT/NAME (every
// round's figures) and returns the exit code: 1 when a run failed.
func finishSideRun(out, name string, rep any, failures int) int {
	if err := os.MkdirAll(out, 0o755); err == nil {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := writeFileAtomic(filepath.Join(out, name), data); err != nil {
			logf("write %s: %v", name, err)
		}
	}
	if failures > 0 {
		return 1
	}
	return 0
}

// tlsClient runs the handshake client as a child pinned to the load CPUs
// (at normal priority, like wrk), so its crypto does not share the
// contender's CPU.
func (b *bench) tlsClient(spec hsSpec) (hsResult, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return hsResult{}, err
	}
	argv := b.r.pin.wrap(b.r.opts.loadCPUs, []string{b.self})
	ctx, cancel := context.WithTimeout(context.Background(), spec.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "WEIRBENCH_CHILD=tlsclient", "GOMAXPROCS=1", "WEIRBENCH_TLS_SPEC="+string(js))
	out, err := cmd.Output()
	if err != nil {
		return hsResult{}, fmt.Errorf("tls client: %v", err)
	}
	var res hsResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("tls client answer %q: %w", out, err)
	}
	return res, nil
}

// tlsProfileRow runs a row once more, unmeasured, while profiling the
// contender for the run's length less a second: Weir through its admin
// pprof endpoint (OUT/pprof/tls-ROW-weir.pprof, read with go tool pprof
// -top bin/weir FILE), nginx's worker with perf when it is installed
// (OUT/pprof/tls-ROW-nginx.txt, perf report's top symbols).
func (b *bench) tlsProfileRow(c *tlsContender, row tlsBenchRow) (string, error) {
	secs := max(int(b.r.opts.duration/time.Second)-1, 1)
	dir := filepath.Join(b.r.opts.out, "pprof")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(dir, "tls-"+sanitize(strings.ReplaceAll(row.name, " ", "-"))+"-"+c.kind)
	done := make(chan error, 1)
	var file string
	switch c.kind {
	case "weir":
		file = base + ".pprof"
		go func() { done <- fetchProfile(c.admin, secs, file) }()
	default:
		perf := lookTool("perf")
		if perf == "" {
			return "", errors.New("perf is not installed (apt-get install -y linux-perf)")
		}
		worker, err := childPID(c.proc.pid())
		if err != nil {
			return "", err
		}
		file = base + ".txt"
		data := base + ".perf.data"
		go func() {
			err := exec.Command(perf, "record", "-q", "-F", "999", "-o", data, "-p", strconv.Itoa(worker), "--", "sleep", strconv.Itoa(secs)).Run()
			if err == nil {
				var byDSO, bySym []byte
				byDSO, err = exec.Command(perf, "report", "-i", data, "--stdio", "--no-children", "--sort", "dso").Output()
				if err == nil {
					bySym, err = exec.Command(perf, "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym", "--percent-limit", "0.7").Output()
				}
				if err == nil {
					err = os.WriteFile(file, append(byDSO, bySym...), 0o644)
				}
			}
			os.Remove(data)
			done <- err
		}()
	}
	if err := b.tlsMeasure(c, row, &tlsRow{}); err != nil {
		<-done
		return "", err
	}
	return file, <-done
}

func fetchProfile(admin string, secs int, file string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs)
	resp, err := (&http.Client{Timeout: time.Duration(secs+10) * time.Second}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return os.WriteFile(file, body, 0o644)
}

// childPID is the first child of pid (nginx's worker under its master).
func childPID(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("process %d has no child", pid)
	}
	return strconv.Atoi(f[0])
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machineLine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs allowed", model, len(allowedCPUs()))
}

func fmtRatios(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
}

func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%s–%s", fmtInt(lo), fmtInt(hi))
}

// printTLSReport prints the table: per row Weir then nginx, medians over
// rounds, the spread of the rate, and Weir ÷ nginx.
func printTLSReport(w io.Writer, rep *tlsReport) {
	fmt.Fprintf(w, "\nTLS rows (%s, %s; %d rounds × %s, weir and nginx alternated; load avg %s)\n\n",
		rep.Date, rep.Machine, rep.Rounds, rep.Duration, strings.Join(rep.LoadAvg, ", "))
	fmt.Fprintln(w, "| row | contender | rate/s (median) | rounds min–max | p50 ms | p99 ms | CPU µs/req | proxy / load CPU busy | ×nginx rate | per round | ×nginx CPU | per round | resumed |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	rows := map[string]*tlsRow{}
	for _, r := range rep.Rows {
		rows[r.Row+"|"+r.Contender] = r
	}
	for _, r := range rep.Rows {
		// The ratio of the medians, and each round's ratio to the nginx
		// run next to it: the spread a verdict has to survive.
		ratio, cratio, rr, cr := "", "", "", ""
		if r.Contender == "weir" {
			if ng := rows[r.Row+"|nginx"]; ng != nil && median(ng.Rate) > 0 {
				ratio = fmt.Sprintf("%.2f", median(r.Rate)/median(ng.Rate))
				rr = fmtRatios(pairedRatios(r.Rate, ng.Rate))
				if median(ng.CPUus) > 0 {
					cratio = fmt.Sprintf("%.2f", median(r.CPUus)/median(ng.CPUus))
					cr = fmtRatios(pairedRatios(r.CPUus, ng.CPUus))
				}
			}
		}
		res := ""
		if len(r.Resumed) > 0 {
			res = fmt.Sprintf("%.0f %%", median(r.Resumed)*100)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f | %.2f | %.1f | %.0f / %.0f %% | %s | %s | %s | %s | %s |\n",
			r.Row, r.Contender, fmtInt(median(r.Rate)), spread(r.Rate), median(r.P50us)/1e3, median(r.P99us)/1e3,
			median(r.CPUus), median(r.ProxyBusy)*100, median(r.LoadBusy)*100, ratio, rr, cratio, cr, res)
	}
	fmt.Fprintln(w)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, f := range rep.Failures {
		fmt.Fprintln(w, "FAILED:", f)
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintln(w, errors.New("some TLS runs failed"))
	}
}
