package proxy

import (
	"net/http"
	"sync/atomic"
	"time"
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
