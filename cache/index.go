package cache

import (
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
	byTag  postings                       // host + "\x00" + tag -> ids of keys
	byLink postings                       // host + "\x00" + linked target -> ids of the keys of the pages linking to it
	keyOf  []string                       // id -> key ("" when free)
	free   []uint32                       // ids to hand out again
	bytes  int64                          // sum of recorded costs
}

type indexed struct {
	version uint64
	key     Key
	id      uint32 // the key's id in byTag and byLink
	tags    []string
	links   Links
	cost    int64
}

func newIndex() *index {
	return &index{
		byKey:  make(map[string]indexed),
		byHost: make(map[string]map[string]struct{}),
		byTag:  make(postings),
		byLink: make(postings),
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
	rec := indexed{version: e.version, key: e.Key, id: x.newID(key), tags: e.Tags(), links: e.Links(), cost: e.cost}
	x.byKey[key] = rec
	addTo(x.byHost, rec.key.Host, key)
	for _, t := range rec.tags {
		x.byTag.add(rec.key.Host+"\x00"+t, rec.id)
	}
	for l := range rec.links.All() {
		x.byLink.add(rec.key.Host+"\x00"+l, rec.id)
	}
	x.bytes += rec.cost
}

// removeIf forgets key if what is recorded for it is version (or any
// version, when version is 0).
func (x *index) removeIf(key string, version uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byKey[key]; ok && (version == 0 || old.version == version) {
		x.removeLocked(key, old)
	}
}

func (x *index) removeLocked(key string, rec indexed) {
	delete(x.byKey, key)
	removeFrom(x.byHost, rec.key.Host, key)
	for _, t := range rec.tags {
		x.byTag.remove(rec.key.Host+"\x00"+t, rec.id)
	}
	for l := range rec.links.All() {
		x.byLink.remove(rec.key.Host+"\x00"+l, rec.id)
	}
	x.keyOf[rec.id] = ""
	x.free = append(x.free, rec.id)
	x.bytes -= rec.cost
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

// keysOfIDs returns the keys listed under name in m, sorted. The caller
// holds x.mu.
func (x *index) keysOfIDs(m postings, name string) []Key {
	var names []string
	m.each(name, func(id uint32) { names = append(names, x.keyOf[id]) })
	sort.Strings(names)
	keys := make([]Key, len(names))
	for i, k := range names {
		keys[i] = x.byKey[k].key
	}
	return keys
}

// byTagKeys returns the keys of host's pages tagged tag, sorted.
func (x *index) byTagKeys(host, tag string) []Key {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.keysOfIDs(x.byTag, host+"\x00"+tag)
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
		if keep == nil || keep(x.byKey[k].key) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	keys := make([]Key, len(names))
	for i, k := range names {
		keys[i] = x.byKey[k].key
	}
	return keys
}
