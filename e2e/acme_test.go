package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/weirgw/weir/internal/testredis"
)

// acmeDomain is the name the tests' certificates are ordered for. Pebble
// runs with PEBBLE_VA_ALWAYS_VALID, so it never has to resolve it.
const acmeDomain = "api.acme.test"

// pebble is a running letsencrypt/pebble ACME server (the go.mod tool).
type pebble struct {
	Dir    string         // the directory URL
	CAFile string         // PEM of the CA of pebble's own HTTPS listener
	Roots  *x509.CertPool // pebble's issuing root, which certificates chain to
	mu     sync.Mutex
	out    bytes.Buffer
}

var pebbleBin = sync.OnceValues(func() (string, error) {
	// go tool -n builds the tool once into the build cache and prints
	// its path; go.mod pins the version.
	out, err := exec.Command("go", "tool", "-n", "pebble").Output()
	return strings.TrimSpace(string(out)), err
})

// startPebble runs pebble on loopback ports, validating every challenge
// without a look; validity is the lifetime in seconds of the certificates
// it issues.
func startPebble(t *testing.T, validity int) *pebble {
	t.Helper()
	return startPebbleWith(t, pebbleOpts{validity: validity})
}

// pebbleOpts shape a pebble. With dns set, pebble validates challenges
// for real: it resolves the domain with that server and makes the
// TLS-ALPN-01 connection to tlsPort.
type pebbleOpts struct {
	validity int
	dns      string
	tlsPort  int
}

func startPebbleWith(t *testing.T, o pebbleOpts) *pebble {
	t.Helper()
	bin, err := pebbleBin()
	if err != nil {
		t.Fatalf("building pebble: %v", err)
	}
	dir := t.TempDir()
	ca := newTestCA(t, "pebble listener CA")
	c, k, _ := ca.issue(t, leafOpts{names: []string{"localhost"}})
	cf, kf := writePair(t, dir, "pebble", c, k)
	p := &pebble{CAFile: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(p.CAFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	listen, mgmt := freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(listen)
	_, mport, _ := net.SplitHostPort(mgmt)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": cf, "privateKey": kf,
		"httpPort": 5002, "tlsPort": o.tlsPort, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "test", "validityPeriod": o.validity}},
	}})
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	if o.dns == "" {
		cmd.Env = append(cmd.Env, "PEBBLE_VA_ALWAYS_VALID=1")
	} else {
		cmd.Args = append(cmd.Args, "-dnsserver", o.dns)
	}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.Write(sc.Bytes())
			p.out.WriteByte('\n')
			p.mu.Unlock()
		}
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble output:\n%s", p.Logs())
		}
	})
	p.Dir = "https://localhost:" + port + "/dir"
	// The issuing root is random per run: ask the management API.
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := cl.Get("https://localhost:" + mport + "/roots/0")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p.Roots = x509.NewCertPool()
			if resp.StatusCode == 200 && p.Roots.AppendCertsFromPEM(b) {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not come up: %v\n%s", err, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *pebble) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// issued counts the certificates pebble issued.
func (p *pebble) issued() int { return strings.Count(p.Logs(), "Issued certificate serial") }

var issuedSerial = regexp.MustCompile(`Issued certificate serial ([0-9a-f]+)`)

// issuedSerials are the serials pebble issued, in order, in pebble's hex.
func (p *pebble) issuedSerials() []string {
	var out []string
	for _, m := range issuedSerial.FindAllStringSubmatch(p.Logs(), -1) {
		out = append(out, m[1])
	}
	return out
}

// serialHex spells a certificate's serial as pebble logs it.
func serialHex(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// acmeCfg is a weir config whose one TLS listener gets its certificate
// from pebble p; extra is appended (a redis section).
func acmeCfg(t *testing.T, p *pebble, up, tlsExtra, extra string) string {
	return tlsCfg(up, fmt.Sprintf(`{acme: {email: ops@acme.test, domains: [%s], directory: %q, ca: %q, storage: %q%s}}`,
		acmeDomain, p.Dir, p.CAFile, filepath.Join(t.TempDir(), "acme"), tlsExtra)) + extra
}

// acmeGet makes one HTTPS request for acmeDomain, verifying the chain
// against pebble's root, and returns the leaf.
func acmeGet(t *testing.T, addr string, p *pebble) *x509.Certificate {
	t.Helper()
	st, code, _, err := tlsGet(addr, &tls.Config{ServerName: acmeDomain, RootCAs: p.Roots}, "/")
	if err != nil || code != 200 {
		t.Fatalf("GET https://%s/ on %s: %d, %v", acmeDomain, addr, code, err)
	}
	return st.PeerCertificates[0]
}

// waitACME waits until addr serves a certificate for acmeDomain that
// chains to pebble's root (the first order runs in the background after
// the start) and returns it.
func waitACME(t *testing.T, addr string, p *pebble) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, code, _, err := tlsGet(addr, &tls.Config{ServerName: acmeDomain, RootCAs: p.Roots}, "/")
		if err == nil && code == 200 {
			return st.PeerCertificates[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s served on %s within 30s: %d, %v", acmeDomain, addr, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestACMEIssuanceAtStart: a listener with acme gets a certificate from
// the CA after it starts: it names the domain, chains to the CA's root,
// and its expiry is in weir_tls_certificate_expiry_seconds. A restart
// serves the stored certificate from its first handshake.
func TestACMEIssuanceAtStart(t *testing.T) {
	p := startPebble(t, 7776000)
	w := startWeir(t, acmeCfg(t, p, startEcho(t, "e1"), "", ""))
	leaf := waitACME(t, w.Addr, p)
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != acmeDomain {
		t.Fatalf("served certificate names %v; want [%s]", leaf.DNSNames, acmeDomain)
	}
	if n := p.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates; want 1", n)
	}
	left := w.metric(`weir_tls_certificate_expiry_seconds{name="` + acmeDomain + `"}`)
	if want := time.Until(leaf.NotAfter).Seconds(); left < want-60 || left > want+60 {
		t.Fatalf("expiry gauge %v; want about %v", left, want)
	}
	// A restart loads the certificate from storage instead of ordering
	// another.
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-w.exited
	w2 := startWeir(t, strings.NewReplacer(w.Addr, "{{LISTEN}}", w.Admin, "{{ADMIN}}").Replace(readFile(t, w.File)))
	if again := acmeGet(t, w2.Addr, p); again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("after a restart the serial is %s; want the stored %s", again.SerialNumber, leaf.SerialNumber)
	}
	if n := p.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates after a restart; want still 1", n)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestACMERenewal: a certificate in its renewal window is renewed in the
// background: a new serial is served, and a connection opened before the
// renewal keeps working after it.
func TestACMERenewal(t *testing.T) {
	// 60 s certificates renewed in the last 80% of their life: the first
	// is due 12 s after issuance.
	p := startPebble(t, 60)
	w := startWeir(t, acmeCfg(t, p, startEcho(t, "e1"), ", renew_window: 0.8, renew_check_interval: 1s", ""))
	first := waitACME(t, w.Addr, p)

	held := dialHeld(t, w.Addr, &tls.Config{ServerName: acmeDomain, RootCAs: p.Roots})
	held.get(t)

	deadline := time.Now().Add(40 * time.Second)
	var renewed *x509.Certificate
	for renewed == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal within 40s: still serial %s; pebble issued %d", first.SerialNumber, p.issued())
		}
		time.Sleep(500 * time.Millisecond)
		held.get(t) // the connection stays good while renewals happen
		if l := acmeGet(t, w.Addr, p); l.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = l
		}
	}
	// NotAfter has one-second resolution, and a renewal may come within
	// the second of the first issuance: pebble's renewal information
	// (ARI) suggests a window from issuance to expiry for a 60 s
	// certificate (the ideal time less 24 h, clamped to issuance), and
	// certmagic picks a moment in it at random (seen once in CI: a new
	// serial 1.7 s into the test). The renewed one must not expire
	// earlier.
	if renewed.NotAfter.Before(first.NotAfter) {
		t.Fatalf("renewed certificate expires %s, before the first's %s", renewed.NotAfter, first.NotAfter)
	}
	if n := p.issued(); n < 2 {
		t.Fatalf("pebble issued %d certificates; want a renewal", n)
	}
	held.get(t)
}

// launchWeir starts the binary like startWeir but does not wait for it,
// so that several nodes start at the same time.
func launchWeir(t *testing.T, cfg string) *weir {
	t.Helper()
	return launchWeirAt(t, freeAddr(t), cfg)
}

// launchWeirAt is launchWeir with the proxy listener on addr.
func launchWeirAt(t *testing.T, addr, cfg string) *weir {
	t.Helper()
	w := &weir{t: t, Addr: addr, Admin: freeAddr(t)}
	w.File = filepath.Join(t.TempDir(), "weir.yaml")
	w.write(cfg)
	w.spawn(nil)
	return w
}

// waitUp waits until w answers on its admin /status.
func (w *weir) waitUp(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-w.exited:
			t.Fatalf("weir exited at start: %v\n%s", w.exit, w.Logs())
		default:
		}
		if resp, err := http.Get("http://" + w.Admin + "/status"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("weir did not come up\n%s", w.Logs())
}

// TestACMEClusterOrdersOnce: two nodes sharing a Redis start at the same
// time; one of them orders the certificate while the other waits on the
// lock and then loads it, so the CA issues one certificate and both nodes
// serve it.
func TestACMEClusterOrdersOnce(t *testing.T) {
	rs := testredis.Start(t)
	p := startPebble(t, 7776000)
	// Each node names a storage directory of its own, as separate
	// machines would have: only Redis can make them share.
	up, redis := startEcho(t, "e1"), "redis: {addrs: [\""+rs.Addr+"\"]}\n"
	a, b := launchWeir(t, acmeCfg(t, p, up, "", redis)), launchWeir(t, acmeCfg(t, p, up, "", redis))
	a.waitUp(t)
	b.waitUp(t)
	la, lb := waitACME(t, a.Addr, p), waitACME(t, b.Addr, p)
	if la.SerialNumber.Cmp(lb.SerialNumber) != 0 {
		t.Fatalf("node A serves serial %s, node B %s; want one certificate", la.SerialNumber, lb.SerialNumber)
	}
	if n := p.issued(); n != 1 {
		t.Fatalf("pebble issued %d certificates for two nodes; want 1", n)
	}
	if n, err := rs.Do("HLEN", "{weir}:acme:data"); err != nil || n == ":0" {
		t.Fatalf("HLEN {weir}:acme:data = %q, %v; want the shared certificate there", n, err)
	}
}

// TestACMEValidate: weir validate accepts an acme-only listener, and
// names the place and the file of an acme.ca it cannot load and the
// keys the schema refuses.
func TestACMEValidate(t *testing.T) {
	run := func(tlsSection string) (string, int) {
		file := filepath.Join(t.TempDir(), "weir.yaml")
		cfg := fmt.Sprintf("listen: {address: \"127.0.0.1:0\", tls: %s}\n", tlsSection)
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return validateFile(t, file)
	}
	if out, code := run(`{acme: {email: ops@example.com, domains: [api.example.com], storage: /var/lib/weir/acme}}`); code != 0 {
		t.Errorf("acme only: exit %d, output:\n%s", code, out)
	}
	out, code := run(`{acme: {domains: [api.example.com], ca: missing-ca.pem}}`)
	if code != 1 || !strings.Contains(out, "listen.tls.acme.ca: reading acme ca file") || !strings.Contains(out, "missing-ca.pem") {
		t.Errorf("missing acme ca: exit %d, output:\n%s", code, out)
	}
	out, code = run(`{acme: {domains: [], directory: "http://acme.example/dir"}}`)
	if code != 1 || !strings.Contains(out, "listen.tls.acme.domains: no domains") || !strings.Contains(out, `listen.tls.acme.directory: "http://acme.example/dir" is not an https URL`) {
		t.Errorf("bad acme: exit %d, output:\n%s", code, out)
	}
}

// TestACMETLSALPNChallenge: with a CA that validates for real, the
// TLS-ALPN-01 challenge is answered by the listener itself: the CA
// resolves the domain to 127.0.0.1, connects to the listener's port
// offering acme-tls/1, and gets certmagic's challenge certificate.
func TestACMETLSALPNChallenge(t *testing.T) {
	_, addr, p := startValidatingPebble(t)
	w := launchWeirAt(t, addr, acmeCfg(t, p, startEcho(t, "e1"), "", ""))
	w.waitUp(t)
	if leaf := waitACME(t, w.Addr, p); leaf.DNSNames[0] != acmeDomain {
		t.Fatalf("served certificate names %v", leaf.DNSNames)
	}
	// Pebble validated for real (no PEBBLE_VA_ALWAYS_VALID): the order
	// went through because the listener answered the challenge.
	if !strings.Contains(w.Logs(), `"challenge_type":"tls-alpn-01"`) || p.issued() != 1 {
		t.Fatalf("want one certificate issued after a tls-alpn-01 challenge; pebble issued %d", p.issued())
	}
}

// startValidatingPebble runs a pebble that validates challenges for real
// against a listener address it returns (for the weir under test),
// resolving acmeDomain to 127.0.0.1 with a test DNS server.
func startValidatingPebble(t *testing.T) (*dnsServer, string, *pebble) {
	t.Helper()
	d := startDNS(t)
	d.setA(acmeDomain, "127.0.0.1")
	// Pebble's resolver asks over TCP: serve the same answers there.
	ln, err := net.Listen("tcp", d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(d.answer)}
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() { _ = tcp.Shutdown() })
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	tlsPort, _ := strconv.Atoi(port)
	return d, addr, startPebbleWith(t, pebbleOpts{validity: 7776000, dns: d.Addr, tlsPort: tlsPort})
}

// TestACMEClusterRenewsOnce: in a cluster, each renewal is ordered by
// one node and served by both. A node decides to renew under the
// cluster's lock, after reading the stored certificate: certmagic logs
// "renewing certificate" with the time that certificate had left, so the
// line's time plus that is the NotAfter of the certificate it replaces.
// Two nodes both ordering would be two such lines for one certificate.
// (More than one renewal may happen in the test: pebble's renewal
// information opens the window of a 30 s certificate at its issuance, and
// certmagic picks a moment in it at random, so a fresh certificate can be
// due within a second; that is a later renewal, of another certificate.)
func TestACMEClusterRenewsOnce(t *testing.T) {
	rs := testredis.Start(t)
	// 30 s certificates renewed in the last 70%: due 9 s after issuance,
	// the next 9 s after that.
	p := startPebble(t, 30)
	up, redis := startEcho(t, "e1"), "redis: {addrs: [\""+rs.Addr+"\"]}\n"
	extra := ", renew_window: 0.7, renew_check_interval: 1s"
	a, b := launchWeir(t, acmeCfg(t, p, up, extra, redis)), launchWeir(t, acmeCfg(t, p, up, extra, redis))
	a.waitUp(t)
	b.waitUp(t)
	first := waitACME(t, a.Addr, p)
	// b takes the certificate from the cluster's storage once a's order
	// releases the lock: it may serve a moment later than a.
	waitACME(t, b.Addr, p)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the nodes never served one renewed certificate; pebble issued %d", p.issued())
		}
		time.Sleep(200 * time.Millisecond)
		la, lb := acmeGet(t, a.Addr, p), acmeGet(t, b.Addr, p)
		if la.SerialNumber.Cmp(first.SerialNumber) != 0 && la.SerialNumber.Cmp(lb.SerialNumber) == 0 {
			if got := p.issuedSerials(); len(got) < 2 || got[0] != serialHex(first) || !slices.Contains(got, serialHex(la)) {
				t.Fatalf("both nodes serve %s; pebble issued %v; want the first %s, then renewals including it", serialHex(la), got, serialHex(first))
			}
			break
		}
	}
	// Give a second order for the same certificate, if one were coming,
	// the time to show in the logs.
	time.Sleep(2 * time.Second)
	// An attempt ("renewing certificate") can fail (a validation that
	// times out on a loaded machine) and leave the renewal to the other
	// node, as it should; what must not happen is two attempts for one
	// certificate that both succeed.
	replaced := map[int64][]string{} // NotAfter of the renewed certificate -> who renewed it
	obtained := 0
	for _, n := range []struct {
		name string
		w    *weir
	}{{"a", a}, {"b", b}} {
		var attempt *time.Time // this node's renewal in progress: when, and the replaced certificate's NotAfter
		var attemptNotAfter int64
		for _, line := range strings.Split(n.w.Logs(), "\n") {
			var l struct {
				Time      time.Time `json:"time"`
				Msg       string    `json:"msg"`
				Remaining float64   `json:"remaining"` // nanoseconds
			}
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			switch l.Msg {
			case "certificate obtained successfully":
				obtained++
			case "renewing certificate":
				at := l.Time
				attempt, attemptNotAfter = &at, l.Time.Add(time.Duration(l.Remaining)).Round(time.Second).Unix()
			case "certificate renewed successfully":
				if attempt == nil {
					t.Errorf("node %s logged a renewal with no attempt before it: %s", n.name, line)
					continue
				}
				replaced[attemptNotAfter] = append(replaced[attemptNotAfter], n.name+" at "+attempt.Format("15:04:05.000"))
				attempt = nil
			}
		}
	}
	if obtained != 1 {
		t.Errorf("the nodes logged %d first orders; want 1", obtained)
	}
	if len(replaced) == 0 {
		t.Error("no node logged a renewal")
	}
	for notAfter, who := range replaced {
		if len(who) > 1 {
			t.Errorf("the certificate expiring at %s was renewed %d times (%v): the lock let two orders through",
				time.Unix(notAfter, 0).UTC().Format(time.RFC3339), len(who), who)
		}
	}
	renewals, issued := len(replaced), p.issued()
	if issued < 1+renewals {
		t.Errorf("pebble issued %d certificates for 1 order and %d renewals", issued, renewals)
	}
	if t.Failed() {
		// The certificate manager's own lines say why a node renewed
		// (ARI window, ratio, emergency) and when it held the lock.
		for _, n := range []struct {
			name string
			w    *weir
		}{{"a", a}, {"b", b}} {
			for _, line := range strings.Split(n.w.Logs(), "\n") {
				if strings.Contains(line, "renew") || strings.Contains(line, "lock") || strings.Contains(line, "ARI") || strings.Contains(line, "obtain") {
					t.Logf("%s: %s", n.name, line)
				}
			}
		}
	}
	t.Logf("1 order, %d renewals, each by one node (%v); pebble issued %d", renewals, replaced, issued)
}
