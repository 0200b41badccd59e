package cache

// LinkOverhead is what one link of a page costs beyond its bytes: the
// string header in the page and its entry in the store's reverse index.
const LinkOverhead = 64

// linkBytes is what a page's links count against CACHE_MAX_BYTES.
func linkBytes(links []string) int64 {
	var n int64
	for _, l := range links {
		n += int64(len(l)) + LinkOverhead
	}
	return n
}

// Links returns the union of the variants' links.
func (e *Entry) Links() []string {
	if len(e.Variants) == 1 {
		return e.Variants[0].Links
	}
	seen := map[string]bool{}
	var links []string
	for _, p := range e.Variants {
		for _, l := range p.Links {
			if !seen[l] {
				seen[l] = true
				links = append(links, l)
			}
		}
	}
	return links
}

// KeysOfHost returns the keys of every stored page of host, sorted.
func (s *Store) KeysOfHost(host string) []Key {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	return s.index.sortedKeys(s.index.byHost[host], nil)
}

// KeysLinkingTo returns the keys of host's stored pages whose HTML (or
// Location header) links to target, the escaped path plus normalised
// query of a key of host ([Key.Target]), sorted.
func (s *Store) KeysLinkingTo(host, target string) []Key {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	return s.index.sortedKeys(s.index.byLink[host+"\x00"+target], nil)
}
