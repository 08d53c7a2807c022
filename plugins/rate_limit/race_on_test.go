//go:build race

package ratelimit

// raceEnabled: under -race sync.Pool drops items on purpose, so allocation
// counts mean nothing there (fasthttp skips its allocation tests too).
const raceEnabled = true
