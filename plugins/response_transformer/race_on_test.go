//go:build race

package responsetransformer

// raceEnabled is true under -race, where sync.Pool drops items at random
// (so pooled buffers allocate) and allocation counts mean nothing.
const raceEnabled = true
