package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// Shared is what the replicas of a cluster share (REDIS_URL; the cluster
// package implements it). Only misses, refetches and revalidations call
// it, never a hit. Every call is bounded by a short deadline and fails at
// once while the cluster is unreachable: the replica then works alone.
type Shared interface {
	// Node is this replica's name (NODE_ID).
	Node() string
	// Gen returns a cluster-wide generation for a fetch of key that starts
	// now; held is the highest generation held here for key.
	Gen(ctx context.Context, key cache.Key, held uint64) (uint64, error)
	// LocalGen is the generation of a fetch made while Gen fails.
	LocalGen(held uint64) uint64
	// Load returns the variants of key stored for the cluster.
	Load(ctx context.Context, key cache.Key) ([]*cache.Page, error)
	// Variants returns the variants of key stored for the cluster, for a
	// revalidation to refetch them all.
	Variants(ctx context.Context, key cache.Key) ([]*cache.Page, error)
	// Lock takes the cluster's fill lock of key for a scheme; got false:
	// another replica fills it.
	Lock(ctx context.Context, key cache.Key, https bool) (release func(), got bool, err error)
	// Await waits, at most limit, for the lock holder's page that match
	// accepts; nil when there is none.
	Await(ctx context.Context, key cache.Key, https bool, match func(*cache.Page) bool, limit time.Duration) *cache.Page
	// Save stores p for the cluster unless a newer version is stored.
	Save(ctx context.Context, p *cache.Page) error
	// Publish makes a revalidation the cluster's (page for a refetch, gen
	// for a purge or soft mark) and, when wait, waits for every live
	// replica to confirm; err when the cluster is unreachable.
	Publish(ctx context.Context, mode revalidation.Mode, key cache.Key, page *cache.Page, gen uint64, wait bool) (confirmed, missing []string, err error)
}

// genFor returns the generation of a fetch of key that starts now: the
// store's own on a single node, the cluster's otherwise.
func (h *Handler) genFor(ctx context.Context, key cache.Key) uint64 {
	if h.shared == nil {
		return h.store.NextGen()
	}
	held := h.HeldGen(key)
	gen, err := h.shared.Gen(ctx, key, held)
	if err != nil {
		return h.shared.LocalGen(held)
	}
	return gen
}

// share publishes a revalidation of key done here and records on res
// which replicas hold it.
func (h *Handler) share(ctx context.Context, res *revalidation.Result, mode revalidation.Mode, key cache.Key, p *cache.Page, gen uint64, wait bool) {
	if h.shared == nil {
		return
	}
	confirmed, missing, err := h.shared.Publish(ctx, mode, key, p, gen, wait)
	res.Replicas = confirmed
	if err != nil {
		res.Alone = h.shared.Node()
		return
	}
	res.Unconfirmed = missing
}

// sharedFill is runFill for a cluster: the page is read from the cluster
// before the origin, and one replica at a time fetches it (the lock's
// holder); the others wait for its page, and fetch it themselves only
// when none comes (not storable, failed) or the cluster is unreachable.
func (h *Handler) sharedFill(fk flightKey, f *fill, key cache.Key, https bool, hdr http.Header, req *http.Request) {
	ctx := context.WithoutCancel(req.Context())
	match := func(p *cache.Page) bool { return p.Matches(https, hdr) }
	if pages, err := h.shared.Load(ctx, key); err == nil {
		if p := h.takePeers(pages, match); p != nil {
			h.deliver(fk, f, p)
			return
		}
	}
	release, got, err := h.shared.Lock(ctx, key, https)
	if got {
		// The holder before us may have stored the page and let go
		// between our read and our lock: read again before the origin.
		if pages, err := h.shared.Load(ctx, key); err == nil {
			if p := h.takePeers(pages, match); p != nil {
				release()
				h.deliver(fk, f, p)
				return
			}
		}
	}
	if err == nil && !got {
		if p := h.shared.Await(ctx, key, https, match, h.origin.timeout); p != nil {
			h.deliver(fk, f, p)
			return
		}
	}
	gen := h.genFor(ctx, key)
	// The page is in Redis before its visitors are answered: a
	// revalidation sent to another replica just after finds this variant
	// among those to refetch (saved after, it could miss it, and the 200
	// would leave this replica's copy old). The miss path already waits
	// for Redis twice (Load, Lock); this is a third.
	h.runFill(fk, f, key, https, req, gen, func(p *cache.Page) { h.shared.Save(ctx, p) })
	if release != nil {
		release()
	}
}

// takePeers stores every variant a peer stored and returns the one match accepts.
func (h *Handler) takePeers(pages []*cache.Page, match func(*cache.Page) bool) *cache.Page {
	var mine *cache.Page
	for _, p := range pages {
		if match(p) {
			mine = p
			continue
		}
		h.ApplyPage(p)
	}
	return mine
}

// deliver ends fill f with a page a peer fetched.
func (h *Handler) deliver(fk flightKey, f *fill, p *cache.Page) {
	defer h.flights.finish(fk, f)
	f.page = p
	switch h.store.PutIf(p, f.superseded.admit) {
	case cache.Stored, cache.Replaced, cache.Superseded:
		f.stored = true
		h.passes.remove(p.Key)
	case cache.Withdrawn:
		f.withdrawn = true
	}
}

// ApplyPage stores a page a peer fetched unless a newer generation of its
// variant is held, and returns the generation held for it after.
func (h *Handler) ApplyPage(p *cache.Page) uint64 {
	switch h.store.PutIf(p, nil) {
	case cache.Stored, cache.Replaced:
		h.passes.remove(p.Key)
	}
	id := p.VariantID()
	if e := h.store.Get(p.Key); e != nil {
		for _, v := range e.Variants {
			if v.VariantID() == id {
				return v.Gen
			}
		}
	}
	return 0
}

// ApplyMode applies a peer's purge or soft revalidation of key here.
func (h *Handler) ApplyMode(key cache.Key, mode revalidation.Mode) {
	switch mode {
	case revalidation.Purge:
		h.flights.supersede(key, dropFetch, true)
		h.store.Delete(key)
	case revalidation.Soft:
		h.flights.supersede(key, staleFetch, true)
		h.store.MarkStale(key)
	}
}

// HeldGen is the highest generation held among key's variants; 0: none.
func (h *Handler) HeldGen(key cache.Key) uint64 {
	var held uint64
	if e := h.store.Get(key); e != nil {
		for _, v := range e.Variants {
			held = max(held, v.Gen)
		}
	}
	return held
}

// MarkAllStale marks every stored page stale: each is answered STALE
// once, while one background refetch replaces it.
func (h *Handler) MarkAllStale() int {
	keys := h.store.Keys()
	for _, key := range keys {
		h.store.MarkStale(key)
	}
	return len(keys)
}

// Replay runs a revalidation of key again, for the whole cluster.
func (h *Handler) Replay(ctx context.Context, key cache.Key, mode revalidation.Mode) {
	switch mode {
	case revalidation.Purge:
		h.Purge(key)
	case revalidation.Soft:
		h.MarkStale(key)
	default:
		h.Refetch(ctx, key)
	}
}
