//go:build !race

package ttlcache

const raceEnabled = false
