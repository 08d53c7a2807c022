//go:build race

package proxy

// raceEnabled: under the race detector sync.Pool drops items at random, so
// allocation counts mean nothing there.
const raceEnabled = true
