// Package gctune keeps the garbage collector's headroom fixed above the live
// heap: stored pages live for days, and Go's default (collect when the heap
// has doubled) would keep a second page budget's worth of memory beside them.
// Once the process goes quiet after a wave of allocation (a warm start, a
// crawl, a storm of fills), it also hands the garbage and free memory back to
// the operating system, so that an idle process is the size of its pages.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is the garbage the heap may gather between two collections.
// Stored pages live for days, so Go's default (collect when the heap has
// doubled) would keep a second budget's worth of memory beside them; a
// fixed headroom keeps the process at the size of its pages plus a
// constant, and a stored page costs its own bytes and no more.
const gcHeadroom = 32 << 20

// gcPercentFor returns the GOGC percentage that lets a heap of live bytes
// grow by gcHeadroom before the next collection, whatever its size: more
// than Go's default 100 for a small heap (fewer collections, for a memory
// cost the operator has budgeted anyway), less for a large one, never
// below 10 %, where a collection would come so often that it cost the hit
// path more than it saves, and never above 1000 %.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return 1000
	}
	return int(min(max(uint64(gcHeadroom)*100/live, 10), 1000))
}

const (
	// tick is how often the live heap and the allocation are read.
	tick = 500 * time.Millisecond
	// quietBytes is the allocation of one tick under which the process
	// may count as quiet: no fills.
	quietBytes = 1 << 20
	// quietCPU is the CPU time (user and system) of one tick under which
	// the process may count as quiet: 2 % of a core, some 2,000 hits a
	// second at most (about 9 µs of CPU each). A hit allocates next to nothing, so allocation alone
	// would call a process answering 10,000 hits a second quiet, and the
	// trim's collection would land in the middle of its traffic.
	quietCPU = tick / 50
	// trimAfter is the allocation since the last trim that makes the next
	// quiet tick worth a trim: the headroom has been used twice over, so
	// garbage and free spans are there to give back. Go would keep them:
	// its scavenger returns only what lies beyond the heap goal, and an
	// idle heap is collected every two minutes at most.
	trimAfter = 2 * gcHeadroom
)

// trimmer decides when to hand memory back, from the process's total
// allocation and CPU time read once a tick.
type trimmer struct {
	started  bool
	last     uint64        // total allocation at the previous tick
	lastCPU  time.Duration // CPU time at the previous tick
	lastTrim uint64        // total allocation at the last trim
}

// due reports whether, with total bytes allocated and cpu time spent so
// far, the process has just gone quiet (allocated and worked little in the
// last tick) after allocating trimAfter since the last trim.
func (t *trimmer) due(total uint64, cpu time.Duration) bool {
	if !t.started {
		t.started, t.last, t.lastCPU, t.lastTrim = true, total, cpu, total
		return false
	}
	step, busy := total-t.last, cpu-t.lastCPU
	t.last, t.lastCPU = total, cpu
	if step >= quietBytes || busy >= quietCPU || total-t.lastTrim < trimAfter {
		return false
	}
	t.lastTrim = total
	return true
}

// Run sets the GC percentage from the live heap every tick, and trims
// memory when due, until ctx ends. Start it only when the operator has not
// set GOGC.
func Run(ctx context.Context) {
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	set := -1
	var trim trimmer
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		metrics.Read(samples)
		if samples[0].Value.Kind() == metrics.KindUint64 {
			if p := gcPercentFor(samples[0].Value.Uint64()); p != set {
				debug.SetGCPercent(p)
				set = p
			}
		}
		if samples[1].Value.Kind() == metrics.KindUint64 && trim.due(samples[1].Value.Uint64(), processCPU()) {
			// A collection, then every free page back to the system: one
			// collection's work, spent when nothing else is going on.
			debug.FreeOSMemory()
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
