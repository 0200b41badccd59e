package cache

import (
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEachVisitsEveryVariant(t *testing.T) {
	s := newStore(t, 1<<20)
	for i := range 10 {
		require.Equal(t, Stored, s.Put(page(s, fmt.Sprintf("/p/%d", i), "v")))
	}
	vary := func(lang string) *Page {
		p := page(s, "/v", "v-"+lang)
		p.Vary, p.VaryValues = []string{"Accept-Language"}, []string{lang}
		return p
	}
	s.Put(vary("en"))
	s.Put(vary("fr"))

	var seen []string
	s.Each(func(p *Page) bool {
		seen = append(seen, p.Key.String()+" "+string(p.Body))
		return true
	})
	sort.Strings(seen)
	assert.Len(t, seen, 12)
	assert.Contains(t, seen, "example.com/v v-en")
	assert.Contains(t, seen, "example.com/v v-fr")

	n := 0
	s.Each(func(*Page) bool { n++; return n < 3 })
	assert.Equal(t, 3, n, "false stops the walk")
}

// A page restored from a snapshot keeps its generation, and the store's
// next generations are above it: a revalidation that starts after the
// restore replaces it, a fill that started before it (lower generation)
// does not.
func TestRestoreKeepsGenerations(t *testing.T) {
	s := newStore(t, 1<<20)
	p := &Page{Key: Key{Host: "example.com", Path: "/a"}, Status: 200, Body: []byte("saved"), Gen: 1000,
		Header: FieldsOf(http.Header{"Content-Type": {"text/html"}}), Tags: []string{"t1"}}
	p.MarkStale()
	require.Equal(t, Stored, s.Restore(p))
	assert.Greater(t, s.NextGen(), uint64(1000))

	got := s.Get(p.Key).Variants[0]
	assert.True(t, got.StaleMarked())
	assert.Equal(t, uint64(1000), got.Gen)
	assert.Equal(t, []Key{p.Key}, s.KeysByTag("example.com", "t1"))

	older := page(s, "/a", "older")
	older.Gen = 999
	assert.Equal(t, Superseded, s.Put(older))
	assert.Equal(t, Replaced, s.Put(page(s, "/a", "newer")))
	assert.Equal(t, "newer", bodyOf(t, s, "example.com/a"))

	// A restore with a lower generation than the store's leaves it alone.
	before := s.NextGen()
	s.Restore(&Page{Key: Key{Host: "example.com", Path: "/b"}, Status: 200, Body: []byte("b"), Gen: 5})
	assert.Greater(t, s.NextGen(), before)
}

// Restore never evicts to make room: past the budget it refuses.
func TestRestoreStaysWithinTheBudget(t *testing.T) {
	s := newStore(t, 64<<10)
	body := make([]byte, 4<<10)
	stored := 0
	for i := range 40 {
		p := &Page{Key: Key{Host: "example.com", Path: fmt.Sprintf("/p/%d", i)}, Status: 200, Body: body, Gen: uint64(i + 1)}
		switch s.Restore(p) {
		case Stored:
			stored++
		case NotAdmitted:
		default:
			t.Fatalf("page %d: unexpected result", i)
		}
	}
	_, bytes := s.Stats()
	assert.LessOrEqual(t, bytes, int64(64<<10))
	assert.Greater(t, stored, 10)
	assert.Less(t, stored, 40)
	for i := range stored {
		assert.NotNil(t, s.Get(Key{Host: "example.com", Path: fmt.Sprintf("/p/%d", i)}), "the first pages stay: page %d", i)
	}
}

// Each holds no lock while its callback runs: a snapshot that takes its
// time encoding a page never holds up hits, fills or evictions.
func TestEachHoldsNoLockWhileItsCallbackRuns(t *testing.T) {
	s := newStore(t, 1<<20)
	for i := range 5 {
		s.Put(page(s, fmt.Sprintf("/p/%d", i), "v"))
	}
	done := make(chan struct{})
	s.Each(func(p *Page) bool {
		go func() {
			defer close(done)
			s.Put(page(s, "/new", "new"))
			s.Put(page(s, p.Key.Path, "replaced")) // the very key being visited
			s.Get(p.Key)
			s.Delete(Key{Host: "example.com", Path: "/p/4"})
			s.Stats()
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a Put, Get or Delete waited for Each")
		}
		return false
	})
}
