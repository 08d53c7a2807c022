package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

type cachedDate struct {
	unix int64
	text []byte
}

var dateCache atomic.Pointer[cachedDate]

// httpDate is the current time in IMF-fixdate form, formatted at most once
// a second (the returned slice must not be modified).
func httpDate() []byte {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &cachedDate{unix: now, text: time.Unix(now, 0).UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

// addDate gives h a Date field. fasthttp refuses Date through its setters
// ("managed automatically") and, with Server.NoDefaultDate (needed so an
// upstream's Date is forwarded, not replaced), adds none itself; so the
// header block is re-read with the field inserted. Only the gateway's own
// answers (errors, preflights, aggregates) take this path. No allocation
// once the per-request buffers are warm.
func addDate(h *fasthttp.ResponseHeader, st *reqState) {
	st.hdr = h.AppendBytes(st.hdr[:0])
	i := bytes.Index(st.hdr, []byte("\r\n"))
	if i < 0 {
		return
	}
	i += 2
	// A header that was Reset (sdk.WriteError does, for most gateway
	// answers) has fasthttp's own Date back: it comes right after the
	// status line (and Server), and nothing needs re-reading.
	if hasDateLine(st.hdr[i:]) {
		return
	}
	n := len(st.hdr)
	line := httpDate()
	extra := len("Date: ") + len(line) + 2
	st.hdr = append(st.hdr, make([]byte, extra)...)
	copy(st.hdr[i+extra:], st.hdr[i:n])
	j := i
	j += copy(st.hdr[j:], "Date: ")
	j += copy(st.hdr[j:], line)
	copy(st.hdr[j:], "\r\n")
	st.hdrR.Reset(st.hdr)
	if st.hdrBR == nil {
		st.hdrBR = bufio.NewReaderSize(&st.hdrR, 4096)
	} else {
		st.hdrBR.Reset(&st.hdrR)
	}
	cl, keepAlive := h.ContentLength(), !h.ConnectionClose()
	if err := h.Read(st.hdrBR); err == nil {
		// The block carries no Content-Length (fasthttp writes it with the
		// body), so the parser takes the answer for one that ends when the
		// connection does and marks it Connection: close. That was true of
		// none of these answers: restore the framing and the keep-alive
		// they had, so that a 404 or a 429 does not cost the client its
		// connection.
		h.SetContentLength(cl)
		if keepAlive {
			h.ResetConnectionClose()
		}
	}
}

// hasDateLine reports whether the header lines in b (after the status
// line) start with a Date field, or with Server and then Date: where
// fasthttp's AppendBytes writes its own when the header asks for it.
func hasDateLine(b []byte) bool {
	if bytes.HasPrefix(b, []byte("Server: ")) {
		j := bytes.Index(b, []byte("\r\n"))
		if j < 0 {
			return false
		}
		b = b[j+2:]
	}
	return bytes.HasPrefix(b, []byte("Date: "))
}
