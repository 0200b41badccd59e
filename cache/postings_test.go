package cache

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ids(m postings[string], name string) []uint32 {
	var out []uint32
	m.each(name, func(id uint32) { out = append(out, id) })
	slices.Sort(out)
	return out
}

// A posting list holds each id once it is added and loses it when removed,
// through every form it takes as it grows and shrinks (inline, slice, set,
// bitmap and back); an emptied name leaves the map.
func TestPostingsThroughEveryForm(t *testing.T) {
	const space = 2000
	m := postings[string]{}
	var want []uint32
	for id := range uint32(space) {
		m.add("menu", id, space)
		want = append(want, id)
	}
	assert.Equal(t, want, ids(m, "menu"))
	assert.NotNil(t, m["menu"].many.bits, "a dense list is a bitmap")

	for _, id := range want[:1990] {
		m.remove("menu", id, space)
	}
	assert.Equal(t, want[1990:], ids(m, "menu"))
	assert.Nil(t, m["menu"].many.bits, "a thinned-out bitmap is a set again")

	for _, id := range want[1990:] {
		m.remove("menu", id, space)
	}
	assert.Empty(t, m, "an emptied name is dropped")

	m.add("one", 7, space)
	assert.Nil(t, m["one"].many, "a single id is inline")
	m.add("one", 9, space)
	m.remove("one", 7, space)
	assert.Equal(t, []uint32{9}, ids(m, "one"))
	m.remove("one", 8, space) // an id never added is a no-op
	m.remove("never", 1, space)
	assert.Equal(t, []uint32{9}, ids(m, "one"))
	assert.Empty(t, ids(m, "never"))
}

// Random adds and removes agree with a plain set at every step.
func TestPostingsAgreeWithASet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := postings[string]{}
	ref := map[string]map[uint32]bool{}
	names := []string{"a", "b", "c"}
	for step := range 20000 {
		space := 64 + step/20
		name := names[rng.IntN(len(names))]
		id := uint32(rng.IntN(space))
		if ref[name] == nil {
			ref[name] = map[uint32]bool{}
		}
		if rng.IntN(3) == 0 {
			m.remove(name, id, space)
			delete(ref[name], id)
		} else {
			m.add(name, id, space)
			ref[name][id] = true
		}
		var want []uint32
		for id := range ref[name] {
			want = append(want, id)
		}
		slices.Sort(want)
		require.Equal(t, want, ids(m, name), "step %d", step)
		_, listed := m[name]
		require.Equal(t, len(want) > 0, listed, "step %d", step)
	}
}
