//go:build !race

package fusedio

const raceEnabled = false
