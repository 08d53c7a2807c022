package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/proxy/transport"
	"github.com/weirgw/weir/sdk"
)

// maxAggregateLegBytes bounds what one leg of an aggregate may return: the
// merged document is built in memory.
const maxAggregateLegBytes = 8 << 20

// aggregate is a compiled `aggregate:` route: GET several services in
// parallel and answer one JSON object with each result under its key.
type aggregate struct {
	timeout time.Duration
	legs    []aggLeg
}

type aggLeg struct {
	svc      *service
	key      string
	optional bool
	parts    []tmplPart // "/users/{id}" → "/users/", param id
	inQuery  []bool     // parallel to parts: the part is in the query string
}

type tmplPart struct {
	lit   string
	param string // non-empty: substitute this route parameter
}

// compileTemplate splits "/orders?user={id}" into literals and params.
func compileTemplate(t string) ([]tmplPart, []bool, error) {
	var parts []tmplPart
	var inQ []bool
	q := false
	for len(t) > 0 {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			parts, inQ = append(parts, tmplPart{lit: t}), append(inQ, q)
			break
		}
		if i > 0 {
			parts, inQ = append(parts, tmplPart{lit: t[:i]}), append(inQ, q)
			if strings.IndexByte(t[:i], '?') >= 0 {
				q = true
			}
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return nil, nil, fmt.Errorf("unclosed \"{\" in %q", t)
		}
		name := t[i+1 : i+j]
		if name == "" {
			return nil, nil, fmt.Errorf("empty parameter name in %q", t)
		}
		parts, inQ = append(parts, tmplPart{param: name}), append(inQ, q)
		t = t[i+j+1:]
	}
	return parts, inQ, nil
}

func (s *Snapshot) buildAggregate(rc *config.Route, i int) (*aggregate, config.ErrorList) {
	var errs config.ErrorList
	a := &aggregate{timeout: rc.Aggregate.Timeout.D()}
	if a.timeout <= 0 {
		a.timeout = 2 * time.Second
	}
	for j, b := range rc.Aggregate.Backends {
		place := fmt.Sprintf("routes[%d].aggregate.backends[%d]", i, j)
		svc := s.services[b.Service]
		if svc == nil {
			errs = append(errs, &config.Error{File: s.Source, Place: place + ".service", Msg: fmt.Sprintf("no service named %q", b.Service)})
			continue
		}
		parts, inQ, err := compileTemplate(b.Path)
		if err != nil {
			errs = append(errs, &config.Error{File: s.Source, Place: place + ".path", Msg: err.Error()})
			continue
		}
		a.legs = append(a.legs, aggLeg{svc: svc, key: b.Key, optional: b.Optional, parts: parts, inQuery: inQ})
	}
	return a, errs
}

// errNotJSON marks a leg whose answer is not JSON: it cannot go into the
// merged document as the backend's JSON, so it counts as a failed leg.
var errNotJSON = errors.New("the answer is not JSON")

type legResult struct {
	body    []byte
	err     error
	status  int
	timeout bool
}

// aggregate answers an aggregate route. Required legs that fail (an error
// status, no answer, an answer that is not JSON) make the whole answer 502
// (504 on timeout); optional ones become null and are listed in
// X-Weir-Aggregate-Missing.
func (s *Server) aggregate(c *sdk.Ctx, r *route, snap *Snapshot) time.Duration {
	a := r.agg
	start := time.Now()
	deadline := start.Add(a.timeout)
	results := make([]legResult, len(a.legs))
	// The client headers the legs carry are copied once, here: fasthttp's
	// Peek writes to a scratch buffer, so the legs must not call it on the
	// shared request concurrently.
	var fwd [][2]string
	src := &c.RequestCtx().Request.Header
	for _, h := range aggregateForwardHeaders {
		if v := src.Peek(h); len(v) > 0 {
			fwd = append(fwd, [2]string{h, string(v)})
		}
	}
	if cons := c.Consumer(); cons != nil {
		fwd = append(fwd, [2]string{"X-Consumer-Name", cons.Name})
	}
	// Each leg is a request sent upstream: it carries the forwarding
	// fields forward sets, and the client's traceparent or one started
	// here (the same for every leg: they are parts of one request). A
	// recorded request's legs name its server span (tracing.go).
	trace := src.Peek("Traceparent")
	if tp := sdk.TraceparentOf(c.TraceContext()); tp != "" {
		trace = []byte(tp)
	} else if !validTraceparent(trace) {
		trace = appendTraceparent(nil, true)
	}
	fwd = append(fwd, [2]string{"Traceparent", string(trace)}) // copied before the next Peek
	fwd = append(fwd,
		[2]string{"X-Forwarded-For", string(s.appendForwardedFor(nil, src.Peek("X-Forwarded-For"), c))},
		[2]string{"X-Forwarded-Proto", string(forwardedProto(c.RequestCtx()))},
		[2]string{"X-Forwarded-Host", string(c.Host())})
	var wg sync.WaitGroup
	for i := range a.legs {
		leg := &a.legs[i]
		uri := leg.render(c)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.fetchLeg(leg, uri, fwd, deadline)
		}(i)
	}
	wg.Wait()

	var missing []string
	var out bytes.Buffer
	out.WriteByte('{')
	for i, leg := range a.legs {
		res := results[i]
		if res.err != nil || res.status >= 400 {
			if !leg.optional {
				switch {
				case res.timeout:
					s.fail(c, r, fasthttp.StatusGatewayTimeout, "aggregate backend "+leg.key+" timed out")
				case errors.Is(res.err, errNotJSON):
					s.fail(c, r, fasthttp.StatusBadGateway, "aggregate backend "+leg.key+" did not answer JSON")
				default:
					s.fail(c, r, fasthttp.StatusBadGateway, "aggregate backend "+leg.key+" failed")
				}
				return time.Since(start)
			}
			missing = append(missing, leg.key)
		}
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(sdk.AppendJSONString(nil, leg.key))
		out.WriteByte(':')
		if res.err != nil || res.status >= 400 {
			out.WriteString("null")
		} else {
			out.Write(bytes.TrimSpace(res.body))
		}
	}
	out.WriteByte('}')
	resp := c.Response()
	resp.Reset()
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentType("application/json")
	if len(missing) > 0 {
		resp.Header.Set("X-Weir-Aggregate-Missing", strings.Join(missing, ","))
	}
	resp.SetBody(out.Bytes())
	return time.Since(start)
}

func (leg *aggLeg) render(c *sdk.Ctx) string {
	var b strings.Builder
	for i, p := range leg.parts {
		if p.param == "" {
			b.WriteString(p.lit)
			continue
		}
		v := string(c.Param(p.param))
		if leg.inQuery[i] {
			b.WriteString(url.QueryEscape(v))
		} else {
			b.WriteString(url.PathEscape(v))
		}
	}
	return b.String()
}

// Headers a leg carries over from the client's request.
// Traceparent and X-Forwarded-* are set by aggregate, as forward sets them.
var aggregateForwardHeaders = []string{"X-Request-Id", "X-Consumer-Name", "X-Consumer-Groups", "Accept-Language"}

func (s *Server) fetchLeg(leg *aggLeg, uri string, fwd [][2]string, deadline time.Time) legResult {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("GET")
	req.SetRequestURI(uri)
	req.Header.Set("Accept", "application/json")
	for _, h := range fwd {
		req.Header.Set(h[0], h[1])
	}
	// services[].timeout bounds a leg as it bounds one forwarded try;
	// aggregate.timeout bounds all the legs together.
	err := leg.svc.exchange(req, resp, deadline)
	if err != nil {
		return legResult{err: err, timeout: transport.IsTimeout(err)}
	}
	body := append([]byte(nil), resp.Body()...)
	// Checked here, in the leg's goroutine, so the legs' documents are
	// checked in parallel; a target that answers is healthy all the same.
	if resp.StatusCode() < 400 && !json.Valid(body) {
		err = errNotJSON
	}
	return legResult{body: body, err: err, status: resp.StatusCode()}
}

var _ sdk.Upstream = (*service)(nil)

// Do implements sdk.Upstream: a plugin's own request to this service.
func (svc *service) Do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = svc.timeout
	}
	if timeout <= 0 {
		timeout = defaultCallTimeout
	}
	return svc.exchange(req, resp, time.Now().Add(timeout))
}

// defaultCallTimeout bounds a plugin's request to a service that has no
// timeout of its own, when the plugin gives none either.
const defaultCallTimeout = 30 * time.Second

// exchange sends req to a target of svc picked by its balancer and reads
// the whole answer into resp (at most maxAggregateLegBytes), by deadline
// or the service's timeout, whichever comes first. The target's health
// counts the outcome as a forwarded request's would. An empty Host
// becomes the target's.
func (svc *service) exchange(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	m, err := svc.p.Pick(nil, nil)
	if err != nil {
		return err
	}
	t := svc.transport(m)
	if t == nil {
		return errors.New("no transport for target")
	}
	if len(req.Header.Host()) == 0 {
		req.Header.SetHost(m.Host())
	}
	m.Begin()
	t0 := time.Now()
	if d := t0.Add(svc.timeout); svc.timeout > 0 && d.Before(deadline) {
		deadline = d
	}
	err = t.Do(req, resp, deadline)
	if err != nil {
		m.End(false, time.Since(t0))
		return err
	}
	if resp.IsBodyStream() {
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.BodyStream(), maxAggregateLegBytes+1))
		_ = resp.CloseBodyStream()
		if err == nil && len(body) > maxAggregateLegBytes {
			err = errors.New("the answer is larger than 8 MiB")
		}
		resp.SetBodyRaw(body)
	}
	m.End(err == nil && resp.StatusCode() < 500, time.Since(t0))
	return err
}
