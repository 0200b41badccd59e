package gctune

import (
	"testing"
	"time"

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
	total, cpu := uint64(500<<20), 3*time.Second
	idle := time.Millisecond // the CPU of a quiet tick
	assert.False(t, tr.due(total, cpu), "the first reading only sets the start")

	// A wave: 8 MiB a tick, well beyond trimAfter in all.
	for range 20 {
		total, cpu = total+8<<20, cpu+tick
		assert.False(t, tr.due(total, cpu), "never while allocating")
	}
	total, cpu = total+4<<10, cpu+idle
	assert.True(t, tr.due(total, cpu), "the first quiet tick after the wave")
	for range 10 {
		total, cpu = total+4<<10, cpu+idle
		assert.False(t, tr.due(total, cpu), "once per wave")
	}

	// A small wave, less than trimAfter: not worth a collection.
	total, cpu = total+trimAfter/2, cpu+tick
	assert.False(t, tr.due(total, cpu))
	total, cpu = total+4<<10, cpu+idle
	assert.False(t, tr.due(total, cpu))

	// Steady light traffic adds up: trimmed once it has reached trimAfter.
	quiet := 0
	for !tr.due(total, cpu) {
		total, cpu = total+quietBytes-1, cpu+idle
		quiet++
	}
	assert.Greater(t, quiet, 10)
}

// A process busy with hits, which allocate next to nothing, is never
// trimmed, however much it allocated before: the trim's collection would
// land in its traffic.
func TestTrimmerLeavesABusyProcessAlone(t *testing.T) {
	var tr trimmer
	total, cpu := uint64(0), time.Duration(0)
	tr.due(total, cpu)
	total, cpu = total+4*trimAfter, cpu+tick // a wave of fills
	assert.False(t, tr.due(total, cpu))
	for range 100 { // then 10,000 hits a second: 1 MB and 50 ms of CPU a tick
		total, cpu = total+quietBytes/2, cpu+tick/10
		assert.False(t, tr.due(total, cpu), "busy with hits")
	}
	total, cpu = total+4<<10, cpu+time.Millisecond
	assert.True(t, tr.due(total, cpu), "quiet at last")
}

// processCPU counts this process's work.
func TestProcessCPUGrowsWithWork(t *testing.T) {
	before := processCPU()
	deadline := time.Now().Add(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = n * n
	}
	assert.Greater(t, processCPU(), before)
}
