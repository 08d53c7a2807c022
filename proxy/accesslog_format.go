package proxy

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/weirgw/weir/internal/jsonesc"
	"github.com/weirgw/weir/proxy/config"
	"github.com/weirgw/weir/sdk"
)

// Formatting of access-log lines. Every value a client or an upstream
// chose (path, host, user agent, referer, request ID, plugin fields) is
// escaped so that it cannot end the line or the value early: JSON string
// escaping in the json format, nginx's \xHH escaping of quotes,
// backslashes, control and non-ASCII bytes in the combined format.

const combinedTime = "02/Jan/2006:15:04:05 -0700"

var (
	logFieldCache     = config.AccessLogFields[fCache]
	logFieldRatelimit = config.AccessLogFields[fRatelimit]
)

func (al *accessLog) appendJSON(b []byte, s *Server, c *sdk.Ctx, st *reqState, status int, total, upstream time.Duration) []byte {
	rc := c.RequestCtx()
	h := &rc.Request.Header
	b = append(b, '{')
	for i, f := range al.fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(append(b, '"'), config.AccessLogFields[f]...), '"', ':')
		switch f {
		case fTime:
			b = append(appendJSONTime(append(b, '"'), c.Start), '"')
		case fRequestID:
			b = appendJSONString(b, c.RequestID())
		case fClientIP:
			b = append(s.appendLogClientIP(append(b, '"'), c), '"')
		case fMethod:
			b = appendJSONString(b, h.Method())
		case fHost:
			b = appendJSONString(b, c.Host())
		case fPath:
			st.tmp = appendLogPath(st.tmp[:0], c)
			b = appendJSONString(b, st.tmp)
		case fStatus:
			b = strconv.AppendInt(b, int64(status), 10)
		case fBytesSent:
			if n := bytesSent(&rc.Response); n >= 0 {
				b = strconv.AppendInt(b, int64(n), 10)
			} else {
				b = append(b, "null"...)
			}
		case fDurationMs:
			b = appendMs(b, total)
		case fUpstreamMs:
			b = appendMs(b, upstream)
		case fRoute:
			b = appendJSONString(b, c.Route)
		case fService:
			b = appendJSONString(b, c.Service)
		case fTarget:
			b = appendJSONString(b, st.target)
		case fConsumer:
			name := ""
			if cons := c.Consumer(); cons != nil {
				name = cons.Name
			}
			b = appendJSONString(b, name)
		case fUserAgent:
			b = appendJSONString(b, h.UserAgent())
		case fReferer:
			b = appendJSONString(b, h.Referer())
		case fCache:
			b = appendJSONString(b, c.LogField(logFieldCache))
		case fRatelimit:
			b = appendJSONString(b, c.LogField(logFieldRatelimit))
		}
	}
	// Fields plugins added; a built-in name is the built-in field's,
	// written above when fields lists it.
	for i := 0; i < c.NumLogFields(); i++ {
		name, v := c.LogFieldAt(i)
		if slices.Contains(config.AccessLogFields, name) {
			continue
		}
		b = append(appendJSONString(append(b, ','), name), ':')
		b = appendJSONString(b, v)
	}
	return append(b, '}', '\n')
}

// appendCombined writes the Apache/nginx combined format:
//
//	client - user [time] "METHOD path PROTO" status bytes "referer" "user agent"
//
// with the consumer's name as user.
func appendCombined(b []byte, s *Server, c *sdk.Ctx, st *reqState, status int) []byte {
	rc := c.RequestCtx()
	h := &rc.Request.Header
	b = append(s.appendLogClientIP(b, c), " - "...)
	if cons := c.Consumer(); cons != nil && cons.Name != "" {
		b = appendCombinedEscaped(b, cons.Name)
	} else {
		b = append(b, '-')
	}
	b = append(appendCombinedTime(append(b, " ["...), c.Start), "] \""...)
	b = appendCombinedEscaped(b, h.Method())
	b = append(b, ' ')
	st.tmp = appendLogPath(st.tmp[:0], c)
	b = appendCombinedEscaped(b, st.tmp)
	b = append(b, ' ')
	b = appendCombinedEscaped(b, h.Protocol())
	b = append(strconv.AppendInt(append(b, "\" "...), int64(status), 10), ' ')
	if n := bytesSent(&rc.Response); n > 0 {
		b = strconv.AppendInt(b, int64(n), 10)
	} else {
		b = append(b, '-')
	}
	b = appendCombinedQuoted(append(b, ' '), h.Referer())
	b = appendCombinedQuoted(append(b, ' '), h.UserAgent())
	return append(b, '\n')
}

// appendLogPath is the path the router matched (normalized) and the query
// string as the client sent it; the raw request target when the path was
// refused before it was read.
func appendLogPath(b []byte, c *sdk.Ctx) []byte {
	rc := c.RequestCtx()
	p := c.Path()
	if len(p) == 0 {
		return append(b, rc.Request.Header.RequestURI()...)
	}
	b = append(b, p...)
	// The query as the client sent it: forward keeps it on the request
	// line it rewrites, and reading it there spares parsing the URI again.
	if uri := rc.Request.Header.RequestURI(); len(uri) > 0 {
		if i := bytes.IndexByte(uri, '?'); i >= 0 && i+1 < len(uri) {
			b = append(b, uri[i:]...)
		}
	}
	return b
}

// timeCache holds one second's formatted time, so that the requests of
// that second copy it instead of formatting it again.
type timeCache struct {
	sec int64
	b   []byte
}

var jsonSecond, combinedSecond atomic.Pointer[timeCache]

// appendJSONTime writes t in UTC as 2006-01-02T15:04:05.000Z.
func appendJSONTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	tc := jsonSecond.Load()
	if tc == nil || tc.sec != sec {
		tc = &timeCache{sec: sec, b: t.UTC().AppendFormat(nil, "2006-01-02T15:04:05")}
		jsonSecond.Store(tc)
	}
	ms := t.Nanosecond() / 1e6
	return append(append(b, tc.b...), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// appendCombinedTime writes t in local time as 02/Jan/2006:15:04:05 -0700.
func appendCombinedTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	tc := combinedSecond.Load()
	if tc == nil || tc.sec != sec {
		tc = &timeCache{sec: sec, b: t.AppendFormat(nil, combinedTime)}
		combinedSecond.Store(tc)
	}
	return append(b, tc.b...)
}

// bytesSent is the size of the response body, -1 when a streamed body's
// length is not known in advance.
func bytesSent(resp *fasthttp.Response) int {
	if resp.IsBodyStream() {
		return max(resp.Header.ContentLength(), -1)
	}
	return len(resp.Body())
}

// appendMs writes d in milliseconds with microsecond precision.
func appendMs(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// appendJSONString writes v as a JSON string (package jsonesc): any
// bytes give one valid JSON value on one line.
func appendJSONString[T string | []byte](b []byte, v T) []byte { return jsonesc.Append(b, v) }

// appendCombinedQuoted writes v in double quotes, "-" when it is empty.
func appendCombinedQuoted(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, `"-"`...)
	}
	return append(appendCombinedEscaped(append(b, '"'), v), '"')
}

// appendCombinedEscaped writes v with nginx's access-log escaping
// (ngx_escape_html's NGX_ESCAPE_LOG): '"', '\' and bytes below 0x20 or
// from 0x7f up become \xHH, so a value cannot close its quotes or start a
// line.
func appendCombinedEscaped[T string | []byte](b []byte, v T) []byte {
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' {
			b = append(b, '\\', 'x', hexDigits[ch>>4], hexDigits[ch&0xf])
			continue
		}
		b = append(b, ch)
	}
	return b
}

// appendLogClientIP writes the client's address: the connection's peer,
// or, when the peer is one of server.trusted_proxies, the right-most
// X-Forwarded-For entry that is not (a chain of trusted proxies is
// walked back to the first address nobody trusted vouches for).
func (s *Server) appendLogClientIP(dst []byte, c *sdk.Ctx) []byte {
	ip := c.ClientIP()
	nets := s.trusted.Load()
	if nets == nil || len(*nets) == 0 || !inPrefixes(*nets, ip) {
		return ip.AppendTo(dst)
	}
	xff := c.Request().Header.Peek("X-Forwarded-For")
	for len(xff) > 0 {
		part := xff
		if i := bytes.LastIndexByte(xff, ','); i >= 0 {
			part, xff = xff[i+1:], xff[:i]
		} else {
			xff = nil
		}
		a, err := netip.ParseAddr(b2s(bytes.TrimSpace(part)))
		if err != nil {
			break // garbled: the last address read stands
		}
		ip = a.Unmap()
		if !inPrefixes(*nets, ip) {
			break
		}
	}
	return ip.AppendTo(dst)
}

func inPrefixes(nets []netip.Prefix, ip netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
