//go:build !race

package oauth2introspection

const raceEnabled = false
