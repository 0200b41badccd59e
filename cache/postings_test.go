package cache

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func ids(m postings, name string) []uint32 {
	var out []uint32
	m.each(name, func(id uint32) { out = append(out, id) })
	slices.Sort(out)
	return out
}

// A posting list holds each id once it is added and loses it when removed,
// whether it is still a short slice or has grown into a set; an emptied
// name leaves the map.
func TestPostingsAcrossTheSliceToSetBoundary(t *testing.T) {
	m := postings{}
	var want []uint32
	for id := range uint32(postingSliceMax + 5) {
		m.add("menu", id)
		want = append(want, id)
		assert.Equal(t, want, ids(m, "menu"), "after adding %d", id)
	}
	assert.NotNil(t, m["menu"].many, "a long list is a set")

	m.add("one", 7)
	m.add("one", 9)
	m.remove("one", 7)
	assert.Equal(t, []uint32{9}, ids(m, "one"))
	m.remove("one", 9)
	assert.NotContains(t, m, "one", "an emptied name is dropped")

	for _, id := range want {
		m.remove("menu", id)
	}
	assert.Empty(t, m)
	m.remove("never", 1) // removing from a name never added is a no-op
	assert.Empty(t, ids(m, "never"))
}
