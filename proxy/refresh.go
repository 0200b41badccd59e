package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/purge"
)

// refreshRetry is how long a page whose background refresh failed waits
// before a visitor may start another: a failing origin is not hammered.
const refreshRetry = 2 * time.Second

// Refetch fetches every stored variant of key (or the key itself, when not
// stored) with fetches that start now, and stores the results: SPEC promise
// 2. It never joins a fill in flight, and marks those fills superseded so
// that their older answers are not stored after it. A failure keeps the
// stored page (promise 4).
func (h *Handler) Refetch(ctx context.Context, key cache.Key) []purge.Result {
	key = h.canonical(key)
	ks := key.String()
	h.flights.supersede(ks, dropFetch, false)
	var varies []http.Header
	if e := h.store.Get(ks); e != nil {
		for _, p := range e.Variants {
			varies = append(varies, varyHeader(p))
		}
	} else {
		varies = []http.Header{nil}
	}
	results := make([]purge.Result, 0, len(varies))
	for _, vary := range varies {
		results = append(results, h.refetch(ctx, key, vary))
	}
	return results
}

// MarkStale marks every variant of key stale: the next request for it is
// answered STALE and starts one background refetch.
func (h *Handler) MarkStale(key cache.Key) []purge.Result {
	key = h.canonical(key)
	ks := key.String()
	// Fetches in flight read the page before this mark: what they store
	// is stored marked, so the mark is not lost (promise 2).
	h.flights.supersede(ks, staleFetch, true)
	h.store.MarkStale(ks)
	return []purge.Result{{Path: key.Target(), Outcome: "marked"}}
}

// Purge removes every variant of key; the next request fills it again.
func (h *Handler) Purge(key cache.Key) []purge.Result {
	key = h.canonical(key)
	ks := key.String()
	// Fetches in flight read the page before this purge: they must not
	// store it again after it (promise 2).
	h.flights.supersede(ks, dropFetch, true)
	h.store.Delete(ks)
	return []purge.Result{{Path: key.Target(), Outcome: "purged"}}
}

// SupersedeInFlight reaches the fetches in flight for host's keys that are
// not stored yet and whose escaped path starts with one of prefixes, or
// whose page will carry one of tags: they read the origin before this
// call, which the index cannot show them to. Their pages are then not
// stored (mode purge or refetch: the next request fills afresh) or stored
// marked stale (soft). See [purge.InFlight].
func (h *Handler) SupersedeInFlight(host string, tags, prefixes []string, mode string) {
	if len(tags) == 0 && len(prefixes) == 0 {
		return
	}
	level := dropFetch
	if mode == "soft" {
		level = staleFetch
	}
	unstored := func(ks string) bool { return h.store.Get(ks) == nil }
	h.flights.supersedeUnstored(unstored, func(ks string) (bool, []string) {
		key := cache.ParseKey(ks)
		if key.Host != host {
			return false, nil
		}
		for _, prefix := range prefixes {
			if strings.HasPrefix(key.Path, prefix) {
				return true, nil
			}
		}
		return false, tags
	}, level)
}

// refetch fetches one variant of key and stores it.
func (h *Handler) refetch(ctx context.Context, key cache.Key, vary http.Header) purge.Result {
	res := purge.Result{Path: key.Target(), Outcome: "failed"}
	// The generation is taken before waiting for a slot: this fetch is
	// newer than any fill that started before the revalidation arrived.
	gen := h.store.NextGen()
	superseded, done := h.flights.track(key.String())
	defer done()
	if err := h.refetchs.Acquire(ctx, 1); err != nil {
		res.Error = err.Error()
		return res
	}
	start := h.now()
	req := h.origin.fillRequest(ctx, key, nil, vary)
	got, err := h.origin.fetch(ctx, req, h.maxObject)
	defer got.done() // the body is counted until its page is stored or dropped
	h.refetchs.Release(1)
	h.metrics.originDone("refetch", got, err, h.now().Sub(start))
	if err != nil {
		res.Error = describe(err) + "; previous version kept"
		h.log.Warn("refetch failed", "key", key.String(), "err", err)
		return res
	}
	res.Status = got.status
	p, reason := h.builder.build(key, got, vary, gen, h.now())
	if reason != "" {
		if !h.builder.statuses[got.status] {
			res.Error = fmt.Sprintf("origin answered %d; previous version kept", got.status)
		} else {
			res.Error = "response not storable (" + reason + "); previous version kept"
		}
		return res
	}
	switch h.store.PutIf(p, superseded.admit) {
	case cache.Stored:
		res.Outcome = "stored"
	case cache.Replaced, cache.Superseded, cache.Withdrawn:
		// Superseded: a fetch that started later is stored: newer still.
		// Withdrawn: a purge or invalidation that arrived later removed
		// the key: the next request fills it from a newer fetch.
		res.Outcome = "replaced"
	default:
		res.Error = "the cache did not admit the page (memory budget)"
		return res
	}
	h.passes.remove(key.String())
	return res
}

// refreshInBackground refetches p's variant for a STALE answer. The caller
// holds p's refresh claim.
func (h *Handler) refreshInBackground(p *cache.Page) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		res := h.refetch(h.bgCtx, p.Key, varyHeader(p))
		if res.Outcome == "failed" {
			p.ReleaseRefresh(h.now().Add(refreshRetry))
		}
	}()
}

// canonical rewrites key's path as the origin will receive it, so that the
// page is stored under the key a visitor's request computes.
func (h *Handler) canonical(key cache.Key) cache.Key {
	key.Path = h.origin.url(key.Path, "").EscapedPath()
	return key
}

// varyHeader rebuilds the request headers that select p's variant.
func varyHeader(p *cache.Page) http.Header {
	if len(p.Vary) == 0 {
		return nil
	}
	h := make(http.Header, len(p.Vary))
	for i, name := range p.Vary {
		if p.VaryValues[i] != cache.VaryAbsent {
			h[name] = []string{p.VaryValues[i]}
		}
	}
	return h
}

// describe says in a few words why an origin fetch failed.
func describe(err error) string {
	switch {
	case errors.Is(err, errTooLarge), errors.Is(err, errBuffersFull):
		return err.Error()
	case statusFor(err) == http.StatusGatewayTimeout:
		return "origin timed out"
	}
	return "origin request failed: " + err.Error()
}
