package metrics

import (
	"sync"
	"sync/atomic"
	"time"
)

// The recent history kept for the admin dashboard: request counts and
// origin latency in buckets of BucketWidth, the last HistoryBuckets of
// them, and the last RevalidationsKept revalidation results. The serving
// path only adds to atomic counters; a ticker goroutine started by
// [Metrics.StartHistory] closes a bucket every BucketWidth from their
// running totals, so no lock is taken on a hit.
const (
	BucketWidth       = 10 * time.Second
	HistoryBuckets    = 90 // 15 minutes
	RevalidationsKept = 50
)

// The page answers counted per bucket, by X-Cache value.
const (
	verdictHit = iota
	verdictMiss
	verdictStale
	verdictBypass
	verdicts
)

// Totals are running counts since the process started.
type Totals struct {
	Hits, Misses, Stale, Bypass uint64
	// OriginRequests counts completed fills and refetches, and
	// OriginNanos adds up their latency.
	OriginRequests uint64
	OriginNanos    uint64
}

// minus returns t less an earlier u.
func (t Totals) minus(u Totals) Totals {
	return Totals{
		Hits: t.Hits - u.Hits, Misses: t.Misses - u.Misses, Stale: t.Stale - u.Stale, Bypass: t.Bypass - u.Bypass,
		OriginRequests: t.OriginRequests - u.OriginRequests, OriginNanos: t.OriginNanos - u.OriginNanos,
	}
}

// Plus returns the sum of t and u.
func (t Totals) Plus(u Totals) Totals {
	return Totals{
		Hits: t.Hits + u.Hits, Misses: t.Misses + u.Misses, Stale: t.Stale + u.Stale, Bypass: t.Bypass + u.Bypass,
		OriginRequests: t.OriginRequests + u.OriginRequests, OriginNanos: t.OriginNanos + u.OriginNanos,
	}
}

// Requests is the number of page answers counted in t.
func (t Totals) Requests() uint64 { return t.Hits + t.Misses + t.Stale + t.Bypass }

// MeanOrigin is the mean latency of the origin requests counted in t (0
// when there were none).
func (t Totals) MeanOrigin() time.Duration {
	if t.OriginRequests == 0 {
		return 0
	}
	return time.Duration(t.OriginNanos / t.OriginRequests)
}

// Bucket is what happened from Start to End: BucketWidth apart, except for
// the newest bucket of a [Snapshot], which is still filling and ends now.
type Bucket struct {
	Start, End time.Time
	Totals
}

// counters are the running totals the serving path adds to.
type counters struct {
	verdict     [verdicts]atomic.Uint64
	originN     atomic.Uint64
	originNanos atomic.Uint64
}

func (c *counters) load() Totals {
	// The count is read before the sum, which the writer adds to first:
	// every request counted has its latency in the sum.
	n := c.originN.Load()
	nanos := c.originNanos.Load()
	return Totals{
		Hits: c.verdict[verdictHit].Load(), Misses: c.verdict[verdictMiss].Load(),
		Stale: c.verdict[verdictStale].Load(), Bypass: c.verdict[verdictBypass].Load(),
		OriginRequests: n, OriginNanos: nanos,
	}
}

// history is a ring of closed buckets. Only the ticker writes it.
type history struct {
	mu      sync.Mutex // guards the fields below
	ring    [HistoryBuckets]Bucket
	n       int       // buckets in ring, at most HistoryBuckets
	next    int       // where the next closed bucket goes
	openAt  time.Time // start of the bucket still filling
	atStart Totals    // the running totals at openAt
}

// close ends the bucket still filling at now, given the running totals.
func (h *history) close(now time.Time, t Totals) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = Bucket{Start: h.openAt, End: now, Totals: t.minus(h.atStart)}
	h.next = (h.next + 1) % HistoryBuckets
	h.n = min(h.n+1, HistoryBuckets)
	h.openAt, h.atStart = now, t
}

// buckets returns the closed buckets, oldest first, then the one still
// filling, which ends at now.
func (h *history) buckets(now time.Time, t Totals) []Bucket {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Bucket, 0, h.n+1)
	for i := range h.n {
		out = append(out, h.ring[(h.next-h.n+i+HistoryBuckets)%HistoryBuckets])
	}
	return append(out, Bucket{Start: h.openAt, End: now, Totals: t.minus(h.atStart)})
}

// Revalidation is one revalidated key and variant, as the dashboard lists it.
type Revalidation struct {
	At      time.Time
	Host    string
	Path    string // escaped path plus normalised query
	Mode    string // refetch, soft or purge
	Outcome string
	Status  int    // the origin's status, for refetches that got an answer
	Error   string // why, when Outcome is failed
}

// revalRing keeps the last RevalidationsKept revalidations. It is written
// by the revalidate API's workers, never on the serving path.
type revalRing struct {
	mu   sync.Mutex // guards the fields below
	ring [RevalidationsKept]Revalidation
	n    int
	next int
}

func (r *revalRing) add(v Revalidation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.next] = v
	r.next = (r.next + 1) % RevalidationsKept
	r.n = min(r.n+1, RevalidationsKept)
}

// newestFirst returns the revalidations kept, the newest first.
func (r *revalRing) newestFirst() []Revalidation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Revalidation, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.ring[(r.next-i+RevalidationsKept)%RevalidationsKept])
	}
	return out
}

// Snapshot is what the dashboard shows, read at one moment.
type Snapshot struct {
	Now, Started time.Time
	// Totals are the counts since Started.
	Totals Totals
	// Buckets cover at most the last HistoryBuckets × BucketWidth, oldest
	// first; the last one is still filling.
	Buckets []Bucket
	// Entries and Bytes are what the page store holds.
	Entries int
	Bytes   int64
	// Revalidations are the last ones, newest first.
	Revalidations []Revalidation
}

// Snapshot reads the recent history. A nil *Metrics has none.
func (m *Metrics) Snapshot() Snapshot {
	if m == nil {
		return Snapshot{Now: time.Now()}
	}
	now := m.now()
	t := m.counts.load()
	s := Snapshot{
		Now: now, Started: m.started, Totals: t,
		Buckets:       m.history.buckets(now, t),
		Revalidations: m.revals.newestFirst(),
	}
	s.Entries, s.Bytes = m.store()
	return s
}

// LastRevalidation returns the newest revalidation kept for the key of host
// and target (path plus normalised query), if any.
func (m *Metrics) LastRevalidation(host, target string) (Revalidation, bool) {
	if m == nil {
		return Revalidation{}, false
	}
	for _, r := range m.revals.newestFirst() {
		if r.Host == host && r.Path == target {
			return r, true
		}
	}
	return Revalidation{}, false
}

// StartHistory starts the goroutine that closes a bucket every BucketWidth.
// stop ends it and returns once it has ended. A nil *Metrics starts nothing.
func (m *Metrics) StartHistory() (stop func()) {
	if m == nil {
		return func() {}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(BucketWidth)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				m.tick()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-ended
	}
}

// tick closes the bucket still filling.
func (m *Metrics) tick() { m.history.close(m.now(), m.counts.load()) }
