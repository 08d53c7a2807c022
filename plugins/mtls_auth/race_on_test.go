//go:build race

package mtlsauth

// raceEnabled is true under -race, where sync.Pool drops items at random
// (so pooled objects allocate) and allocation counts mean nothing.
const raceEnabled = true
