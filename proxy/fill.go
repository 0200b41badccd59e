package proxy

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/isrproxy/isrproxy/cache"
)

// A fill is one origin fetch for a key that concurrent misses share (SPEC
// promise 7). Unlike singleflight, the fetch runs on its own goroutine with a
// context detached from every visitor, so a visitor who hangs up neither
// cancels it for the others nor stops the page being stored; and the
// visitor who started it is told so, since only that visitor may be handed
// a response that turned out not to be storable.
type fill struct {
	done chan struct{} // closed when the fields below are set

	// Written once before done is closed, read only after.
	page   *cache.Page // nil when err is set
	reason string      // why page was not stored ("" when stored)
	stored bool
	err    error

	// superseded is set when a revalidation or purge of the key starts
	// while this fill is in flight: its result, read before, is not stored.
	superseded atomic.Bool
}

// flights tracks the fills in flight.
type flights struct {
	mu    sync.Mutex       // guards calls
	calls map[string]*fill // flight key -> fill
}

// join returns the fill in flight for fk and false, or registers a new one
// and returns it and true: the caller must then start it with run.
func (fs *flights) join(fk string) (*fill, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.calls[fk]; ok {
		return f, false
	}
	if fs.calls == nil {
		fs.calls = make(map[string]*fill)
	}
	f := &fill{done: make(chan struct{})}
	fs.calls[fk] = f
	return f, true
}

// finish publishes f's result and forgets it, so later misses start afresh.
func (fs *flights) finish(fk string, f *fill) {
	fs.mu.Lock()
	delete(fs.calls, fk)
	fs.mu.Unlock()
	close(f.done)
}

// supersede marks every fill of key (every variant) as superseded.
func (fs *flights) supersede(key string) {
	prefix := key + "\n"
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for fk, f := range fs.calls {
		if strings.HasPrefix(fk, prefix) {
			f.superseded.Store(true)
		}
	}
}

// wait blocks until f is done or ctx ends.
func (f *fill) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flightKey names the fill of one variant of key.
func flightKey(key, variant string) string { return key + "\n" + variant }
