// Package gctune keeps the garbage collector's headroom fixed above the live
// heap: stored pages live for days, and Go's default (collect when the heap
// has doubled) would keep a second page budget's worth of memory beside them.
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

// Run sets the GC percentage from the live heap once a second until ctx
// ends. Start it only when the operator has not set GOGC.
func Run(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := -1
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := gcPercentFor(sample[0].Value.Uint64()); p != set {
				debug.SetGCPercent(p)
				set = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
