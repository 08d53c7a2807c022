package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReloadsRunOneAtATime: an edit followed by a SIGHUP wakes two
// reloaders, the file watcher (watchSettle after the edit's event) and
// the signal. At 10,000 routes a reload takes long enough that, sent
// about when the watcher wakes, the two overlapped: two applies of one
// edit raced on the file's last content, and the second took the first
// one's config for an admin change and warned that it dropped it.
// Reloads now hold one lock. Each round writes a new version, sends
// SIGHUP 60-140 ms later (around the watcher's wake-up) and waits until
// the version answers; then no "admin changes are dropped" warning may
// appear (there was no admin change), every apply must be of a version
// written (at most two applies, watcher and signal, per version), and
// the last version answers.
func TestReloadsRunOneAtATime(t *testing.T) {
	up := startEcho(t, "lock")
	w := startWeir(t, scaleConfig(up, scaleRoutes, 0))
	c := &http.Client{Timeout: 5 * time.Second}
	const rounds = 24
	for gen := 1; gen <= rounds; gen++ {
		w.write(scaleConfig(up, scaleRoutes, gen))
		time.Sleep(time.Duration(60+(gen*37)%81) * time.Millisecond)
		hupUntilGen(t, w, c, gen)
		// Let the watcher's reload of this version, if any, finish
		// before the next edit.
		time.Sleep(250 * time.Millisecond)
	}
	logs := w.Logs()
	if n := strings.Count(logs, "these admin changes are dropped"); n > 0 {
		t.Errorf("%d false warnings of dropped admin changes (no admin change was made): two reloads ran at once", n)
	}
	applies := strings.Count(logs, `"msg":"config applied"`) // reloads only: start-up logs none
	t.Logf("%d versions written, %d applied reloads", rounds, applies)
	if applies < rounds || applies > 2*rounds {
		t.Errorf("%d applies for %d versions, want %d to %d", applies, rounds, rounds, 2*rounds)
	}
	if got := routeGen(c, w.Addr); got != strconv.Itoa(rounds) {
		t.Errorf("route 0 answers X-Gen %q after the last reload, want %d", got, rounds)
	}
}
