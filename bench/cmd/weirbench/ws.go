package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The WebSocket rows (-ws): Weir and nginx relay WebSockets between
// clients and an echo server, both written with coder/websocket and run
// by this process on the load CPUs. For each contender, in alternation:
// -ws-conns WebSockets are opened and left idle (the contender's RSS
// before and after, divided by the count, is its memory per idle
// WebSocket), then every one echoes small messages as fast as it can for
// the run's duration (messages/s counts round trips), then all close.

const wsNginxTemplate = nginxHead + `
    server {
        listen {{LISTEN}} backlog=4096;
        location / {
            proxy_pass http://{{BACKEND}};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Id $request_id;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }
    }
}
`

const wsWeirTemplate = `
listen: "{{LISTEN}}"
admin: {listen: "{{ADMIN}}", pprof: true}
server: {max_websockets: 100000, websocket: {idle_timeout: 300s}}
services: [{name: echo, targets: [{url: "http://{{BACKEND}}"}]}]
routes: [{name: ws, paths: ["/"], service: echo}]
`

type wsRow struct {
	Contender   string  `json:"contender"`
	Round       int     `json:"round"`
	Conns       int     `json:"conns"`
	MsgsPerSec  float64 `json:"messages_per_s"`
	CPUPerMsgUs float64 `json:"cpu_us_per_message"` // the contender's CPU time per echo round trip
	IdleBytesWS float64 `json:"rss_bytes_per_idle_websocket"`
	Errors      int64   `json:"errors"`
}

// wsEchoServer serves the WebSocket echo on a loopback port.
func wsEchoServer() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return
			}
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// treeRSS is the resident memory of pid and its children (nginx's
// worker), in bytes.
func treeRSS(pid int) int64 {
	total := int64(0)
	pids := []int{pid}
	for len(pids) > 0 {
		p := pids[0]
		pids = pids[1:]
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p)); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
					kb, _ := strconv.ParseInt(f[1], 10, 64)
					total += kb << 10
				}
			}
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p)); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					pids = append(pids, c)
				}
			}
		}
	}
	return total
}

// wsMeasure opens conns WebSockets to addr, reads the RSS delta of pid,
// echoes for d, and closes them.
func wsMeasure(addr string, pid, conns int, d time.Duration, onEcho func()) (wsRow, error) {
	row := wsRow{Conns: conns}
	before := treeRSS(pid)
	ws := make([]*websocket.Conn, conns)
	var wg sync.WaitGroup
	var dialErr atomic.Value
	sem := make(chan struct{}, 64)
	for i := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
			if err != nil {
				dialErr.Store(err)
				return
			}
			ws[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range ws {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	if err, _ := dialErr.Load().(error); err != nil {
		return row, fmt.Errorf("dial: %w", err)
	}
	time.Sleep(500 * time.Millisecond) // let the contender settle
	row.IdleBytesWS = float64(treeRSS(pid)-before) / float64(conns)

	var msgs, errs atomic.Int64
	msg := bytes.Repeat([]byte("x"), 32)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cpu0, cpuErr := treeCPU([]int{pid})
	start := time.Now()
	if onEcho != nil {
		go onEcho()
	}
	for _, c := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
					break
				}
				if _, _, err := c.Read(ctx); err != nil {
					break
				}
				msgs.Add(1)
			}
			if ctx.Err() == nil {
				errs.Add(1)
			}
		}()
	}
	wg.Wait()
	row.MsgsPerSec = float64(msgs.Load()) / time.Since(start).Seconds()
	if cpu1, err := treeCPU([]int{pid}); err == nil && cpuErr == nil && msgs.Load() > 0 {
		secs := float64(cpu1-cpu0) / float64(clockTicks())
		row.CPUPerMsgUs = secs * 1e6 / float64(msgs.Load())
	}
	row.Errors = errs.Load()
	return row, nil
}

// runWSBench runs the WebSocket rows and prints them.
func runWSBench(o options, stdout io.Writer) int {
	backend, stop, err := wsEchoServer()
	if err != nil {
		logf("echo server: %v", err)
		return 1
	}
	defer stop()
	targets, cleanup, err := startPair(o, "ws", wsWeirTemplate, wsNginxTemplate, map[string]string{"{{BACKEND}}": backend})
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer cleanup()
	var rows []wsRow
	for round := 1; round <= o.rounds; round++ {
		for i := range targets {
			t := targets[(i+round)%len(targets)] // who goes first alternates
			var onEcho func()
			if o.pprof && t.admin != "" && round == 1 {
				// -pprof: a CPU profile of Weir's first echo run.
				file := filepath.Join(o.out, "pprof", "weir-ws.pprof")
				onEcho = func() {
					_ = os.MkdirAll(filepath.Dir(file), 0o755)
					if err := fetchProfile(t.admin, max(1, int(o.duration.Seconds())-1), file); err != nil {
						logf("profile: %v", err)
					} else {
						logf("profile: %s (go tool pprof -top %s %s)", file, o.weir, file)
					}
				}
			}
			row, err := wsMeasure(t.addr, t.pid, o.wsConns, o.duration, onEcho)
			row.Contender, row.Round = t.name, round
			if err != nil {
				logf("%s round %d: %v", t.name, round, err)
				continue
			}
			rows = append(rows, row)
			logf("%s round %d: %.0f messages/s, %.0f B RSS per idle WebSocket", t.name, round, row.MsgsPerSec, row.IdleBytesWS)
		}
	}
	fmt.Fprintf(stdout, "WebSocket: %d connections echoing 32 B messages, %s per run (%s)\n", o.wsConns, o.duration, machineLine())
	fmt.Fprintf(stdout, "%-8s %5s %12s %16s %22s %7s\n", "proxy", "round", "messages/s", "CPU µs/message", "RSS per idle WS (B)", "errors")
	for _, row := range rows {
		fmt.Fprintf(stdout, "%-8s %5d %12.0f %16.1f %22.0f %7d\n", row.Contender, row.Round, row.MsgsPerSec, row.CPUPerMsgUs, row.IdleBytesWS, row.Errors)
	}
	fmt.Fprintln(stdout, "RSS per idle WebSocket is the contender's RSS growth while the WebSockets are open and idle; a round after the first reuses memory the first one grew.")
	return 0
}

// pairTarget is one contender of a side bench (-ws, -h2): its address,
// admin address (Weir's) and process.
type pairTarget struct {
	name, addr, admin string
	pid               int
	// tlsAddr is the contender's second, TLS listener, when the
	// templates have one ({{LISTEN_TLS}}).
	tlsAddr string
}

// startPair starts Weir (GOMAXPROCS=1) and, when installed, nginx on the
// proxy CPUs with the given templates, {{LISTEN}}, {{ADMIN}}, {{DIR}} and
// vars filled in (and {{LISTEN_TLS}}, a second port, when the templates
// have it); cleanup stops them and removes the work dir.
func startPair(o options, kind, weirTmpl, nginxTmpl string, vars map[string]string) ([]pairTarget, func(), error) {
	dir, err := os.MkdirTemp("", "weirbench-"+kind+"-")
	if err != nil {
		return nil, nil, fmt.Errorf("make work dir: %w", err)
	}
	r := &rig{opts: o, dir: dir, tools: map[string]string{}}
	for _, t := range []string{"nginx", "taskset"} {
		r.tools[t] = lookTool(t)
	}
	if !o.noPin && r.tools["taskset"] != "" {
		r.pin.taskset = r.tools["taskset"]
	}
	cleanup := func() {
		r.stopAll()
		if !o.keep {
			os.RemoveAll(dir)
		}
	}
	tlsAddr := func() (string, error) {
		if !strings.Contains(weirTmpl+nginxTmpl, "{{LISTEN_TLS}}") {
			return "", nil
		}
		return r.ports.next()
	}
	fill := func(tmpl, addr, tlsAddr string) string {
		pairs := []string{"{{DIR}}", dir, "{{LISTEN}}", addr, "{{LISTEN_TLS}}", tlsAddr}
		for k, v := range vars {
			pairs = append(pairs, k, v)
		}
		return strings.NewReplacer(pairs...).Replace(tmpl)
	}
	fail := func(err error) ([]pairTarget, func(), error) {
		cleanup()
		return nil, nil, err
	}
	var targets []pairTarget
	addr, err := r.ports.next()
	if err != nil {
		return fail(err)
	}
	admin, err := r.ports.next()
	if err != nil {
		return fail(err)
	}
	tls, err := tlsAddr()
	if err != nil {
		return fail(err)
	}
	file := filepath.Join(dir, "weir-"+kind+".yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(fill(weirTmpl, addr, tls), "{{ADMIN}}", admin)), 0o644); err != nil {
		return fail(err)
	}
	if out, err := exec.Command(o.weir, "validate", "-c", file).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("weir validate: %v: %s", err, out))
	}
	p, err := r.start("weir", o.proxyCPUs, []string{"GOMAXPROCS=1"}, o.weir, "run", "-c", file, "--log-level", "warn")
	if err == nil {
		err = p.waitReady(addr, 10*time.Second)
	}
	if err != nil {
		return fail(fmt.Errorf("weir: %w", err))
	}
	targets = append(targets, pairTarget{"weir", addr, admin, p.pid(), tls})
	bin := r.tools["nginx"]
	if bin == "" {
		logf("nginx not installed: Weir's rows only")
		return targets, cleanup, nil
	}
	if addr, err = r.ports.next(); err != nil {
		return fail(err)
	}
	if tls, err = tlsAddr(); err != nil {
		return fail(err)
	}
	_ = os.Chmod(dir, 0o755)
	file = filepath.Join(dir, "nginx-"+kind+".conf")
	if err := os.WriteFile(file, []byte(fill(nginxTmpl, addr, tls)), 0o644); err != nil {
		return fail(err)
	}
	p, err = r.start("nginx", o.proxyCPUs, nil, bin, "-p", dir, "-c", file, "-e", filepath.Join(dir, "nginx-error.log"), "-g", "daemon off;")
	if err == nil {
		err = p.waitReady(addr, 10*time.Second)
	}
	if err != nil {
		return fail(fmt.Errorf("nginx: %w", err))
	}
	return append(targets, pairTarget{"nginx", addr, "", p.pid(), tls}), cleanup, nil
}
