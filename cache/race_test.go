//go:build race

package cache

// raceEnabled: the race detector is on. sync.Pool then drops items at
// random, so the tests that count allocations on pooled paths skip.
const raceEnabled = true
