package wasm

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/httpsyntax"
	"github.com/weirgw/weir/sdk"
)

// HTTP callouts (proxy_http_call) and pause/resume.
//
// A guest calls a Weir service by name from an HTTP callback; the call
// goes out at once, on its own goroutine, through the service's balancer
// and pool (sdk.Upstream). When the callback that made it returns Pause,
// or while calls are in flight, the request waits in settle, without
// holding the instance: each answer is delivered by
// proxy_on_http_call_response(root context, token, headers, body size,
// trailers) in the instance that holds the request's context, where the
// guest reads it (map 6 and 7, buffer 4) and may resume the request
// (proxy_continue_stream), answer it (proxy_send_local_response) or call
// again. The request goes on, to the next callback or upstream, when it
// is resumed or answered, or, if it was never paused, when its calls
// have all answered.

// maxCallouts bounds the calls one request may have in flight.
const maxCallouts = 64

// callout is one proxy_http_call in flight or answered.
type callout struct {
	token uint32
	req   *fasthttp.Request
	resp  *fasthttp.Response
	err   error
	code  []byte // :status, formatted once
}

var errPaused = errors.New("wasm: the guest paused the request (returned Pause) and nothing resumed it")

// hostHTTPCall is proxy_http_call (and proxy_dispatch_http_call, its ABI
// 0.1.0 name): upstream name, headers, body, trailers, timeout in ms and
// the slot for the call's token.
func hostHTTPCall(in *instance, s []uint64) status {
	name, ok1 := in.read(u32(s, 0), u32(s, 1))
	hdrs, ok2 := in.read(u32(s, 2), u32(s, 3))
	body, ok3 := in.read(u32(s, 4), u32(s, 5))
	_, ok4 := in.read(u32(s, 6), u32(s, 7)) // trailers: checked; an HTTP/1.1 request with a Content-Length carries none
	if !ok1 || !ok2 || !ok3 || !ok4 || !in.returnSlot(u32(s, 9)) {
		return statusInvalidMemoryAccess
	}
	rs := in.rs
	root := in.phase == phaseRoot
	switch {
	case in.phase == phaseLog || in.f.upstream == nil:
		return statusBadArgument // the request is over, or no proxy
	case root && (!in.f.started.Load() || in.slot == nil):
		// Start-up of a plugin not serving yet (weir validate, a config
		// being checked): nothing may leave the gateway.
		return statusBadArgument
	case root && in.rootPending >= maxCallouts, !root && rs.pending >= maxCallouts:
		return statusInternalFailure
	}
	up := in.f.upstream(string(name))
	if up == nil {
		return statusBadArgument // Envoy's answer for an unknown cluster
	}
	p, err := parsePairs(hdrs)
	if err != nil {
		return statusBadArgument
	}
	req := fasthttp.AcquireRequest()
	var method, path, authority bool
	for {
		k, v, ok := p.next()
		if !ok {
			break
		}
		switch {
		case bytes.Equal(k, keyMethod):
			method = len(v) > 0 && httpsyntax.IsTokenBytes(v)
			req.Header.SetMethodBytes(v)
		case bytes.Equal(k, keyPath):
			path = len(v) > 0 && v[0] == '/' && httpsyntax.ValidFieldValueBytes(v)
			req.SetRequestURIBytes(v)
		case bytes.Equal(k, keyAuthority):
			authority = httpsyntax.ValidFieldValueBytes(v)
			req.Header.SetHostBytes(v)
		case len(k) > 0 && k[0] == ':', isHost(k), isFraming(k):
			// :scheme and other pseudo-headers; Host is :authority; the
			// gateway frames the body.
		case !httpsyntax.IsTokenBytes(k) || !httpsyntax.ValidFieldValueBytes(v):
			fasthttp.ReleaseRequest(req)
			return statusBadArgument
		default:
			req.Header.AddBytesKV(k, v)
		}
	}
	if !method || !path || !authority {
		// Envoy requires all three.
		fasthttp.ReleaseRequest(req)
		return statusBadArgument
	}
	if len(body) > 0 {
		req.SetBody(body)
	}
	in.nextToken++
	co := &callout{token: in.nextToken, req: req, resp: fasthttp.AcquireResponse()}
	timeout := time.Duration(u32(s, 8)) * time.Millisecond
	in.mem.WriteUint32Le(u32(s, 9), co.token)
	if root {
		in.rootPending++
		go func() {
			co.err = up.Do(co.req, co.resp, timeout)
			in.f.deliverRoot(in, co)
		}()
		return statusOK
	}
	if rs.done == nil {
		rs.done = make(chan *callout, maxCallouts)
	}
	rs.pending++
	done := rs.done
	go func() {
		co.err = up.Do(co.req, co.resp, timeout)
		done <- co
	}()
	return statusOK
}

// deliverRoot hands the answer to a call made from the root context
// (proxy_on_tick, proxy_on_queue_ready, an answer to another root call)
// to proxy_on_http_call_response in the instance that made it, once that
// instance is free; if the instance was discarded or the plugin closed
// since, the answer is dropped.
func (f *filter) deliverRoot(in *instance, co *callout) {
	s := in.slot
	s.mu.Lock()
	if s.inst != in || in.spent {
		s.mu.Unlock()
		fasthttp.ReleaseRequest(co.req)
		fasthttp.ReleaseResponse(co.resp)
		return
	}
	in.rootPending--
	in.begin(&in.rootCalls, nil, phaseRoot)
	err := f.deliver(in, &in.rootCalls, co)
	in.end()
	s.release()
	if err != nil {
		f.errors.Inc()
		f.log.Error("wasm HTTP call answer to the root context failed", "error", err)
	}
}

// settle is called after each HTTP callback, with the slot locked and
// the instance prepared for rs (begin). When the callback continued and
// made no call it returns at once. Otherwise it releases the slot, waits
// for the calls' answers and delivers each with
// proxy_on_http_call_response, until the request is resumed or answered
// (paused), or its calls have all answered (not paused). It always
// returns with the slot locked again; with the instance prepared for rs
// unless it returns an error.
func (f *filter) settle(s *slot, in *instance, rs *reqState, c *sdk.Ctx, ph phase, action uint32) error {
	if (action == actionContinue && rs.pending == 0) || rs.local {
		return nil
	}
	paused := action != actionContinue
	rs.resumed = false
	if rs.done == nil {
		rs.done = make(chan *callout, maxCallouts)
	}
	wait := time.Duration(0)
	if paused {
		if in.paused == nil {
			in.paused = map[uint32]*reqState{}
		}
		in.paused[rs.id] = rs
		wait = in.pauseWait()
	}
	in.end()
	s.release()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var co *callout
		switch {
		case rs.pending > 0:
			co = <-rs.done // each call is bounded by its own deadline (sdk.Upstream.Do)
		case paused && wait > 0:
			// Nothing in flight: only a tick can resume the request.
			if timer == nil {
				timer = time.NewTimer(wait)
			}
			select {
			case co = <-rs.done: // nil: a wake from resumeCurrent
			case <-timer.C:
				s.mu.Lock()
				return f.stuck(s, rs, c)
			}
		default:
			s.mu.Lock()
			if paused {
				return f.stuck(s, rs, c)
			}
			if s.inst != rs.inst {
				return errSpent
			}
			in.begin(rs, c, ph)
			return nil
		}
		s.mu.Lock()
		if s.inst != rs.inst {
			return errSpent
		}
		in.begin(rs, c, ph)
		if co != nil {
			rs.pending--
			if err := f.deliver(in, rs, co); err != nil {
				return err
			}
		}
		if rs.local || rs.resumed {
			// Answers still in flight are dropped: the request has moved on.
			delete(in.paused, rs.id)
			rs.pending, rs.done = 0, nil
			return nil
		}
		in.end()
		s.release()
	}
}

// stuck fails a request that stayed paused with nothing that resumed
// it. s is locked.
func (f *filter) stuck(s *slot, rs *reqState, c *sdk.Ctx) error {
	if in := s.inst; in == rs.inst && in != nil {
		delete(in.paused, rs.id)
	}
	if f.pauseWarn.CompareAndSwap(false, true) {
		f.log.Warn("the wasm guest paused a request and nothing resumed it; the request fails (500)", "request_id", string(c.RequestID()))
	}
	return errPaused
}

// deliver runs proxy_on_http_call_response for co in in, then releases
// co's request and response.
func (f *filter) deliver(in *instance, rs *reqState, co *callout) error {
	defer func() {
		fasthttp.ReleaseRequest(co.req)
		fasthttp.ReleaseResponse(co.resp)
	}()
	if in.onHTTPCallResponse == nil {
		return nil
	}
	if co.err != nil {
		if in.c != nil {
			f.log.Warn("wasm HTTP call failed", "request_id", string(in.c.RequestID()), "error", co.err)
		} else {
			f.log.Warn("wasm HTTP call failed", "error", co.err)
		}
	}
	rs.answer = co
	defer func() { rs.answer = nil }()
	var nh, nt, size uint64
	if co.err == nil {
		h, _ := in.answerPairs(mapHTTPCallResponseHeaders)
		nh = uint64(len(h))
		t, _ := in.answerPairs(mapHTTPCallResponseTrailers)
		nt = uint64(len(t))
		size = uint64(len(co.resp.Body()))
	}
	_, err := in.call5(in.onHTTPCallResponse, "proxy_on_http_call_response", f.s.timeout, rootContextID, uint64(co.token), nh, size, nt)
	return err
}

// answerPairs lists the current call answer's headers (map 6, with
// :status) or trailers (map 7). Without an answer being delivered the
// maps do not exist (NOT_FOUND); a call that failed has empty ones.
func (in *instance) answerPairs(m uint32) ([]kv, status) {
	if in.rs == nil || in.rs.answer == nil {
		return nil, statusNotFound
	}
	co := in.rs.answer
	kvs := in.kvs[:0]
	if co.err == nil {
		h := &co.resp.Header
		trailers := h.PeekTrailerKeys()
		if m == mapHTTPCallResponseHeaders {
			if co.code == nil {
				co.code = strconv.AppendInt(nil, int64(co.resp.StatusCode()), 10)
			}
			kvs = append(kvs, kv{keyStatus, co.code})
		}
		for k, v := range h.All() {
			if isTrailer(trailers, k) == (m == mapHTTPCallResponseTrailers) {
				kvs = append(kvs, kv{k, v})
			}
		}
	}
	in.kvs = kvs
	return kvs, statusOK
}

func isTrailer(trailers [][]byte, k []byte) bool {
	for _, t := range trailers {
		if bytes.EqualFold(t, k) {
			return true
		}
	}
	return false
}

// mapPairs is headerPairs extended with the call answer's maps.
func (in *instance) mapPairs(m uint32) ([]kv, status) {
	if m == mapHTTPCallResponseHeaders || m == mapHTTPCallResponseTrailers {
		return in.answerPairs(m)
	}
	return in.headerPairs(m)
}

// mapValue is headerValue extended with the call answer's maps.
func (in *instance) mapValue(m uint32, key []byte) ([]byte, status) {
	if m != mapHTTPCallResponseHeaders && m != mapHTTPCallResponseTrailers {
		return in.headerValue(m, key)
	}
	kvs, st := in.answerPairs(m)
	if st != statusOK {
		return nil, st
	}
	j := in.pseudo[pseudoJoin][:0]
	found := false
	for _, p := range kvs {
		if bytes.EqualFold(p.k, key) {
			if found {
				j = append(j, ',')
			}
			j, found = append(j, p.v...), true
		}
	}
	in.pseudo[pseudoJoin] = j
	if !found {
		return nil, statusNotFound
	}
	return j, statusOK
}
