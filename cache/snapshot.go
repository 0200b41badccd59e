package cache

// What a snapshot of the store needs from it, and nothing of its internals:
// Each to export every stored page, Restore to import one keeping its
// generation. See package snapshot and docs/behaviour.md#restarts-and-deploys.

// Each calls fn with every stored page (every variant of every key) until
// fn returns false. It holds no lock while fn runs: the keys are listed
// first, under the index's lock for as long as a copy of them takes, and
// each entry is then read as a hit reads it, so hits and fills go on
// meanwhile. A page stored or evicted during the walk may or may not be
// seen; each page seen is whole (pages are immutable once stored).
func (s *Store) Each(fn func(*Page) bool) {
	for _, key := range s.index.keys() {
		e := s.get(key)
		if e == nil {
			continue // evicted or deleted since the keys were listed
		}
		for _, p := range e.Variants {
			if !fn(p) {
				return
			}
		}
	}
}

// Restore stores p, a page loaded from a snapshot, with the generation it
// had when it was saved: [Store.RestoreAll] of one page.
func (s *Store) Restore(p *Page) PutResult { return s.RestoreAll([]*Page{p})[0] }

// RestoreAll stores pages loaded from a snapshot, with the generations they
// had when they were saved, and returns what it did with each. The store's
// own generations then continue above them, so that a fetch that starts
// after the restore (a revalidation) always replaces them, and the variants
// of one key keep the order they were fetched in. Unlike Put, it never
// evicts a page to make room: a page that would take the store past its
// budget is NotAdmitted. A page saved stale must be marked before.
//
// It waits for ristretto once for all the pages rather than once for each
// (a restart loads many thousands): call it before the store serves, while
// nothing else stores pages.
func (s *Store) RestoreAll(pages []*Page) []PutResult {
	results := make([]PutResult, len(pages))
	var top uint64
	for _, p := range pages {
		top = max(top, p.Gen)
	}
	for {
		cur := s.gen.Load()
		if cur >= top || s.gen.CompareAndSwap(cur, top) {
			break
		}
	}

	type pending struct {
		entry *Entry
		pages []int // indexes into pages and results
	}
	byKey := make(map[string]*pending, len(pages))
	var order []string
	_, used := s.index.stats()
	for i, p := range pages {
		key := p.Key.String()
		pe := byKey[key]
		cur := s.get(key)
		if pe != nil {
			cur = pe.entry
		}
		next, result := s.merge(cur, p)
		if result == Superseded {
			results[i] = Superseded
			continue
		}
		grown := next.cost
		if cur != nil {
			grown -= cur.cost
		}
		if used+grown > s.maxBytes {
			results[i] = NotAdmitted
			continue
		}
		used += grown
		results[i] = result
		if pe == nil {
			pe = &pending{}
			byKey[key] = pe
			order = append(order, key)
		}
		pe.entry = next
		pe.pages = append(pe.pages, i)
	}
	for _, key := range order {
		e := byKey[key].entry
		mu := s.lock(key)
		mu.Lock()
		s.index.add(e) // before ristretto learns of it, as in put
		s.rc.Set(key, e, e.cost)
		mu.Unlock()
	}
	s.rc.Wait()
	for _, key := range order {
		pe := byKey[key]
		if got := s.get(key); got != pe.entry {
			s.index.removeIf(key, pe.entry.version)
			if got != nil {
				s.index.add(got)
			}
			for _, i := range pe.pages {
				results[i] = NotAdmitted
			}
		}
	}
	return results
}

// MaxBytes is the budget the store keeps its pages within.
func (s *Store) MaxBytes() int64 { return s.maxBytes }

// keys lists the stored keys in their string form.
func (x *index) keys() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	keys := make([]string, 0, len(x.byKey))
	for k := range x.byKey {
		keys = append(keys, k)
	}
	return keys
}
