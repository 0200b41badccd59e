// Package cache stores rendered pages in memory: a ristretto cache made
// synchronous for its callers, a generation per page so that an older fetch
// never replaces a newer one, and a side index by host, tag and path prefix
// that follows every eviction.
package cache

import (
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// maxVariants bounds the Vary variants kept per key, so that a header with
// unbounded values (User-Agent) cannot multiply one page without limit.
const maxVariants = 32

// PutResult says what [Store.Put] did.
type PutResult int

const (
	// Stored means the key was not stored before and now is.
	Stored PutResult = iota
	// Replaced means an older version of the variant was replaced.
	Replaced
	// Superseded means a version from a newer fetch is already stored;
	// nothing changed.
	Superseded
	// NotAdmitted means ristretto refused the page (its admission policy
	// under memory pressure, a full write buffer, or a page larger than the
	// budget); nothing changed.
	NotAdmitted
	// Withdrawn means the caller's admit check declined the page at the
	// last moment (see [Store.PutIf]); nothing changed.
	Withdrawn
)

// String names r for logs and API answers.
func (r PutResult) String() string {
	switch r {
	case Stored:
		return "stored"
	case Replaced:
		return "replaced"
	case Superseded:
		return "superseded"
	case Withdrawn:
		return "withdrawn"
	default:
		return "not admitted"
	}
}

// Config sizes a Store. MaxBytes is required.
type Config struct {
	// MaxBytes is the budget for stored pages (CACHE_MAX_BYTES).
	MaxBytes int64
	// OnEvict, if not nil, is called once for each entry ristretto evicts
	// to stay within MaxBytes. It runs on ristretto's goroutine: keep it short.
	OnEvict func()
	// OnReject, if not nil, is called once for each entry ristretto's
	// admission policy refused.
	OnReject func()
}

// A Store holds pages by key. Its methods are safe for concurrent use, and
// it is synchronous: when Put returns Stored or Replaced the page is visible
// to every later Get; when Delete returns, it is gone.
type Store struct {
	maxBytes int64
	onEvict  func()
	rc       *ristretto.Cache[string, *Entry]
	index    *index
	gen      atomic.Uint64 // last generation handed out
	seed     maphash.Seed
	locks    [256]sync.Mutex // serialise Put and Delete per key (by hash)
	keys     lookupKeys      // room to build a key's string form in
}

// New builds a Store.
func New(cfg Config) (*Store, error) {
	if cfg.MaxBytes <= 0 {
		return nil, fmt.Errorf("cache: MaxBytes must be positive, got %d", cfg.MaxBytes)
	}
	s := &Store{maxBytes: cfg.MaxBytes, onEvict: cfg.OnEvict, index: newIndex(), seed: maphash.MakeSeed()}
	// About ten counters per page that may be stored (ristretto's advice:
	// 10x the number of items), counting 8 KiB a page: a gzip-stored page
	// of 16-40 KiB of HTML costs 5-10 KiB with its headers and overhead.
	// The sketch only steers admission when ristretto itself must evict;
	// trim keeps the store under budget first, so an oversized sketch
	// would be memory spent for nothing (its pages become resident as
	// keys touch them).
	counters := min(max(cfg.MaxBytes/8192*10, 10_000), 50_000_000)
	rc, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		NumCounters:        counters,
		MaxCost:            cfg.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict: func(item *ristretto.Item[*Entry]) {
			if item.Value == nil {
				// A victim the policy still knew but the store had already
				// dropped (a Delete whose policy update is queued).
				return
			}
			s.index.removeIf(item.Value.Key.String(), item.Value.version)
			if cfg.OnEvict != nil {
				cfg.OnEvict()
			}
		},
		OnReject: func(item *ristretto.Item[*Entry]) {
			// Put verifies and cleans up after itself; this catches the
			// rejections Put cannot see, and is a no-op otherwise.
			if item.Value == nil {
				return
			}
			s.index.removeIf(item.Value.Key.String(), item.Value.version)
			if cfg.OnReject != nil {
				cfg.OnReject()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	s.rc = rc
	return s, nil
}

// NextGen hands out a generation; take it when a fetch starts.
func (s *Store) NextGen() uint64 { return s.gen.Add(1) }

// Get returns the entry stored under key, or nil.
func (s *Store) Get(key Key) *Entry {
	// Built in lent room and looked up through a view of it: a hit
	// allocates nothing.
	kb := s.keys.get()
	*kb = key.Append(*kb)
	e := s.get(view(*kb))
	s.keys.put(kb)
	return e
}

// get returns the entry stored under the string form of a key, or nil.
func (s *Store) get(key string) *Entry {
	e, _ := s.rc.Get(key)
	return e
}

// Put stores p as the variant of its key that p.VariantID names, unless a
// page from a newer fetch (higher Gen) is already stored there. Variants
// whose Vary names differ from p's are dropped: the origin's policy changed.
func (s *Store) Put(p *Page) PutResult { return s.PutIf(p, nil) }

// PutIf is Put, but admit, when not nil, is called with the key's lock
// held just before p is stored: false stores nothing (Withdrawn), and admit
// may still change p (mark it stale). A purge or soft mark that takes the
// key's lock (Delete, MarkStale) after a caller flagged its fetch is thus
// never undone by that fetch's late Put.
func (s *Store) PutIf(p *Page, admit func(*Page) bool) PutResult {
	result := s.put(p, admit)
	if result == Replaced || result == Stored {
		s.trim(p.Key.String())
	}
	return result
}

// trim evicts other keys, at random, while the stored pages count more than
// the budget. ristretto evicts only to admit a new key: a key that grows in
// place (a new Vary variant, a larger replacement) would otherwise take the
// store past CACHE_MAX_BYTES until some new key arrives.
func (s *Store) trim(keep string) {
	for range 1024 {
		victim := s.index.victim(keep, s.maxBytes)
		if victim == "" {
			return
		}
		if s.delete(victim) && s.onEvict != nil {
			s.onEvict()
		}
	}
}

func (s *Store) put(p *Page, admit func(*Page) bool) PutResult {
	key := p.Key.String()
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	if admit != nil && !admit(p) {
		return Withdrawn
	}

	next, result := s.merge(s.get(key), p)
	if result == Superseded {
		return Superseded
	}

	// The index learns of the entry before ristretto does, so an eviction
	// racing with this Put finds it to remove.
	s.index.add(next)
	s.rc.Set(key, next, next.cost)
	// A new key sits in ristretto's buffer until processed, and may then be
	// rejected by its admission policy: wait, then verify.
	s.rc.Wait()
	if got := s.get(key); got != next {
		s.index.removeIf(key, next.version)
		if got != nil {
			s.index.add(got)
		}
		return NotAdmitted
	}
	return result
}

// merge returns the entry that storing p over cur (nil: none) gives, and
// Stored, Replaced, or Superseded (then no entry).
func (s *Store) merge(cur *Entry, p *Page) (*Entry, PutResult) {
	next := &Entry{Key: p.Key, Variants: []*Page{p}, version: s.NextGen()}
	result := Stored
	if cur != nil {
		id := p.VariantID()
		for _, v := range cur.Variants {
			if v.VariantID() == id {
				if v.Gen > p.Gen {
					return nil, Superseded
				}
				result = Replaced
				continue
			}
			// Another scheme's variants stay; of the same scheme, only
			// those selected by the same Vary names (else the origin's
			// policy changed).
			if (v.HTTPS != p.HTTPS || sameNames(v.Vary, p.Vary)) && len(next.Variants) < maxVariants {
				next.Variants = append(next.Variants, v)
			}
		}
	}
	for _, v := range next.Variants {
		next.cost += v.Cost()
	}
	next.cost += entryOverhead + int64(len(p.Key.String()))
	return next, result
}

// Delete removes every variant of key and reports whether it was stored.
func (s *Store) Delete(key Key) bool { return s.delete(key.String()) }

func (s *Store) delete(key string) bool {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	had := s.get(key) != nil
	s.rc.Del(key)
	s.rc.Wait() // Del's policy update is queued too: wait for it
	s.index.removeIf(key, 0)
	return had
}

// MarkStale marks every variant of key stale and reports whether it was stored.
func (s *Store) MarkStale(key Key) bool {
	ks := key.String()
	mu := s.lock(ks)
	mu.Lock()
	defer mu.Unlock()
	e := s.get(ks)
	if e == nil {
		return false
	}
	for _, p := range e.Variants {
		p.MarkStale()
	}
	return true
}

// KeysByTag returns the keys of host's stored pages tagged tag.
func (s *Store) KeysByTag(host, tag string) []Key { return s.index.byTagKeys(host, tag) }

// KeysByPrefix returns the keys of host's stored pages whose escaped path
// starts with prefix.
func (s *Store) KeysByPrefix(host, prefix string) []Key {
	return s.index.byPrefixKeys(host, prefix)
}

// Stats reports the number of stored keys and the bytes they count.
func (s *Store) Stats() (entries int, bytes int64) { return s.index.stats() }

// Close stops ristretto's goroutines. The Store must not be used after.
func (s *Store) Close() { s.rc.Close() }

func (s *Store) lock(key string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
}

func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
