//go:build race

package transport

// raceEnabled: under the race detector sync.Pool drops items at random, so
// allocation counts are not meaningful there.
const raceEnabled = true
