package cache

// postings maps a name (a host's tag, or a link target) to the ids of the
// stored keys that carry it. An id is 4 bytes where a key string in a set
// costs about 30: pages link to some fifty targets each, so the reverse
// index of links would otherwise cost more than the gzip body of a page.
// A list stays a slice while it is short (most targets are named by one or
// two pages) and becomes a set when it grows (a menu link is on every
// page), so that removing an id never scans a long list.
type postings map[string]posting

// posting is one name's ids: a slice while short, then a set.
type posting struct {
	few  []uint32
	many map[uint32]struct{}
}

// postingSliceMax is the longest list kept as a slice.
const postingSliceMax = 16

func (m postings) add(name string, id uint32) {
	p := m[name]
	switch {
	case p.many != nil:
		p.many[id] = struct{}{}
		return // the map is shared: nothing to write back
	case len(p.few) < postingSliceMax:
		p.few = append(p.few, id)
	default:
		p.many = make(map[uint32]struct{}, 2*postingSliceMax)
		for _, x := range p.few {
			p.many[x] = struct{}{}
		}
		p.many[id] = struct{}{}
		p.few = nil
	}
	m[name] = p
}

func (m postings) remove(name string, id uint32) {
	p, ok := m[name]
	if !ok {
		return
	}
	if p.many != nil {
		delete(p.many, id)
		if len(p.many) == 0 {
			delete(m, name)
		}
		return
	}
	for i, x := range p.few {
		if x == id {
			last := len(p.few) - 1
			p.few[i] = p.few[last]
			p.few = p.few[:last]
			break
		}
	}
	if len(p.few) == 0 {
		delete(m, name)
		return
	}
	m[name] = p
}

// each calls fn with every id listed under name.
func (m postings) each(name string, fn func(uint32)) {
	p := m[name]
	for _, id := range p.few {
		fn(id)
	}
	for id := range p.many {
		fn(id)
	}
}
