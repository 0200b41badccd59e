package cache

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The reverse index of links follows the store: a page's links leave it
// when the page is replaced, deleted or evicted.
func TestLinksFollowTheirPage(t *testing.T) {
	s := newStore(t, 1<<20)
	list := page(s, "/events", "listing")
	list.Links = NewLinks([]string{"/events/42", "/events/43"})
	s.Put(list)
	s.Put(page(s, "/events/42", "event"))
	assert.Equal(t, []Key{{Host: "example.com", Path: "/events"}}, s.KeysLinkingTo("example.com", "/events/42"))
	assert.Empty(t, s.KeysLinkingTo("other.example", "/events/42"))
	assert.Equal(t, []Key{{Host: "example.com", Path: "/events"}, {Host: "example.com", Path: "/events/42"}}, s.KeysOfHost("example.com"))

	again := page(s, "/events", "listing without 42")
	again.Links = NewLinks([]string{"/events/43"})
	s.Put(again)
	assert.Empty(t, s.KeysLinkingTo("example.com", "/events/42"), "replaced")
	assert.Len(t, s.KeysLinkingTo("example.com", "/events/43"), 1)

	s.Delete(Key{Host: "example.com", Path: "/events"})
	assert.Empty(t, s.KeysLinkingTo("example.com", "/events/43"), "deleted")
	assert.Equal(t, []Key{{Host: "example.com", Path: "/events/42"}}, s.KeysOfHost("example.com"))
}

func TestEvictedPagesLeaveTheirLinks(t *testing.T) {
	s := newStore(t, 64<<10)
	for i := range 200 {
		p := page(s, "/p/"+string(rune('a'+i%26))+string(rune('a'+i/26)), string(make([]byte, 2<<10)))
		p.Links = NewLinks([]string{"/target"})
		s.Put(p)
	}
	entries, _ := s.Stats()
	assert.Len(t, s.KeysLinkingTo("example.com", "/target"), entries, "only stored pages link")
	assert.Less(t, entries, 200)
}

// Links keep each target once, sorted, whatever prefixes they share, and
// drop what could not be read back.
func TestLinksRoundTrip(t *testing.T) {
	long := "/" + strings.Repeat("a", 300)
	in := []string{"/events/43", "/events/42", "/", "/events/42", "", "/bad\nline", "/events", long, long + "b", "/e?x=1"}
	l := NewLinks(in)
	want := []string{"/", long, long + "b", "/e?x=1", "/events", "/events/42", "/events/43"}
	assert.Equal(t, want, l.Slice())
	assert.Equal(t, len(want), l.Len())
	assert.Less(t, len(l), len(strings.Join(want, "\n")), "shared prefixes are written once")
	assert.Empty(t, NewLinks(nil).Slice())
}

// A damaged string (a snapshot's bytes are checked, but not their sense)
// reads as something, never a panic.
func FuzzLinksAll(f *testing.F) {
	f.Add(string(NewLinks([]string{"/a", "/ab", "/b"})))
	f.Add("\xff/x\n\x00")
	f.Fuzz(func(t *testing.T, s string) {
		for range Links(s).All() {
		}
		_ = Links(s).Len()
	})
}

// A page's links take the bytes they need and no more: the string lives as
// long as the page.
func TestNewLinksIsSizedExactly(t *testing.T) {
	var targets []string
	for i := range 50 {
		targets = append(targets, fmt.Sprintf("/page/%d", 600000+i*37))
	}
	l := NewLinks(targets)
	var got int
	allocs := testing.AllocsPerRun(10, func() { got = len(NewLinks(targets)) })
	assert.Equal(t, len(l), got)
	assert.LessOrEqual(t, allocs, 2.0, "the sorted copy and the string, nothing grown twice")
}
