package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is the garbage the heap may gather between two collections
// once it holds more than that of live data. Stored pages live for days, so
// Go's default (collect when the heap has doubled) would keep a second
// budget's worth of memory beside them; a fixed headroom keeps the process
// at the size of its pages plus a constant.
const gcHeadroom = 32 << 20

// gcPercentFor returns the GOGC percentage that gives a heap of live bytes
// gcHeadroom to grow before the next collection: 100 (Go's default) for a
// small heap, never below 10 for a large one, where a collection must not
// come so often that it costs the hit path more than it saves.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return 100
	}
	return int(min(max(uint64(gcHeadroom)*100/live, 10), 100))
}

// tuneGC sets the GC percentage from the live heap once a second until ctx
// ends. It is started only when the operator has not set GOGC.
func tuneGC(ctx context.Context) {
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
