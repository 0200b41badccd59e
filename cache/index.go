package cache

import (
	"hash/maphash"
	"sort"
	"strings"
	"sync"
)

// index maps hosts and tags to the keys stored under them, so that a
// revalidation by tag or prefix finds every page without scanning ristretto
// (which cannot list its keys). It mirrors the store exactly: an entry is
// added before its Set and removed when ristretto evicts or rejects that same
// version, or when the key is deleted.
type index struct {
	mu     sync.Mutex                     // guards the fields below
	byKey  map[string]indexed             // key -> what was recorded for it
	byHost map[string]map[string]struct{} // host -> keys
	byTag  map[string]postings[string]    // host -> tag -> ids of keys
	byLink map[string]postings[uint64]    // host -> hash of a linked target -> ids of the keys of the pages linking to it
	keyOf  []string                       // id -> key ("" when free)
	free   []uint32                       // ids to hand out again
	bytes  int64                          // sum of recorded costs
	seed   maphash.Seed                   // of the link targets' hashes
}

// indexed is what the index holds of a key: the entry it recorded (whose
// version, tags, links and cost it forgets again), and the key's id in
// byTag and byLink.
type indexed struct {
	e  *Entry
	id uint32
}

func newIndex() *index {
	return &index{
		byKey:  make(map[string]indexed),
		byHost: make(map[string]map[string]struct{}),
		byTag:  make(map[string]postings[string]),
		byLink: make(map[string]postings[uint64]),
		seed:   maphash.MakeSeed(),
	}
}

// add records e, replacing whatever was recorded for its key.
func (x *index) add(e *Entry) {
	key := e.Key.String()
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byKey[key]; ok {
		x.removeLocked(key, old)
	}
	rec := indexed{e: e, id: x.newID(key)}
	x.byKey[key] = rec
	addTo(x.byHost, e.Key.Host, key)
	space := len(x.keyOf)
	if t := e.Tags(); len(t) > 0 {
		tags := of(x.byTag, e.Key.Host)
		for _, t := range t {
			tags.add(t, rec.id, space)
		}
	}
	if l := e.Links(); l != "" {
		links := of(x.byLink, e.Key.Host)
		for l := range l.All() {
			links.add(x.linkHash(l), rec.id, space)
		}
	}
	x.bytes += e.cost
}

// removeIf forgets key if what is recorded for it is version (or any
// version, when version is 0).
func (x *index) removeIf(key string, version uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byKey[key]; ok && (version == 0 || old.e.version == version) {
		x.removeLocked(key, old)
	}
}

func (x *index) removeLocked(key string, rec indexed) {
	delete(x.byKey, key)
	removeFrom(x.byHost, rec.e.Key.Host, key)
	space := len(x.keyOf)
	if tags := x.byTag[rec.e.Key.Host]; tags != nil {
		for _, t := range rec.e.Tags() {
			tags.remove(t, rec.id, space)
		}
		if len(tags) == 0 {
			delete(x.byTag, rec.e.Key.Host)
		}
	}
	if links := x.byLink[rec.e.Key.Host]; links != nil {
		for l := range rec.e.Links().All() {
			links.remove(x.linkHash(l), rec.id, space)
		}
		if len(links) == 0 {
			delete(x.byLink, rec.e.Key.Host)
		}
	}
	x.keyOf[rec.id] = ""
	x.free = append(x.free, rec.id)
	x.bytes -= rec.e.cost
}

// newID returns an id for key, reusing a freed one first. The caller holds x.mu.
func (x *index) newID(key string) uint32 {
	if n := len(x.free); n > 0 {
		id := x.free[n-1]
		x.free = x.free[:n-1]
		x.keyOf[id] = key
		return id
	}
	x.keyOf = append(x.keyOf, key)
	return uint32(len(x.keyOf) - 1)
}

// linkHash is what byLink lists a link target under: its 64-bit hash, not
// the string. Most targets are named by one page, and a string key of its
// own cost each of them more than its ids. Two targets with one hash (one
// chance in 2^64 for a pair) would only make linked=1 revalidate the pages
// linking to both: more refetches, never fewer.
func (x *index) linkHash(target string) uint64 { return maphash.String(x.seed, target) }

// of returns host's postings in m, adding them when there are none.
func of[K comparable](m map[string]postings[K], host string) postings[K] {
	p := m[host]
	if p == nil {
		p = make(postings[K])
		m[host] = p
	}
	return p
}

// keysOfIDs returns the keys listed under name in host's postings of m,
// sorted. The caller holds x.mu.
func keysOfIDs[K comparable](x *index, m map[string]postings[K], host string, name K) []Key {
	var names []string
	m[host].each(name, func(id uint32) { names = append(names, x.keyOf[id]) })
	sort.Strings(names)
	keys := make([]Key, len(names))
	for i, k := range names {
		keys[i] = x.byKey[k].e.Key
	}
	return keys
}

// byTagKeys returns the keys of host's pages tagged tag, sorted.
func (x *index) byTagKeys(host, tag string) []Key {
	x.mu.Lock()
	defer x.mu.Unlock()
	return keysOfIDs(x, x.byTag, host, tag)
}

// byPrefixKeys returns the keys of host's pages whose path starts with prefix, sorted.
func (x *index) byPrefixKeys(host, prefix string) []Key {
	x.mu.Lock()
	defer x.mu.Unlock()
	keys := x.byHost[host]
	return x.sortedKeys(keys, func(k Key) bool { return strings.HasPrefix(k.Path, prefix) })
}

// victim returns a key other than keep when the recorded bytes exceed max,
// or "". Map iteration order makes the choice random.
func (x *index) victim(keep string, max int64) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.bytes <= max {
		return ""
	}
	for k := range x.byKey {
		if k != keep {
			return k
		}
	}
	return ""
}

func (x *index) stats() (entries int, bytes int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byKey), x.bytes
}

func addTo(m map[string]map[string]struct{}, name, key string) {
	set := m[name]
	if set == nil {
		set = make(map[string]struct{})
		m[name] = set
	}
	set[key] = struct{}{}
}

func removeFrom(m map[string]map[string]struct{}, name, key string) {
	if set := m[name]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(m, name)
		}
	}
}

// sortedKeys returns the keys of set that keep accepts (all, when keep is
// nil), sorted by their string form. The caller holds x.mu.
func (x *index) sortedKeys(set map[string]struct{}, keep func(Key) bool) []Key {
	names := make([]string, 0, len(set))
	for k := range set {
		if keep == nil || keep(x.byKey[k].e.Key) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	keys := make([]Key, len(names))
	for i, k := range names {
		keys[i] = x.byKey[k].e.Key
	}
	return keys
}
