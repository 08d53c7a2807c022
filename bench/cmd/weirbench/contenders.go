package main

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

//go:embed templates/nginx.conf
var nginxTemplate string

//go:embed templates/haproxy.cfg
var haproxyTemplate string

// contender is one thing the load is sent to.
type contender struct {
	name  string // direct, nginx, haproxy, or a scenario's name
	kind  string // direct | nginx | haproxy | weir
	about string
	// targets are the addresses load goes to: one, or one per process.
	targets []string
	// admins are Weir's admin listeners, one per process (for pprof).
	admins  []string
	prefix  string
	headers map[string]string
	bodies  []string
	loads   []int // for the 64B cell; nil: the run's list
	// procs are the processes whose CPU time is the contender's; for
	// direct, the backend's.
	procs []*proc
	// redis is the scenario's own redis-server, if it needs one.
	redis    *proc
	accuracy *accuracySpec
	targetsS *scenarioTargets
}

// note is one line of the "skipped" or "failed" lists.
type note struct {
	What string `json:"what"`
	Why  string `json:"why"`
}

// rig holds everything started for a run.
type rig struct {
	wasmDir string // the built Proxy-Wasm modules, once a scenario needed them
	opts    options
	pin     pinner
	ports   portAllocator
	dir     string
	tools   map[string]string
	backend string
	back    *proc
	all     []*proc
	skipped []note
	failed  []note
}

// lookTool finds a program on PATH or in the sbin directories, where
// Debian puts nginx and haproxy for root only.
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func (r *rig) skip(what, format string, a ...any) {
	n := note{what, fmt.Sprintf(format, a...)}
	r.skipped = append(r.skipped, n)
	logf("skipped %s: %s", n.What, n.Why)
}

func (r *rig) fail(what, format string, a ...any) {
	n := note{what, fmt.Sprintf(format, a...)}
	r.failed = append(r.failed, n)
	logf("FAILED %s: %s", n.What, n.Why)
}

// start starts a contender or Redis: pinned and, when the rig may, at
// real-time priority (runBench says why).
func (r *rig) start(name, cpus string, env []string, argv ...string) (*proc, error) {
	p, err := startProc(r.pin.realtime(), name, cpus, r.dir, env, argv...)
	if err != nil {
		return nil, err
	}
	r.all = append(r.all, p)
	return p, nil
}

// stopAll stops every process, newest first.
func (r *rig) stopAll() {
	for i := len(r.all) - 1; i >= 0; i-- {
		r.all[i].stop()
	}
	r.all = nil
}

// startBackend starts the upstream every contender forwards to: this
// program as its backend process (backend.go), which also runs the load
// generator, so that the two share one event loop on the load CPUs.
func (r *rig) startBackend(self string) error {
	addr, err := r.ports.next()
	if err != nil {
		return err
	}
	p, err := startProcCtl(r.pin, "backend", r.opts.loadCPUs, r.dir,
		[]string{"GOMAXPROCS=1", "WEIRBENCH_CHILD=backend", "WEIRBENCH_BACKEND_LISTEN=" + addr}, true, self)
	if err != nil {
		return err
	}
	r.all = append(r.all, p)
	if err := p.waitReady(addr, 10*time.Second); err != nil {
		return err
	}
	if err := checkGet(addr, "/static", nil, 64); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	r.backend, r.back = addr, p
	return nil
}

// startRedis starts a private redis-server (never the machine's 6379),
// without persistence, on the load generator's CPUs. Each scenario gets
// its own, so that scenarios share no buckets or node counts, and its
// Redis CPU per request is its own.
func (r *rig) startRedis(name string) (string, *proc, error) {
	bin := r.tools["redis-server"]
	addr, err := r.ports.next()
	if err != nil {
		return "", nil, err
	}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	p, err := r.start(name, r.opts.loadCPUs, nil, bin, "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
		"--dir", r.dir, "--logfile", "")
	if err != nil {
		return "", nil, err
	}
	if err := p.waitReady(addr, 10*time.Second); err != nil {
		return "", nil, err
	}
	return addr, p, nil
}

func (r *rig) direct() *contender {
	return &contender{
		name: "direct", kind: "direct",
		about:   "no proxy: the load goes straight to the backend (CPU is the backend's)",
		targets: []string{r.backend}, bodies: r.opts.bodies, procs: []*proc{r.back},
	}
}

func (r *rig) startNginx() (*contender, error) {
	bin := r.tools["nginx"]
	addr, err := r.ports.next()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(r.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	// The worker may run as an unprivileged user: let it reach its
	// temp paths.
	_ = os.Chmod(r.dir, 0o755)
	conf := strings.NewReplacer("{{DIR}}", dir, "{{LISTEN}}", addr, "{{BACKEND}}", r.backend).Replace(nginxTemplate)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	p, err := r.start("nginx", r.opts.proxyCPUs, nil, bin, "-p", dir, "-c", file, "-e", filepath.Join(dir, "nginx-error.log"), "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(addr, 10*time.Second); err != nil {
		return nil, err
	}
	if err := checkGet(addr, "/static", nil, 64); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return &contender{
		name: "nginx", kind: "nginx",
		about:   "nginx proxy_pass, 1 worker, upstream keepalive 64",
		targets: []string{addr}, bodies: r.opts.bodies, procs: []*proc{p},
	}, nil
}

func (r *rig) startHAProxy() (*contender, error) {
	bin := r.tools["haproxy"]
	addr, err := r.ports.next()
	if err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{LISTEN}}", addr, "{{BACKEND}}", r.backend).Replace(haproxyTemplate)
	file := filepath.Join(r.dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	p, err := r.start("haproxy", r.opts.proxyCPUs, nil, bin, "-f", file, "-db")
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(addr, 10*time.Second); err != nil {
		return nil, err
	}
	if err := checkGet(addr, "/static", nil, 64); err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	return &contender{
		name: "haproxy", kind: "haproxy",
		about:   "HAProxy mode http, nbthread 1, http-reuse always",
		targets: []string{addr}, bodies: r.opts.bodies, procs: []*proc{p},
	}, nil
}

// startScenario validates a scenario's config with `weir validate` and
// starts its processes. A config that validate refuses (a plugin not
// compiled in yet, say) is skipped with validate's own words; one that
// starts but does not answer 200 is a failure.
func (r *rig) startScenario(s *scenario) (*contender, bool) {
	c := &contender{
		name: s.Name, kind: "weir", about: s.About, prefix: s.Prefix,
		headers: s.Headers, loads: s.Loads, accuracy: s.Accuracy, targetsS: s.Targets,
	}
	redisAddr := ""
	if s.needsRedis {
		if r.tools["redis-server"] == "" {
			r.skip(s.Name, "needs Redis and no redis-server is installed (apt-get install -y redis-server)")
			return nil, false
		}
		addr, p, err := r.startRedis("redis-" + s.Name)
		if err != nil {
			r.fail(s.Name, "start its redis-server: %v", err)
			return nil, true
		}
		redisAddr, c.redis = addr, p
	}
	if s.needsWasm {
		if r.wasmDir == "" {
			dir := filepath.Join(r.dir, "wasm")
			if err := buildBenchWasm(filepath.Join(r.opts.scenarios, "..", ".."), dir); err != nil {
				r.skip(s.Name, "building its Proxy-Wasm modules: %v", err)
				return nil, false
			}
			r.wasmDir = dir
		}
		s.wasmDir = r.wasmDir
	}
	for _, b := range s.Bodies {
		if contains(r.opts.bodies, b) {
			c.bodies = append(c.bodies, b)
		}
	}
	if len(c.bodies) == 0 {
		r.skip(s.Name, "none of its bodies (%s) is in this run's (%s)", strings.Join(s.Bodies, ","), strings.Join(r.opts.bodies, ","))
		return nil, false
	}
	type planned struct{ listen, admin, file string }
	var ps []planned
	for i := 0; i < s.Processes; i++ {
		listen, err := r.ports.next()
		if err != nil {
			r.fail(s.Name, "%v", err)
			return nil, true
		}
		admin, err := r.ports.next()
		if err != nil {
			r.fail(s.Name, "%v", err)
			return nil, true
		}
		file := filepath.Join(r.dir, fmt.Sprintf("%s-%d.yaml", sanitize(s.Name), i+1))
		if err := os.WriteFile(file, []byte(s.render(listen, admin, r.backend, redisAddr)), 0o644); err != nil {
			r.fail(s.Name, "write config: %v", err)
			return nil, true
		}
		ps = append(ps, planned{listen, admin, file})
	}
	out, err := exec.Command(r.opts.weir, "validate", "-c", ps[0].file).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		msg = strings.ReplaceAll(msg, ps[0].file+": ", "")
		msg = strings.ReplaceAll(msg, "\n", "; ")
		if msg == "" {
			msg = err.Error()
		}
		r.skip(s.Name, "weir validate refused %s: %s", s.File, msg)
		return nil, false
	}
	env := []string{"GOMAXPROCS=" + strconv.Itoa(s.GOMAXPROCS)}
	for i, p := range ps {
		name := s.Name
		if s.Processes > 1 {
			name = fmt.Sprintf("%s#%d", s.Name, i+1)
		}
		pr, err := r.start(name, r.opts.proxyCPUs, env, r.opts.weir, "run", "-c", p.file, "--log-level", "warn")
		if err != nil {
			r.fail(s.Name, "%v", err)
			return nil, true
		}
		if err := pr.waitReady(p.listen, 10*time.Second); err != nil {
			r.fail(s.Name, "%v", err)
			return nil, true
		}
		c.targets = append(c.targets, p.listen)
		c.admins = append(c.admins, p.admin)
		c.procs = append(c.procs, pr)
	}
	for _, t := range c.targets {
		for _, b := range c.bodies {
			k, _ := bodyKindOf(b)
			var post []byte
			if k.post {
				post = requestBody
			}
			if err := checkAnswer(t, s.Prefix+k.path, s.Headers, post, k.answer); err != nil {
				r.fail(s.Name, "%v (config %s)", err, s.File)
				return nil, true
			}
		}
	}
	return c, true
}

// checkGet is checkAnswer for a GET.
func checkGet(addr, path string, headers map[string]string, wantLen int) error {
	return checkAnswer(addr, path, headers, nil, wantLen)
}

// checkAnswer sends one request (a GET, or a POST of post when set) and
// wants 200 with a body of wantLen bytes, so that a misconfigured
// contender is caught before it is measured answering errors fast.
func checkAnswer(addr, path string, headers map[string]string, post []byte, wantLen int) error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + path)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	method := "GET"
	if post != nil {
		method = "POST"
		req.Header.SetMethod(method)
		req.Header.SetContentType("text/plain")
		req.SetBody(post)
	}
	var err error
	for try := 0; try < 20; try++ {
		if err = fasthttp.DoTimeout(req, resp, 2*time.Second); err == nil && resp.StatusCode() == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("%s http://%s%s: %w", method, addr, path, err)
	}
	if resp.StatusCode() != 200 {
		body := resp.Body()
		if len(body) > 200 {
			body = body[:200]
		}
		return fmt.Errorf("%s http://%s%s answered %d, want 200: %s", method, addr, path, resp.StatusCode(), body)
	}
	if n := len(resp.Body()); n != wantLen {
		return fmt.Errorf("%s http://%s%s returned %d bytes, want %d", method, addr, path, n, wantLen)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// toolVersion asks a tool its version, for the report.
func toolVersion(path string, args ...string) string {
	if path == "" {
		return ""
	}
	out, _ := exec.Command(path, args...).CombinedOutput()
	line := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	return line
}
