//go:build !race

package cache

// raceEnabled: the race detector is on (see race_test.go).
const raceEnabled = false
