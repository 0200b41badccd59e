package metrics

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// clock is a settable time for the history's buckets.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newTestMetrics(t *testing.T) (*Metrics, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}
	m := New(prometheus.NewRegistry(), func() (int, int64) { return 3, 4096 })
	m.now = c.now
	m.started = c.t
	m.history.openAt = c.t
	return m, c
}

func serve(m *Metrics, status string, n int) {
	for range n {
		m.Served(status)
	}
}

func TestHistoryOpenBucketCountsAtOnce(t *testing.T) {
	m, c := newTestMetrics(t)
	serve(m, "HIT", 3)
	serve(m, "MISS", 1)
	m.OriginDone("fill", 200, 40*time.Millisecond)
	c.advance(4 * time.Second)

	s := m.Snapshot()
	if len(s.Buckets) != 1 {
		t.Fatalf("buckets = %d, want only the one filling", len(s.Buckets))
	}
	b := s.Buckets[0]
	if b.Hits != 3 || b.Misses != 1 || b.OriginRequests != 1 {
		t.Errorf("open bucket = %+v, want 3 hits, 1 miss, 1 origin request", b.Totals)
	}
	if got := b.MeanOrigin(); got != 40*time.Millisecond {
		t.Errorf("mean origin latency = %s, want 40ms", got)
	}
	if !b.End.Equal(c.t) || !b.Start.Equal(s.Started) {
		t.Errorf("open bucket spans %s–%s, want start to now", b.Start, b.End)
	}
	if s.Entries != 3 || s.Bytes != 4096 || s.Totals.Hits != 3 {
		t.Errorf("snapshot = %d entries, %d bytes, %d hits; want 3, 4096, 3", s.Entries, s.Bytes, s.Totals.Hits)
	}
}

func TestHistoryTickClosesBucketsWithTheirOwnCounts(t *testing.T) {
	m, c := newTestMetrics(t)
	serve(m, "HIT", 5)
	c.advance(BucketWidth)
	m.tick()
	serve(m, "STALE", 2)
	serve(m, "BYPASS", 1)
	c.advance(BucketWidth)
	m.tick()
	serve(m, "HIT", 1)

	s := m.Snapshot()
	want := []Totals{{Hits: 5}, {Stale: 2, Bypass: 1}, {Hits: 1}}
	if len(s.Buckets) != len(want) {
		t.Fatalf("buckets = %d, want %d", len(s.Buckets), len(want))
	}
	for i, w := range want {
		if s.Buckets[i].Totals != w {
			t.Errorf("bucket %d = %+v, want %+v", i, s.Buckets[i].Totals, w)
		}
		if i > 0 && !s.Buckets[i].Start.Equal(s.Buckets[i-1].End) {
			t.Errorf("bucket %d starts at %s, not where bucket %d ended (%s)", i, s.Buckets[i].Start, i-1, s.Buckets[i-1].End)
		}
	}
	if s.Totals.Hits != 6 || s.Totals.Requests() != 9 {
		t.Errorf("totals = %+v, want 6 hits of 9 requests", s.Totals)
	}
}

func TestHistoryKeepsTheLastFifteenMinutes(t *testing.T) {
	m, c := newTestMetrics(t)
	const closed = HistoryBuckets + 7
	for i := range closed {
		serve(m, "HIT", i)
		c.advance(BucketWidth)
		m.tick()
	}
	s := m.Snapshot()
	if len(s.Buckets) != HistoryBuckets+1 {
		t.Fatalf("buckets = %d, want %d closed and the one filling", len(s.Buckets), HistoryBuckets)
	}
	for i, b := range s.Buckets[:HistoryBuckets] {
		if want := uint64(closed - HistoryBuckets + i); b.Hits != want {
			t.Fatalf("bucket %d has %d hits, want %d (oldest first, the first %d dropped)", i, b.Hits, want, closed-HistoryBuckets)
		}
	}
	if span := s.Now.Sub(s.Buckets[0].Start); span != HistoryBuckets*BucketWidth {
		t.Errorf("history spans %s, want %s", span, HistoryBuckets*BucketWidth)
	}
}

func TestRevalidationsKeepTheLastFiftyNewestFirst(t *testing.T) {
	m, c := newTestMetrics(t)
	for i := range RevalidationsKept + 5 {
		c.advance(time.Second)
		m.revals.add(Revalidation{At: c.t, Path: fmt.Sprintf("/p%d", i)})
	}
	got := m.Snapshot().Revalidations
	if len(got) != RevalidationsKept {
		t.Fatalf("kept %d, want %d", len(got), RevalidationsKept)
	}
	if got[0].Path != fmt.Sprintf("/p%d", RevalidationsKept+4) || got[len(got)-1].Path != "/p5" {
		t.Errorf("kept %s … %s, want the newest first, /p%d … /p5", got[0].Path, got[len(got)-1].Path, RevalidationsKept+4)
	}
}

// fakeRevalidator answers every call with the results it holds.
type fakeRevalidator struct{ results []revalidation.Result }

func (f fakeRevalidator) Refetch(context.Context, cache.Key) []revalidation.Result { return f.results }
func (f fakeRevalidator) MarkStale(cache.Key) []revalidation.Result                { return f.results }
func (f fakeRevalidator) Purge(cache.Key) []revalidation.Result                    { return f.results }

func TestKeepRevalidationsRecordsHostModeAndFailure(t *testing.T) {
	m, _ := newTestMetrics(t)
	next := fakeRevalidator{results: []revalidation.Result{
		{Target: "/a?x=1", Status: 200, Outcome: revalidation.Replaced},
		revalidation.Fail("", revalidation.Failure{Reason: revalidation.OriginStatus, Status: 503}),
	}}
	r := m.KeepRevalidations(next)
	key := cache.Key{Host: "example.com", Path: "/a", Query: "x=1"}
	if got := r.Refetch(context.Background(), key); len(got) != 2 {
		t.Fatalf("results passed on = %d, want 2", len(got))
	}
	r.MarkStale(key)

	got := m.Snapshot().Revalidations
	if len(got) != 4 {
		t.Fatalf("kept %d, want 4", len(got))
	}
	if got[0].Mode != "soft" || got[2].Mode != "refetch" {
		t.Errorf("modes = %s, %s; want soft (newest), refetch", got[0].Mode, got[2].Mode)
	}
	ok, failed := got[3], got[2]
	if ok.Host != "example.com" || ok.Path != "/a?x=1" || ok.Outcome != "replaced" || ok.Status != 200 {
		t.Errorf("first result kept as %+v", ok)
	}
	if failed.Path != "/a?x=1" || failed.Outcome != "failed" || failed.Error != "origin status 503" {
		t.Errorf("failed result kept as %+v; want the key's target and the failure", failed)
	}
	last, found := m.LastRevalidation("example.com", "/a?x=1")
	if !found || last.Mode != "soft" {
		t.Errorf("LastRevalidation = %+v, %v; want the soft one", last, found)
	}
}

func TestNilMetricsHasNoHistory(t *testing.T) {
	var m *Metrics
	m.StartHistory()()
	if _, wrapped := m.KeepRevalidations(fakeRevalidator{}).(keeper); wrapped {
		t.Error("a nil *Metrics wraps the revalidator")
	}
	if s := m.Snapshot(); len(s.Buckets) != 0 {
		t.Errorf("nil snapshot has %d buckets", len(s.Buckets))
	}
}

// The ticker goroutine ends when stopped, and counting while it closes
// buckets is race-free (go test -race).
func TestStartHistoryStopsAndCountsConcurrently(t *testing.T) {
	m := New(prometheus.NewRegistry(), func() (int, int64) { return 0, 0 })
	stop := m.StartHistory()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 1000 {
				m.Served("HIT")
				if i%100 == 0 { // 40 buckets closed in all: fewer than are kept
					m.tick()
				}
				m.Snapshot()
			}
		})
	}
	wg.Wait()
	stop()
	stop() // twice is harmless
	var hits uint64
	for _, b := range m.Snapshot().Buckets {
		hits += b.Hits
	}
	if hits != 4000 {
		t.Errorf("hits across the buckets kept = %d, want 4000", hits)
	}
}
