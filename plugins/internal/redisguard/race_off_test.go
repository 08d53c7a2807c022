//go:build !race

package redisguard

const raceEnabled = false
