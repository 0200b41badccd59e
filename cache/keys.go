package cache

// Keys returns the key of every stored page, in no order: a snapshot of
// the index, for work over the whole store (a cluster replica that may
// have missed revalidations marks them all stale).
func (s *Store) Keys() []Key {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	keys := make([]Key, 0, len(s.index.byKey))
	for _, rec := range s.index.byKey {
		keys = append(keys, rec.e.Key)
	}
	return keys
}
