package cache

import (
	"math/bits"
	"slices"
)

// postings maps a name (a tag, or the hash of a link target, of one host) to the ids
// of the stored keys that carry it. An id is 4 bytes where a key string in
// a set costs about 30: pages link to some fifty targets each, so the
// reverse index of links would otherwise cost more than the gzip body of a
// page. Each list takes the cheapest form for its length:
//   - one id, inline (most link targets are named by one page);
//   - a slice, while short;
//   - a set, once longer, so that removing an id never scans a long list;
//   - a bitmap over the id space, once dense (a menu's targets are named
//     by nearly every page): one bit per stored key instead of 8 bytes
//     per id in a set, turned back into a set when it thins out.
type postings[K comparable] map[K]posting

// posting is one name's ids: the only one inline, else a set of them.
type posting struct {
	one  uint32
	many *idSet
}

// idSet holds two ids or more in exactly one of its forms.
type idSet struct {
	few  []uint32            // while at most postingSliceMax
	set  map[uint32]struct{} // beyond, while sparse
	bits []uint64            // once dense: bit i set for id i
	n    int                 // ids held in bits
}

const (
	// postingSliceMax is the longest list kept as a slice.
	postingSliceMax = 16
	// A set becomes a bitmap when it holds at least one id in
	// denseEvery of the id space (a bitmap then costs at most 4 bytes
	// an id), and turns back into a set below one in sparseEvery.
	denseEvery  = 32
	sparseEvery = 128
)

// add lists id under name (once, however often it is added); space is the size of the id space (every id is
// below it).
func (m postings[K]) add(name K, id uint32, space int) {
	p, ok := m[name]
	if !ok {
		m[name] = posting{one: id}
		return
	}
	if p.many == nil {
		if p.one != id {
			m[name] = posting{many: &idSet{few: []uint32{p.one, id}}}
		}
		return
	}
	p.many.add(id, space)
}

// remove drops id from name's list; space is as for add.
func (m postings[K]) remove(name K, id uint32, space int) {
	p, ok := m[name]
	switch {
	case !ok:
	case p.many == nil:
		if p.one == id {
			delete(m, name)
		}
	default:
		p.many.remove(id, space)
		if last, n := p.many.only(); n == 0 {
			delete(m, name)
		} else if n == 1 {
			m[name] = posting{one: last}
		}
	}
}

// each calls fn with every id listed under name.
func (m postings[K]) each(name K, fn func(uint32)) {
	p, ok := m[name]
	switch {
	case !ok:
	case p.many == nil:
		fn(p.one)
	default:
		p.many.each(fn)
	}
}

func (s *idSet) add(id uint32, space int) {
	switch {
	case s.bits != nil:
		w := int(id / 64)
		for w >= len(s.bits) {
			s.bits = append(s.bits, 0)
		}
		if s.bits[w]&(1<<(id%64)) == 0 {
			s.bits[w] |= 1 << (id % 64)
			s.n++
		}
	case s.set != nil:
		s.set[id] = struct{}{}
		if len(s.set) > postingSliceMax && len(s.set)*denseEvery >= space {
			s.toBits(space)
		}
	case slices.Contains(s.few, id):
	case len(s.few) < postingSliceMax:
		s.few = append(s.few, id)
	default:
		s.set = make(map[uint32]struct{}, 2*postingSliceMax)
		for _, x := range s.few {
			s.set[x] = struct{}{}
		}
		s.set[id] = struct{}{}
		s.few = nil
	}
}

func (s *idSet) remove(id uint32, space int) {
	switch {
	case s.bits != nil:
		if w := int(id / 64); w < len(s.bits) && s.bits[w]&(1<<(id%64)) != 0 {
			s.bits[w] &^= 1 << (id % 64)
			s.n--
		}
		if s.n*sparseEvery < space {
			s.toSet()
		}
	case s.set != nil:
		delete(s.set, id)
	default:
		for i, x := range s.few {
			if x == id {
				last := len(s.few) - 1
				s.few[i] = s.few[last]
				s.few = s.few[:last]
				break
			}
		}
	}
}

// only returns how many ids s holds, and the last one met.
func (s *idSet) only() (last uint32, n int) {
	switch {
	case s.bits != nil:
		if s.n == 1 {
			s.each(func(id uint32) { last = id })
		}
		return last, s.n
	case s.set != nil:
		for id := range s.set {
			last = id
			if len(s.set) > 1 {
				break
			}
		}
		return last, len(s.set)
	default:
		if len(s.few) > 0 {
			last = s.few[len(s.few)-1]
		}
		return last, len(s.few)
	}
}

func (s *idSet) each(fn func(uint32)) {
	for _, id := range s.few {
		fn(id)
	}
	for id := range s.set {
		fn(id)
	}
	for w, word := range s.bits {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			fn(uint32(w*64 + b))
			word &^= 1 << b
		}
	}
}

func (s *idSet) toBits(space int) {
	s.bits = make([]uint64, (space+63)/64)
	for id := range s.set {
		s.bits[id/64] |= 1 << (id % 64)
	}
	s.n, s.set = len(s.set), nil
}

func (s *idSet) toSet() {
	set := make(map[uint32]struct{}, s.n)
	s.each(func(id uint32) { set[id] = struct{}{} })
	s.set, s.bits, s.n = set, nil, 0
}
