//go:build !race

package rawquery

const raceEnabled = false
