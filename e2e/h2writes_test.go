//lint:file-ignore SA1019 raw frames need x/net/http2's Framer (RATIONALE.md)

package e2e

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// procSyscw is the process's write(2)-family calls so far (/proc/PID/io:
// write, writev; the upstream leg's sendto is not among them).
func procSyscw(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		t.Skipf("no /proc/%d/io: %v", pid, err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Skip("no syscw in /proc/PID/io")
	return 0
}

// TestHTTP2AnswersCoalesced: answers the gateway has ready at about the
// same time leave in few writes. 50 streams sent in one burst on one h2c
// connection are all answered 200 with far fewer write(2) calls than
// answers: a server that flushes a stream's HEADERS and its DATA each on
// their own makes about two writes per answer; Weir's sends the frames
// ready together in one write.
func TestHTTP2AnswersCoalesced(t *testing.T) {
	up := startEcho(t, "coalesce")
	w := startWeir(t, echoCfg(up, `{address: "{{LISTEN}}", http2: true}`))
	h := dialH2(t, w.Addr, 0)
	const streams = 50
	base := uint32(1) // the next stream ID
	run := func() {
		t.Helper()
		// All HEADERS frames in one write from the client.
		var burst bytes.Buffer
		fr := http2.NewFramer(&burst, nil)
		for i := range uint32(streams) {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: base + 2*i, BlockFragment: h2Block(w.Addr, "/c"), EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.c.Write(burst.Bytes()); err != nil {
			t.Fatal(err)
		}
		_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		ok, ended := 0, 0
		for ended < streams {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("after %d of %d answers: %v\n%s", ended, streams, err, w.Logs())
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = h.fr.WriteSettingsAck()
				}
			case *http2.MetaHeadersFrame:
				if f.PseudoValue("status") == "200" {
					ok++
				}
				if f.StreamEnded() {
					ended++
				}
			case *http2.DataFrame:
				if f.StreamEnded() {
					ended++
				}
				if n := len(f.Data()); n > 0 {
					_ = h.fr.WriteWindowUpdate(0, uint32(n))
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				t.Fatalf("got %v\n%s", f, w.Logs())
			}
		}
		base += 2 * streams
		if ok != streams {
			t.Fatalf("%d of %d answers were 200", ok, streams)
		}
	}
	run() // the upstream connections, the server's SETTINGS
	pid := w.cmd.Process.Pid
	before := procSyscw(t, pid)
	run()
	per := float64(procSyscw(t, pid)-before) / streams
	t.Logf("%.2f writes per answer", per)
	if per > 0.8 {
		t.Fatalf("%.2f write(2) calls per answer for %d answers in one burst; want well under 1 (frames ready together leave together)", per, streams)
	}
}
