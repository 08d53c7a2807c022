package cache

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/weirgw/weir/internal/httpsyntax"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/sdk"
)

// OnResponse stores cacheable responses, completes revalidations, serves
// stale content on errors and invalidates after unsafe methods
// (sdk.ResponseFilter).
func (f *Filter) OnResponse(c *sdk.Ctx) error {
	v := c.Value(stateKey)
	st, ok := v.(*reqState)
	if !ok {
		if v == markInvalidate {
			f.invalidate(c)
		}
		return nil
	}
	if st.done {
		return nil
	}
	st.done = true
	resp := c.Response()
	sc := f.scope.Load()
	now := f.now().UnixNano()
	status := resp.StatusCode()
	switch {
	case status == fasthttp.StatusNotModified && st.revalidating:
		stored := f.onNotModified(c, st, sc, now)
		f.finish(sc, st, stored, now)
		f.count(c, resRevalidated)
	case st.stale != nil && isErrorStatus(status) && f.staleIfError(st.stale, &st.rcc, now):
		// RFC 5861 §4: the origin failed, the stored copy may stand in.
		if err := f.writeEntry(c, st.stale, now, xStale, conds{st.clientINM, st.clientIMS}); err == nil {
			f.finish(sc, st, false, now)
			f.count(c, resStale)
			return nil
		}
		f.finish(sc, st, false, now)
		f.count(c, resMiss)
	default:
		stored := false
		if !resp.IsBodyStream() {
			stored = f.storeResponse(c, st, sc, now)
		}
		if !stored && st.stale != nil && status >= 200 && status < 400 {
			// A newer response that cannot be stored (too large, now
			// private...) supersedes the stored one.
			sc.st.del(st.primaryOrVariant())
		}
		if stored && st.replaced && status == fasthttp.StatusOK &&
			notModified(conds{st.clientINM, st.clientIMS}, resp.Header.Peek("ETag"), lastModifiedOf(resp)) {
			// The client's validators came off the request; answer them
			// from what was just stored.
			resp.SetStatusCode(fasthttp.StatusNotModified)
			resp.ResetBody()
		}
		resp.Header.SetBytesV("X-Cache-Status", xMiss)
		f.finish(sc, st, stored, now)
		f.count(c, resMiss)
	}
	return nil
}

func (f *Filter) finish(sc *scope, st *reqState, stored bool, now int64) {
	if st.fl != nil {
		sc.flights.finish(st.flightKey(), st.fl, stored, now)
		st.fl = nil
	} else if stored {
		sc.flights.clearPass(st.flightKey())
	}
}

func isErrorStatus(s int) bool { return s == 500 || s == 502 || s == 503 || s == 504 }

// staleIfError reports whether e may answer in place of an error
// (RFC 5861 §4; never against must-revalidate, proxy-revalidate, s-maxage
// or no-cache, RFC 9111 §4.2.4).
func (f *Filter) staleIfError(e entry, rcc *reqDirectives, now int64) bool {
	if e.flags()&(eNoStale|eNoCache) != 0 || rcc.has(qNoCache) {
		return false
	}
	window := e.sie()
	if rcc.has(qSIE) && rcc.sie > window {
		window = rcc.sie
	}
	return window > 0 && e.age(now)-e.lifetime() <= window*int64(1e9)
}

func lastModifiedOf(resp *fasthttp.Response) int64 {
	if v := resp.Header.Peek("Last-Modified"); len(v) > 0 {
		if t, ok := parseHTTPDate(v, nowYear()); ok {
			return t
		}
	}
	if v := resp.Header.Peek("Date"); len(v) > 0 {
		if t, ok := parseHTTPDate(v, nowYear()); ok {
			return t
		}
	}
	return 0
}

// storeResponse stores the upstream response when RFC 9111 §3 allows it.
func (f *Filter) storeResponse(c *sdk.Ctx, st *reqState, sc *scope, now int64) bool {
	resp := c.Response()
	body := resp.Body()
	if len(body) > f.maxObject {
		return false
	}
	b := acquireBuf()
	defer releaseBuf(b)
	enc, vl, ok := f.prepare(b, &resp.Header, resp.StatusCode(), body, isAuthorized(c), st.requestTime, now)
	if !ok {
		return false
	}
	return f.commit(c, st, sc, bytes.Clone(enc), vl, now, b)
}

// onNotModified completes a revalidation: the 304's header fields update
// the stored ones (RFC 9111 §3.2, §4.3.4), the refreshed object is stored
// and answers the client (a 304 when the client's own validators match).
func (f *Filter) onNotModified(c *sdk.Ctx, st *reqState, sc *scope, now int64) bool {
	old := st.stale
	resp := c.Response()
	// A 304 rarely has a Content-Type; without this, fasthttp would report
	// its default and overwrite the stored one.
	resp.Header.SetNoDefaultContentType(true)
	b := acquireBuf()
	defer releaseBuf(b)
	b.merged = mergeHeaderBlock(b.merged[:0], old.headerBlock(), &resp.Header)
	tmp := &b.hdr
	tmp.Reset()
	tmp.SetNoDefaultContentType(true)
	stored := false
	var toServe entry = old
	if err := readHeaderBlock(tmp, b.merged); err == nil {
		enc, vl, ok := f.prepare(b, tmp, old.status(), old.body(), isAuthorized(c), st.requestTime, now)
		if len(enc) > 0 {
			// The response body will reference this slice after b is
			// recycled, and the store keeps it: it needs its own memory.
			owned := bytes.Clone(enc)
			toServe = entry(owned)
			enc = owned
		}
		if ok {
			stored = f.commit(c, st, sc, enc, vl, now, b)
		} else {
			sc.st.del(st.primaryOrVariant())
		}
	}
	if err := f.writeEntry(c, toServe, now, xRevalidated, conds{st.clientINM, st.clientIMS}); err != nil {
		// Unreachable with entries we encoded; leave the 304 as it is.
		return stored
	}
	return stored
}

// commit writes an encoded response under its key; a response that varies
// gets (or reuses) a marker at the primary key and is stored under its
// variant key. The store takes ownership of enc.
func (f *Filter) commit(c *sdk.Ctx, st *reqState, sc *scope, enc []byte, vl *varyList, now int64, b *workBuf) bool {
	e := entry(enc)
	if vl.n == 0 {
		return sc.st.set(st.key, enc, now, &st.redis) == nil
	}
	b.names = vl.appendTo(b.names[:0])
	var id uint64
	until := e.storeUntil()
	if st.marker != nil && bytes.Equal(st.marker.varyNames(), b.names) {
		id = st.marker.markerID()
		until = max(until, st.marker.storeUntil())
	} else {
		id = rand.Uint64()
	}
	m := entryMeta{kind: kindMarker, storeUntil: until, markerID: id, responseTime: now}
	marker, err := encodeEntry(nil, &m, nil, nil, b.names, nil, nil, nil)
	if err != nil {
		return false
	}
	b.key = appendVariantKey(b.key[:0], st.key, id, b.names, reqHeadersOf(c))
	if sc.st.set(b.key, enc, now, &st.redis) != nil {
		return false
	}
	if sc.st.set(st.key, marker, now, &st.redis) != nil {
		return false
	}
	return true
}

// invalidate applies RFC 9111 §4.4 after an unsafe request: on a 2xx/3xx
// the target URI and the same-host Location / Content-Location lose their
// stored responses.
func (f *Filter) invalidate(c *sdk.Ctx) {
	resp := c.Response()
	if s := resp.StatusCode(); s < 200 || s >= 400 {
		return
	}
	sc := f.scope.Load()
	b := acquireBuf()
	b.key = appendPrimaryKey(b.key[:0], c)
	sc.st.del(b.key)
	releaseBuf(b)
	host := c.Host()
	p := c.Path()
	if len(p) == 0 {
		p = c.Request().URI().Path()
	}
	for _, name := range [...]string{"Location", "Content-Location"} {
		if v := resp.Header.Peek(name); len(v) > 0 {
			if k := locationKey(v, host, p); k != nil {
				sc.st.del(k)
			}
		}
	}
}

// isAuthorized reports a request with credentials for RFC 9111 §3.5: an
// Authorization header, or a consumer identified by an auth plugin (whose
// API key or token is a credential just the same).
func isAuthorized(c *sdk.Ctx) bool {
	return len(c.Request().Header.Peek("Authorization")) > 0 || c.Consumer() != nil
}

// workBuf holds the scratch buffers of one store or refresh.
type workBuf struct {
	block  []byte
	enc    []byte
	merged []byte
	names  []byte
	key    []byte
	tags   []byte
	hdr    fasthttp.ResponseHeader
	vary   varyList
}

var bufPool = sync.Pool{New: func() any { return new(workBuf) }}

func acquireBuf() *workBuf { return bufPool.Get().(*workBuf) }

func releaseBuf(b *workBuf) {
	b.vary = varyList{}
	bufPool.Put(b)
}

// Header fields never stored (RFC 9111 §3.1: hop-by-hop fields, and the
// fields the cache computes itself).
func skipStored(k []byte) bool {
	switch len(k) {
	case 2:
		return httpsyntax.EqualFoldLower(k, "te")
	case 3:
		return httpsyntax.EqualFoldLower(k, "age")
	case 7:
		return httpsyntax.EqualFoldLower(k, "upgrade") || httpsyntax.EqualFoldLower(k, "trailer")
	case 10:
		return httpsyntax.EqualFoldLower(k, "connection") || httpsyntax.EqualFoldLower(k, "keep-alive")
	case 14:
		return httpsyntax.EqualFoldLower(k, "content-length") || httpsyntax.EqualFoldLower(k, "x-cache-status")
	case 16:
		return httpsyntax.EqualFoldLower(k, "proxy-connection")
	case 17:
		return httpsyntax.EqualFoldLower(k, "transfer-encoding")
	case 18:
		return httpsyntax.EqualFoldLower(k, "proxy-authenticate")
	case 19:
		return httpsyntax.EqualFoldLower(k, "proxy-authorization")
	case 25:
		return httpsyntax.EqualFoldLower(k, "proxy-authentication-info")
	}
	return false
}

// keptOn304 lists fields a 304 must not overwrite: they describe the
// stored representation itself (RFC 9111 §3.2; the http-cache-tests
// suite expects Content-Encoding, Content-Length, Content-Range,
// Content-MD5 and ETag to stay).
func keptOn304(k []byte) bool {
	return httpsyntax.EqualFoldLower(k, "content-encoding") || httpsyntax.EqualFoldLower(k, "content-range") ||
		httpsyntax.EqualFoldLower(k, "content-md5") || httpsyntax.EqualFoldLower(k, "etag")
}

// mergeHeaderBlock builds the header block of a stored response updated by
// a 304: every field the 304 carries replaces the stored lines of that
// name, the others stay.
func mergeHeaderBlock(dst, old []byte, h *fasthttp.ResponseHeader) []byte {
	// Status line.
	i := bytes.Index(old, crlf)
	if i < 0 {
		return append(dst, old...)
	}
	dst = append(dst, old[:i+2]...)
	lines := old[i+2:]
	for len(lines) > 2 {
		j := bytes.Index(lines, crlf)
		if j < 0 {
			break
		}
		line := lines[:j]
		lines = lines[j+2:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := line[:colon]
		if !keptOn304(name) && headerHas(h, name) {
			continue
		}
		dst = append(dst, line...)
		dst = append(dst, crlf...)
	}
	conn := connectionValue(h)
	for k, v := range h.All() {
		if skipStored(k) || keptOn304(k) || (len(conn) > 0 && listContainsFold(conn, k)) {
			continue
		}
		dst = appendHeaderLine(dst, k, v)
	}
	return append(dst, crlf...)
}

func headerHas(h *fasthttp.ResponseHeader, name []byte) bool {
	if skipStored(name) {
		return false
	}
	for k := range h.All() {
		if httpsyntax.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func connectionValue(h *fasthttp.ResponseHeader) []byte {
	for k, v := range h.All() {
		if httpsyntax.EqualFoldLower(k, "connection") {
			return v
		}
	}
	return nil
}

var crlf = []byte("\r\n")

func appendHeaderLine(dst, k, v []byte) []byte {
	dst = append(dst, k...)
	dst = append(dst, ':', ' ')
	dst = append(dst, v...)
	return append(dst, crlf...)
}

// respInfo is what one pass over a response header tells the cache.
type respInfo struct {
	cc          respDirectives
	date        int64
	dateOK      bool
	expires     int64
	expiresSeen bool
	expiresOK   bool
	lm          int64
	lmOK        bool
	lmRaw       []byte
	etag        []byte
	age         int64
	ageLines    int
	ageOK       bool
	connection  []byte
}

func analyze(ri *respInfo, h *fasthttp.ResponseHeader, year int) {
	for k, v := range h.All() {
		switch len(k) {
		case 3:
			if httpsyntax.EqualFoldLower(k, "age") {
				ri.ageLines++
				if ri.ageLines == 1 {
					ri.age, ri.ageOK = parseDelta(trimOWS(v))
				} else {
					// RFC 9111 §5.1 allows one value; several lines (or a
					// list) make it invalid, and invalid means stale.
					ri.ageOK = false
				}
			}
		case 4:
			if httpsyntax.EqualFoldLower(k, "date") && !ri.dateOK {
				ri.date, ri.dateOK = parseHTTPDate(v, year)
			} else if httpsyntax.EqualFoldLower(k, "etag") && ri.etag == nil {
				ri.etag = v
			}
		case 7:
			if httpsyntax.EqualFoldLower(k, "expires") && !ri.expiresSeen {
				ri.expiresSeen = true
				ri.expires, ri.expiresOK = parseHTTPDate(v, year)
			}
		case 10:
			if httpsyntax.EqualFoldLower(k, "connection") {
				ri.connection = v
			}
		case 13:
			if httpsyntax.EqualFoldLower(k, "cache-control") {
				parseResponseCC(&ri.cc, v)
			} else if httpsyntax.EqualFoldLower(k, "last-modified") && ri.lmRaw == nil {
				ri.lmRaw = v
				ri.lm, ri.lmOK = parseHTTPDate(v, year)
			}
		}
	}
}

// heuristicStatus lists the status codes that are heuristically cacheable
// (RFC 9110 §15.1).
func heuristicStatus(s int) bool {
	switch s {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus lists the codes whose caching rules this cache
// implements, for must-understand (RFC 9111 §5.2.2.3).
func understoodStatus(s int) bool {
	switch {
	case s >= 200 && s <= 206, s >= 300 && s <= 304, s == 307, s == 308,
		s >= 400 && s <= 417, s == 421, s == 422, s == 426, s >= 500 && s <= 505:
		return true
	}
	return false
}

// prepare decides whether a response may be stored and encodes it. It
// returns the encoding (also when not storable, so that a refreshed 304
// can still be served) and the response's Vary list. The encoding lives in
// b.enc. Each step is named after the RFC 9111 section it implements.
func (f *Filter) prepare(b *workBuf, h *fasthttp.ResponseHeader, status int, body []byte, authorized bool, reqTime, respTime int64) ([]byte, *varyList, bool) {
	var ri respInfo
	analyze(&ri, h, yearOf(respTime))
	d := &ri.cc
	respS := respTime / 1e9

	base := respS
	if ri.dateOK {
		base = ri.date
	}
	life, explicit := f.freshnessLifetime(&ri, status, base)
	corrected := correctedInitialAge(&ri, base, respS, reqTime, respTime)

	hasValidator := len(ri.etag) > 0 || ri.lmOK
	flags := entryFlags(d, hasValidator)
	windows := max(d.swr, d.sie)
	if flags&eNoStale != 0 {
		windows = 0
	}
	remaining := life*1e9 - corrected
	var until int64
	if flags&eNoCache != 0 {
		until = respTime
	} else {
		until = respTime + max(remaining, 0) + min(windows, deltaMax)*1e9
	}
	// Stale entries are kept a while longer: with a validator they can be
	// revalidated cheaply, and any of them can answer max-stale and
	// stale-if-error requests. The store's LRU bounds the cost.
	until += f.keepStale

	storable := f.mayStore(d, status, authorized, explicit, life) &&
		!(flags&eNoCache != 0 && !hasValidator) &&
		!(remaining <= 0 && !hasValidator && windows == 0)

	vl := &b.vary
	*vl = varyList{}
	parseResponseVary(vl, h, f.varyBy)
	if vl.star {
		storable = false
	}

	f.collectTags(b, h)
	if cookieKept := storedHeaderBlock(b, h, &ri, status, len(body)); cookieKept && !f.cfg.CacheSetCookie {
		// A stored Set-Cookie would be replayed to every client (README,
		// Set-Cookie). RFC 9111 §7.3 allows storing it; this cache only
		// does when configured to. A cookie the origin kept out of the
		// stored response (no-cache="Set-Cookie", private="Set-Cookie",
		// §5.2.2.4, §5.2.2.7) is no such risk.
		storable = false
	}

	var lmSec int64
	if ri.lmOK {
		lmSec = ri.lm
	}
	m := entryMeta{
		kind:                kindResponse,
		flags:               flags,
		status:              status,
		responseTime:        respTime,
		correctedInitialAge: corrected,
		lifetime:            life * 1e9,
		storeUntil:          until,
		swr:                 d.swr,
		sie:                 d.sie,
		lastModified:        lmSec,
		date:                base,
	}
	etag, lmRaw := ri.etag, ri.lmRaw
	if len(etag) > 0xffff {
		etag = nil
	}
	if len(lmRaw) > 0xffff {
		lmRaw = nil
	}
	var err error
	b.enc, err = encodeEntry(b.enc[:0], &m, etag, lmRaw, nil, b.tags, b.block, body)
	if err != nil {
		return nil, vl, false
	}
	return b.enc, vl, storable
}

// freshnessLifetime is RFC 9111 §4.2.1 for a shared cache: s-maxage, then
// max-age, then Expires - Date, else a heuristic (§4.2.2) or the
// configured default_ttl. Seconds, at most deltaMax; explicit is false for
// a heuristic or default lifetime. base is the response's Date (or the
// time it was received).
func (f *Filter) freshnessLifetime(ri *respInfo, status int, base int64) (life int64, explicit bool) {
	d := &ri.cc
	explicit = true
	switch {
	case d.has(rSMaxAge):
		life = d.sMaxAge
	case d.has(rSMaxAgeInvalid):
		life = 0
	case d.has(rMaxAge):
		life = d.maxAge
	case d.has(rMaxAgeInvalid):
		life = 0
	case ri.expiresSeen:
		if ri.expiresOK {
			life = max(ri.expires-base, 0)
		}
	default:
		explicit = false
		heuristicOK := (f.statusOK != nil && f.statusOK[status]) || (f.statusOK == nil && heuristicStatus(status)) || d.has(rPublic)
		switch {
		case heuristicOK && f.cfg.Heuristic && ri.lmOK && base > ri.lm:
			// RFC 9111 §4.2.2: a fraction (10%) of the time since the
			// last modification, bounded.
			life = min((base-ri.lm)/10, int64(heuristicMax/1e9))
		case heuristicOK && f.defaultTTL > 0:
			life = f.defaultTTL / 1e9
		}
	}
	return min(life, deltaMax), explicit
}

// correctedInitialAge is RFC 9111 §4.2.3: the larger of the apparent age
// (received - Date) and the Age header plus the response delay, in
// nanoseconds. An invalid Age makes the response stale from the start.
func correctedInitialAge(ri *respInfo, base, respS, reqTime, respTime int64) int64 {
	if ri.ageLines > 0 && !ri.ageOK {
		return deltaMax * 1e9
	}
	apparent := max(0, respS-base) * 1e9
	ageValue := min(ri.age, deltaMax) * 1e9
	return max(apparent, ageValue+max(respTime-reqTime, 0))
}

// entryFlags are the stored entry's revalidation flags: no-cache
// (§5.2.2.4), no serving stale (must-revalidate, proxy-revalidate and
// s-maxage, §5.2.2.2, §5.2.2.8, §5.2.2.10) and whether it has a validator.
func entryFlags(d *respDirectives, hasValidator bool) uint16 {
	var flags uint16
	if d.has(rNoCache) {
		flags |= eNoCache
	}
	if d.has(rMustRevalidate) || d.has(rProxyRevalidate) || d.has(rSMaxAge) {
		flags |= eNoStale
	}
	if hasValidator {
		flags |= eHasValidator
	}
	return flags
}

// mayStore is RFC 9111 §3 (storing responses in caches) for a shared
// cache, with the plugin's status_codes: the status must be final,
// understood when must-understand is given, and not refused by no-store,
// private or an Authorization the response does not allow (§3.5); without
// an explicit lifetime it must be heuristically cacheable.
func (f *Filter) mayStore(d *respDirectives, status int, authorized, explicit bool, life int64) bool {
	understood := understoodStatus(status)
	switch {
	case status < 200 || status == 206 || status == 304 || status > 999:
		return false
	case f.statusOK != nil && !f.statusOK[status]:
		return false
	case d.has(rMustUnderstand) && !understood:
		return false
	case d.has(rNoStore) && !(d.has(rMustUnderstand) && understood):
		return false
	case d.has(rPrivate):
		return false
	case authorized && !f.cfg.IgnoreAuthorization && !d.has(rPublic) && !d.has(rMustRevalidate) && !d.has(rSMaxAge):
		return false
	case !explicit && !d.has(rPublic) && life == 0 && !heuristicStatus(status):
		return false
	}
	return true
}

// collectTags gathers the surrogate keys of the tag_header into b.tags,
// space separated (none when they would not fit the entry's 64 KiB field).
func (f *Filter) collectTags(b *workBuf, h *fasthttp.ResponseHeader) {
	b.tags = b.tags[:0]
	if f.tagHeader == "" {
		return
	}
	for k, v := range h.All() {
		if httpsyntax.EqualFold(k, s2b(f.tagHeader)) {
			if len(b.tags) > 0 {
				b.tags = append(b.tags, ' ')
			}
			b.tags = append(b.tags, v...)
		}
	}
	if len(b.tags) > 0xffff {
		b.tags = b.tags[:0]
	}
}

// storedHeaderBlock writes the header block to store into b.block, RFC
// 9111 §3.1: without hop-by-hop fields and those named by Connection,
// no-cache="..." or private="..." (§5.2.2.4, §5.2.2.7), with the
// Content-Length of the stored body. It reports whether a Set-Cookie was
// kept.
func storedHeaderBlock(b *workBuf, h *fasthttp.ResponseHeader, ri *respInfo, status, bodyLen int) (cookieKept bool) {
	d := &ri.cc
	b.block = appendStatusLine(b.block[:0], status)
	for k, v := range h.All() {
		if skipStored(k) {
			continue
		}
		if len(ri.connection) > 0 && listContainsFold(ri.connection, k) {
			continue
		}
		if d.has(rNoCacheFields) && listContainsFold(d.noCacheFields, k) {
			continue
		}
		if d.has(rPrivateFields) && listContainsFold(d.privateFields, k) {
			continue
		}
		if len(k) == 10 && httpsyntax.EqualFoldLower(k, "set-cookie") {
			cookieKept = true
		}
		b.block = appendHeaderLine(b.block, k, v)
	}
	if status >= 200 && status != 204 && status != 304 {
		b.block = append(b.block, "Content-Length: "...)
		b.block = strconv.AppendInt(b.block, int64(bodyLen), 10)
		b.block = append(b.block, crlf...)
	}
	b.block = append(b.block, crlf...)
	return cookieKept
}

func appendStatusLine(dst []byte, status int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, fasthttp.StatusMessage(status)...)
	return append(dst, crlf...)
}
