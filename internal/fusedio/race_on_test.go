//go:build race

package fusedio

// raceEnabled: under the race detector sync.Pool drops items at random, so
// allocation counts are not meaningful there.
const raceEnabled = true
