package sdk

// DeferredLogFilter is a LogFilter whose OnLog only observes the request
// (access logs, scripts' log functions): the proxy runs it after the
// response has been handed to the connection, off the request's time, on
// a copy of the Ctx made by CopyForLog. What the copy holds is listed
// there; a change OnLog makes to it reaches nobody. Under overload (the
// log queue full) the call is skipped and counted in
// weir_log_phase_dropped_total, so OnLog must not be needed to release
// anything — a filter that recycles per-request state in OnLog stays a
// plain LogFilter, which runs on the request's goroutine.
type DeferredLogFilter interface {
	LogFilter
	// DeferLog marks the filter; it is never called.
	DeferLog()
}

// CopyForLog copies into dst, a Ctx acquired on a RequestCtx of its own,
// what a deferred log phase may read of c: the request's method, URI and
// headers (not its body), the response's status and headers (not its
// body), the route and service, Start, the request ID, the normalized and
// upstream paths, the path parameters, the consumer, credential and
// scopes, the client IP, the access-log fields plugins set (SetLogField)
// and the stored values (shallow: a value must not
// be changed once the request is over).
func (c *Ctx) CopyForLog(dst *Ctx) {
	c.rc.Request.Header.CopyTo(&dst.rc.Request.Header)
	c.rc.Response.Header.CopyTo(&dst.rc.Response.Header)
	dst.Route, dst.Service, dst.Start = c.Route, c.Service, c.Start
	dst.requestID = append(dst.requestID[:0], c.requestID...)
	dst.path = append(dst.path[:0], c.path...)
	dst.upstreamPath = append(dst.upstreamPath[:0], c.upstreamPath...)
	dst.upstreamSet = c.upstreamSet
	// Parameter values are views into the request's buffers: copy them
	// into one buffer of dst's own, then point at it.
	dst.scratch = dst.scratch[:0]
	for i := 0; i < c.nparams; i++ {
		dst.scratch = append(dst.scratch, c.params[i].Value...)
	}
	off := 0
	for i := 0; i < c.nparams; i++ {
		n := len(c.params[i].Value)
		dst.params[i] = Param{Name: c.params[i].Name, Value: dst.scratch[off : off+n : off+n]}
		off += n
	}
	dst.nparams = c.nparams
	dst.consumer, dst.credential = c.consumer, c.credential
	dst.scopes = append(dst.scopes[:0], c.scopes...)
	dst.clientIP, dst.clientIPSet = c.ClientIP(), true
	copy(dst.values[:], c.values[:c.nvalues])
	dst.nvalues = c.nvalues
	dst.stopped = c.stopped
	dst.logBuf = append(dst.logBuf[:0], c.logBuf...)
	dst.logFields = c.logFields
	dst.nlogFields = c.nlogFields
}
