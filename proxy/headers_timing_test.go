package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

func typicalRequestHeader() *fasthttp.RequestHeader {
	var h fasthttp.RequestHeader
	h.SetMethod("GET")
	h.SetRequestURI("/users/42")
	h.SetHost("api.example.com")
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	h.Set("Accept", "application/json")
	h.Set("Accept-Encoding", "gzip, deflate, br")
	h.Set("Accept-Language", "en-US,en;q=0.9")
	h.Set("Authorization", "Bearer abc.def.ghi")
	h.Set("X-Request-Id", "0af7651916cd43dd8448eb211c80319c")
	h.Set("Cookie", "session=abc; theme=dark")
	return &h
}

// BenchmarkHeaderHygiene compares the two ways of making a typical request
// (no hop-by-hop or protected fields) safe to forward: deleting every
// listed name unconditionally, and one scan that deletes only what is
// there. `benchstat -col /impl` shows the gain.
func BenchmarkHeaderHygiene(b *testing.B) {
	h := typicalRequestHeader()
	b.Run("impl=del", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, k := range protectedRequestHeaders {
				h.Del(k)
			}
			removeHopByHop(h)
		}
	})
	b.Run("impl=scan", func(b *testing.B) {
		b.ReportAllocs()
		var sc fieldScan
		for i := 0; i < b.N; i++ {
			if sc.scan(h.All()); sc.flags != 0 {
				for _, k := range protectedRequestHeaders {
					h.Del(k)
				}
				removeHopByHop(h)
			}
		}
	})
}

func TestScanHeadersFindsEveryKind(t *testing.T) {
	for name, want := range map[string]hdrFlags{
		"Connection": hasHopByHop, "keep-alive": hasHopByHop, "TE": hasHopByHop, "Trailer": hasHopByHop,
		"Upgrade": hasHopByHop | hasUpgrade, "upgrade": hasHopByHop | hasUpgrade, "Proxy-Connection": hasHopByHop, "Proxy-Authorization": hasHopByHop,
		"Proxy-Authenticate": hasHopByHop, "X-Consumer-Name": hasProtected, "x-consumer-groups": hasProtected,
		"X_Consumer_Name": hasTwin | hasUnderscore, "X_Other": hasUnderscore, "X A": hasBadName,
		"Authorization": 0, "Date": 0, "Dat_": hasUnderscore, "X-Other": 0,
	} {
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		h.Set(name, "v")
		var sc fieldScan
		if sc.scan(h.All()); sc.flags != want {
			t.Errorf("%s: flags %b, want %b", name, sc.flags, want)
		}
	}
}

func TestScanHeadersFindsARepeatedAuthorization(t *testing.T) {
	var h fasthttp.RequestHeader
	h.Add("Authorization", "a")
	var sc fieldScan
	if sc.scan(h.All()); sc.flags&hasAuthTwice != 0 {
		t.Fatalf("one Authorization: flags %b", sc.flags)
	}
	h.Add("authorization", "b")
	if sc.scan(h.All()); sc.flags&hasAuthTwice == 0 {
		t.Fatalf("two Authorization: flags %b", sc.flags)
	}
}

func TestFieldScanCapturesValues(t *testing.T) {
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	h.Add("x-request-id", "id-1")
	h.Add("X-Forwarded-For", "10.0.0.1")
	h.Add("X-Forwarded-For", "10.0.0.2") // the first wins, as with Peek
	h.Add("TRACEPARENT", "tp")
	h.Add("Date", "d")
	h.Add("Connection", "x")
	var sc fieldScan
	sc.scan(h.All())
	if string(sc.requestID) != "id-1" || string(sc.xff) != "10.0.0.1" || string(sc.trace) != "tp" ||
		!sc.dated || sc.flags != hasHopByHop|hasXFF|hasTrace {
		t.Fatalf("scan = %+v", sc)
	}
	// Presence is told apart from an empty value; the forwarding fields
	// the gateway sets are all noticed, whatever their case.
	var h3 fasthttp.RequestHeader
	h3.DisableNormalizing()
	h3.Add("x-forwarded-for", "")
	h3.Add("X-FORWARDED-PROTO", "https")
	h3.Add("x-forwarded-host", "h")
	h3.Add("traceparent", "")
	sc.scan(h3.All())
	if sc.flags != hasXFF|hasXFP|hasXFH|hasTrace || len(sc.xff) != 0 || len(sc.trace) != 0 {
		t.Fatalf("presence: %+v", sc)
	}
	// A second scan starts afresh.
	var h2 fasthttp.RequestHeader
	sc.scan(h2.All())
	if sc.requestID != nil || sc.xff != nil || sc.trace != nil || sc.dated || sc.flags != 0 {
		t.Fatalf("stale values after a rescan: %+v", sc)
	}
}
