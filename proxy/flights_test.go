package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
)

// TestJoinMakesOneLeaderPerKeyAndVariant: the first miss of a key and
// variant leads the fill; later misses of the same pair share it; any
// other key or variant leads its own.
func TestJoinMakesOneLeaderPerKeyAndVariant(t *testing.T) {
	var fs flights
	first, leader := fs.join(fkey("h/a", ""))
	require.True(t, leader, "the first miss leads")
	for _, tt := range []struct {
		name   string
		fk     flightKey
		shares bool
	}{
		{"the same key and variant shares the fill", fkey("h/a", ""), true},
		{"another variant of the key leads its own", fkey("h/a", "Accept-Language=fr\n"), false},
		{"another key leads its own", fkey("h/b", ""), false},
		{"a key extending the first leads its own", fkey("h/a/", ""), false},
		{"the same key with a query leads its own", fkey("h/a?x=1", ""), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, leader := fs.join(tt.fk)
			if tt.shares {
				assert.False(t, leader)
				assert.Same(t, first, f)
			} else {
				assert.True(t, leader)
				assert.NotSame(t, first, f)
				again, leader := fs.join(tt.fk)
				assert.False(t, leader, "and is then shared in its turn")
				assert.Same(t, f, again)
			}
		})
	}
}

// TestConcurrentMissesShareOneFill: of many misses that arrive at once,
// one leads, and every other waits for and sees the leader's result.
func TestConcurrentMissesShareOneFill(t *testing.T) {
	const n = 50
	var fs flights
	fk := fkey("h/a", "")
	type joined struct {
		f      *fill
		leader bool
	}
	joins := make(chan joined, n)
	var start sync.WaitGroup
	start.Add(1)
	for range n {
		go func() {
			start.Wait()
			f, leader := fs.join(fk)
			joins <- joined{f, leader}
		}()
	}
	start.Done()
	var leaders []*fill
	var all []*fill
	for range n {
		j := <-joins
		all = append(all, j.f)
		if j.leader {
			leaders = append(leaders, j.f)
		}
	}
	require.Len(t, leaders, 1, "exactly one leader")
	for _, f := range all {
		require.Same(t, leaders[0], f, "every miss got the leader's fill")
	}

	// The waiters block until the leader publishes, then all see its page.
	f := leaders[0]
	pages := make(chan *cache.Page, n)
	for range n {
		go func() {
			if f.wait(context.Background()) == nil {
				pages <- f.page
			} else {
				pages <- nil
			}
		}()
	}
	select {
	case <-pages:
		t.Fatal("a waiter returned before the fill finished")
	case <-time.After(20 * time.Millisecond):
	}
	want := &cache.Page{Status: 200}
	f.page, f.stored = want, true
	fs.finish(fk, f)
	for range n {
		assert.Same(t, want, <-pages)
	}
}

// TestFinishForgetsTheFill: once a fill is finished the next miss leads a
// fetch of its own, and the finished fill's waiters are released.
func TestFinishForgetsTheFill(t *testing.T) {
	var fs flights
	fk := fkey("h/a", "")
	f, _ := fs.join(fk)
	fs.finish(fk, f)
	select {
	case <-f.done:
	default:
		t.Fatal("finish did not publish the result")
	}
	assert.NoError(t, f.wait(context.Background()), "a wait after finish returns at once")
	next, leader := fs.join(fk)
	assert.True(t, leader, "the next miss leads again")
	assert.NotSame(t, f, next)
	fs.finish(fk, next)
	assert.Empty(t, fs.calls, "nothing is left in flight")
}

// TestAWaiterWhoLeavesDoesNotWait: wait returns the visitor's context error
// when the visitor hangs up first; the fill itself goes on.
func TestAWaiterWhoLeavesDoesNotWait(t *testing.T) {
	var fs flights
	fk := fkey("h/a", "")
	f, _ := fs.join(fk)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, f.wait(ctx), context.Canceled)
	again, leader := fs.join(fk)
	assert.False(t, leader, "the fill is still in flight for the others")
	assert.Same(t, f, again)
}

// TestSupersededFills checks which fills a purge, soft mark or
// revalidation reaches, and whether a later miss may still join them: a
// request that arrives after a purge must not get what was read before it.
func TestSupersededFills(t *testing.T) {
	for _, tt := range []struct {
		name      string
		fk        flightKey // the fill in flight
		key       string    // the key superseded
		level     int32
		wantLevel int32
		joinable  bool // a later miss shares the fill
	}{
		{"a purge of the key drops its fill", fkey("h/a", ""), "h/a", dropFetch, dropFetch, false},
		{"a purge of the key drops every variant's fill", fkey("h/a", "X-Theme=dark\n"), "h/a", dropFetch, dropFetch, false},
		{"a soft mark stales the fill, which is still joined", fkey("h/a", ""), "h/a", staleFetch, staleFetch, true},
		{"a purge of another key leaves the fill", fkey("h/a", ""), "h/b", dropFetch, keepFetch, true},
		{"a purge of a key the fill's key extends leaves it", fkey("h/ab", ""), "h/a", dropFetch, keepFetch, true},
		{"a purge of a key extending the fill's key leaves it", fkey("h/a", ""), "h/a?x=1", dropFetch, keepFetch, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var fs flights
			f, _ := fs.join(tt.fk)
			fs.supersede(k(tt.key), tt.level, false)
			assert.Equal(t, tt.wantLevel, f.superseded.level.Load())
			again, leader := fs.join(tt.fk)
			assert.Equal(t, tt.joinable, !leader)
			if tt.joinable {
				assert.Same(t, f, again)
			} else {
				assert.NotSame(t, f, again, "a new fill is started")
			}
		})
	}
}

// TestASupersededFillDoesNotForgetItsReplacement: when a dropped fill ends
// after a later miss started another, finishing it leaves the new one in
// flight for the misses after that.
func TestASupersededFillDoesNotForgetItsReplacement(t *testing.T) {
	var fs flights
	fk := fkey("h/a", "")
	old, _ := fs.join(fk)
	fs.supersede(k("h/a"), dropFetch, false)
	replacement, leader := fs.join(fk)
	require.True(t, leader)
	fs.finish(fk, old)
	assert.NoError(t, old.wait(context.Background()), "the old fill's waiters are released")
	again, leader := fs.join(fk)
	assert.False(t, leader, "the replacement is still in flight")
	assert.Same(t, replacement, again)
	fs.finish(fk, replacement)
	_, leader = fs.join(fk)
	assert.True(t, leader)
}

// TestSupersedeReachesRefetchesOnlyWhenAsked: a refetch in flight is
// raised by a purge or soft mark (refetches true), never by a later
// refetch (false); a refetch that is done is no longer reached.
func TestSupersedeReachesRefetchesOnlyWhenAsked(t *testing.T) {
	var fs flights
	s, done := fs.track(k("h/a"))
	other, otherDone := fs.track(k("h/b"))
	defer otherDone()

	fs.supersede(k("h/a"), dropFetch, false)
	assert.Equal(t, keepFetch, s.level.Load(), "a later refetch does not supersede an earlier one")
	fs.supersede(k("h/a"), staleFetch, true)
	assert.Equal(t, staleFetch, s.level.Load(), "a soft mark reaches the refetch")
	fs.supersede(k("h/a"), dropFetch, true)
	assert.Equal(t, dropFetch, s.level.Load(), "a purge reaches the refetch")
	assert.Equal(t, keepFetch, other.level.Load(), "another key's refetch is not reached")

	done()
	assert.NotContains(t, fs.refetches, k("h/a"), "a done refetch is forgotten")
	assert.Contains(t, fs.refetches, k("h/b"))
}

// TestTrackKeepsEachRefetchUntilItIsDone: several refetches of one key are
// tracked apart; the key's set goes only when the last one is done.
func TestTrackKeepsEachRefetchUntilItIsDone(t *testing.T) {
	var fs flights
	s1, done1 := fs.track(k("h/a"))
	s2, done2 := fs.track(k("h/a"))
	require.NotSame(t, s1, s2)
	done1()
	fs.supersede(k("h/a"), staleFetch, true)
	assert.Equal(t, keepFetch, s1.level.Load(), "a done refetch is not reached")
	assert.Equal(t, staleFetch, s2.level.Load(), "the other refetch still is")
	done2()
	assert.Empty(t, fs.refetches)

	s3, done3 := fs.track(k("h/a"))
	defer done3()
	fs.supersede(k("h/a"), dropFetch, true)
	assert.Equal(t, dropFetch, s3.level.Load(), "a refetch tracked after the set was emptied is reached")
}

// TestASupersessionOnlyRises: a purge outranks a soft mark, and nothing
// lowers a level once raised.
func TestASupersessionOnlyRises(t *testing.T) {
	for _, tt := range []struct {
		name   string
		raises []int32
		want   int32
	}{
		{"nothing raised keeps the fetch", nil, keepFetch},
		{"a soft mark stales it", []int32{staleFetch}, staleFetch},
		{"a purge drops it", []int32{dropFetch}, dropFetch},
		{"a purge after a soft mark drops it", []int32{staleFetch, dropFetch}, dropFetch},
		{"a soft mark after a purge still drops it", []int32{dropFetch, staleFetch}, dropFetch},
		{"keep after a soft mark still stales it", []int32{staleFetch, keepFetch}, staleFetch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s supersession
			for _, l := range tt.raises {
				s.raise(l)
			}
			assert.Equal(t, tt.want, s.level.Load())
		})
	}
}

// TestAdmitAppliesTheSupersessionToThePage checks the store's last check
// on a fetched page: kept as is, stored marked stale, or not stored, by
// the level for the whole key or for a tag the page carries.
func TestAdmitAppliesTheSupersessionToThePage(t *testing.T) {
	for _, tt := range []struct {
		name      string
		level     int32
		tagLevels map[string]int32
		tags      []string // the page's
		admitted  bool
		stale     bool
	}{
		{"no supersession stores the page as it is", keepFetch, nil, []string{"a"}, true, false},
		{"a soft mark stores the page marked stale", staleFetch, nil, nil, true, true},
		{"a purge does not store the page", dropFetch, nil, nil, false, false},
		{"a soft mark of a tag the page carries stores it stale", keepFetch, map[string]int32{"a": staleFetch}, []string{"b", "a"}, true, true},
		{"a purge of a tag the page carries does not store it", keepFetch, map[string]int32{"a": dropFetch}, []string{"a"}, false, false},
		{"a purge of a tag the page lacks stores it", keepFetch, map[string]int32{"z": dropFetch}, []string{"a"}, true, false},
		{"a purge of a tag on an untagged page stores it", keepFetch, map[string]int32{"z": dropFetch}, nil, true, false},
		{"the highest level applies: a tag purge over a key soft mark", staleFetch, map[string]int32{"a": dropFetch}, []string{"a"}, false, false},
		{"the highest level applies: a key purge over a tag soft mark", dropFetch, map[string]int32{"a": staleFetch}, []string{"a"}, false, false},
		{"the highest of a page's tags applies", keepFetch, map[string]int32{"a": staleFetch, "b": dropFetch}, []string{"a", "b"}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s supersession
			s.raise(tt.level)
			for tag, l := range tt.tagLevels {
				s.raiseTag(tag, l)
			}
			p := &cache.Page{Tags: tt.tags}
			assert.Equal(t, tt.admitted, s.admit(p))
			assert.Equal(t, tt.stale, p.StaleMarked())
		})
	}
}

// TestARaisedTagLevelOnlyRises: a soft mark of a tag after its purge
// does not lower it.
func TestARaisedTagLevelOnlyRises(t *testing.T) {
	var s supersession
	s.raiseTag("a", dropFetch)
	s.raiseTag("a", staleFetch)
	assert.False(t, s.admit(&cache.Page{Tags: []string{"a"}}))
}

// TestSupersedeUnstoredReachesOnlyUnstoredMatchingFetches checks how a
// prefix or tag revalidation reaches fills and refetches of keys it found
// nothing stored for: all at once for a matching key, per tag for a tag,
// and never for a key that is stored (the revalidation acts on that one).
func TestSupersedeUnstoredReachesOnlyUnstoredMatchingFetches(t *testing.T) {
	var fs flights
	fillA, _ := fs.join(fkey("h/blog/a", ""))
	fillAv, _ := fs.join(fkey("h/blog/a", "X-Theme=dark\n"))
	fillStored, _ := fs.join(fkey("h/blog/stored", ""))
	fillOther, _ := fs.join(fkey("h/shop/x", ""))
	fillTagged, _ := fs.join(fkey("h/shop/y", ""))
	refetchA, doneA := fs.track(k("h/blog/a"))
	defer doneA()
	refetchStored, doneStored := fs.track(k("h/blog/stored"))
	defer doneStored()

	unstored := func(ck cache.Key) bool { return ck.String() != "h/blog/stored" }
	match := func(ck cache.Key) (bool, []string) {
		key := ck.String()
		switch {
		case len(key) >= len("h/blog/") && key[:len("h/blog/")] == "h/blog/":
			return true, nil
		case key == "h/shop/y":
			return false, []string{"sale"}
		}
		return false, nil
	}
	fs.supersedeUnstored(unstored, match, dropFetch)

	for _, tt := range []struct {
		name  string
		s     *supersession
		level int32
	}{
		{"an unstored matching key's fill is raised", &fillA.superseded, dropFetch},
		{"every variant's fill of it is raised", &fillAv.superseded, dropFetch},
		{"its refetch is raised", refetchA, dropFetch},
		{"a stored key's fill is left to the revalidation", &fillStored.superseded, keepFetch},
		{"a stored key's refetch is left to the revalidation", refetchStored, keepFetch},
		{"a key that does not match is left", &fillOther.superseded, keepFetch},
		{"a key matched by a tag is not raised for the whole key", &fillTagged.superseded, keepFetch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.level, tt.s.level.Load())
		})
	}
	assert.False(t, fillTagged.superseded.admit(&cache.Page{Tags: []string{"sale"}}), "a page carrying the tag is dropped")
	assert.True(t, fillTagged.superseded.admit(&cache.Page{Tags: []string{"new"}}), "a page without it is stored")
}

// TestFlightsAreSafeForConcurrentUse runs joins, finishes, supersessions
// and refetches of overlapping keys at once, for the race detector, and
// checks that every fill is published and the table ends empty.
func TestFlightsAreSafeForConcurrentUse(t *testing.T) {
	var fs flights
	keys := []string{"h/a", "h/b"}
	const workers = 8
	const rounds = 200
	results := make(chan int, workers) // fills led by each worker, all finished
	for w := range workers {
		go func() {
			led := 0
			for i := range rounds {
				key := keys[(w+i)%len(keys)]
				fk := fkey(key, "")
				switch i % 4 {
				case 0, 1:
					if f, leader := fs.join(fk); leader {
						led++
						fs.supersede(k(key), int32(i%3), i%2 == 0)
						fs.finish(fk, f)
					} else {
						f.wait(context.Background())
					}
				case 2:
					s, done := fs.track(k(key))
					s.admit(&cache.Page{})
					done()
				case 3:
					fs.supersedeUnstored(func(cache.Key) bool { return true },
						func(cache.Key) (bool, []string) { return false, []string{"t"} }, staleFetch)
				}
			}
			results <- led
		}()
	}
	total := 0
	for range workers {
		total += <-results
	}
	assert.Positive(t, total)
	assert.Empty(t, fs.calls, "every finished fill is forgotten")
	assert.Empty(t, fs.refetches, "every done refetch is forgotten")
}

// fkey names the flight of variant of the key whose string form is s.
func fkey(s, variant string) flightKey { return flightKey{cache.ParseKey(s), variant} }

// k is the key whose string form is s ("host/path?query").
func k(s string) cache.Key { return cache.ParseKey(s) }
