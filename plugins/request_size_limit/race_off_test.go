//go:build !race

package requestsizelimit

const raceEnabled = false
