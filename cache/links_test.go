package cache

import (
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
