package gctune

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The heap may grow by the same headroom whatever its
// size, within 10 % and 1000 % of the live heap.
func TestGCPercentFor(t *testing.T) {
	assert.Equal(t, 1000, gcPercentFor(0))
	assert.Equal(t, 1000, gcPercentFor(1<<20))
	assert.Equal(t, 400, gcPercentFor(8<<20))
	assert.Equal(t, 100, gcPercentFor(gcHeadroom))
	assert.Equal(t, 50, gcPercentFor(2*gcHeadroom))
	assert.Equal(t, 25, gcPercentFor(4*gcHeadroom))
	assert.Equal(t, 10, gcPercentFor(1<<30))
	assert.Equal(t, 10, gcPercentFor(64<<30))
}

// Memory goes back to the system once, on the first quiet tick after a
// wave of allocation, and never while the process keeps allocating.
func TestTrimmerTrimsOnceWhenAWaveOfAllocationEnds(t *testing.T) {
	var tr trimmer
	total := uint64(500 << 20)
	assert.False(t, tr.due(total), "the first reading only sets the start")

	// A wave: 8 MiB a tick, well beyond trimAfter in all.
	for range 20 {
		total += 8 << 20
		assert.False(t, tr.due(total), "never while allocating")
	}
	total += 4 << 10
	assert.True(t, tr.due(total), "the first quiet tick after the wave")
	for range 10 {
		total += 4 << 10
		assert.False(t, tr.due(total), "once per wave")
	}

	// A small wave, less than trimAfter: not worth a collection.
	total += trimAfter / 2
	assert.False(t, tr.due(total))
	total += 4 << 10
	assert.False(t, tr.due(total))

	// Steady light traffic adds up: trimmed once it has reached trimAfter.
	quiet := 0
	for !tr.due(total) {
		total += quietBytes - 1
		quiet++
	}
	assert.Greater(t, quiet, 10)
}
