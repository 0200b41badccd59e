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
// had when it was saved. The store's own generations then continue above
// p.Gen, so that a fetch that starts after the restore (a revalidation)
// always replaces it, and the variants of one key keep the order they were
// fetched in. Unlike Put, Restore never evicts another page to make room:
// a page that would take the store past its budget is NotAdmitted. Mark p
// stale before restoring it if it was saved stale.
func (s *Store) Restore(p *Page) PutResult {
	for {
		cur := s.gen.Load()
		if cur >= p.Gen || s.gen.CompareAndSwap(cur, p.Gen) {
			break
		}
	}
	key := p.Key.String()
	if _, bytes := s.index.stats(); bytes+p.Cost()+entryOverhead+int64(len(key)) > s.maxBytes {
		return NotAdmitted
	}
	return s.put(p, nil)
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
