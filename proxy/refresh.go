package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/forwarded"
	"github.com/isrproxy/isrproxy/revalidation"
)

// refreshRetry is how long a page whose background refresh failed waits
// before a visitor may start another: a failing origin is not hammered.
const refreshRetry = 2 * time.Second

// Refetch fetches every stored variant of key (or the key itself, when not
// stored) with fetches that start now, and stores the results
// (docs/promises.md#2-read-your-writes-revalidation). It never joins a fill
// in flight, and marks those fills superseded so that their older answers
// are not stored after it. A failure keeps the stored page
// (docs/promises.md#4-failure-keeps-the-last-good-page).
func (h *Handler) Refetch(ctx context.Context, key cache.Key) []revalidation.Result {
	key = h.canonical(key)
	h.flights.supersede(key, dropFetch, false)
	type variant struct {
		https bool
		vary  http.Header
	}
	var variants []variant
	seen := map[string]bool{}
	if e := h.store.Get(key); e != nil {
		for _, p := range e.Variants {
			seen[p.VariantID()] = true
			variants = append(variants, variant{p.HTTPS, varyHeader(p)})
		}
	}
	if h.shared != nil {
		// In a cluster, the variants other replicas hold are refetched
		// too: they must all serve the new version.
		if pages, err := h.shared.Variants(ctx, key); err == nil {
			for _, p := range pages {
				if id := p.VariantID(); !seen[id] {
					seen[id] = true
					variants = append(variants, variant{p.HTTPS, varyHeader(p)})
				}
			}
		}
	}
	if len(variants) == 0 {
		// Not stored: fetched for the scheme the revalidate call came
		// over (a CMS behind the same balancer as its visitors).
		variants = []variant{{https: h.httpsOnly || forwarded.FromContext(ctx)}}
	}
	results := make([]revalidation.Result, 0, len(variants))
	for _, v := range variants {
		results = append(results, h.refetch(ctx, key, v.https, v.vary, true))
	}
	return results
}

// MarkStale marks every variant of key stale: the next request for it is
// answered STALE and starts one background refetch.
func (h *Handler) MarkStale(key cache.Key) []revalidation.Result {
	key = h.canonical(key)
	// Fetches in flight read the page before this mark: what they store
	// is stored marked, so the mark is not lost.
	gen := h.genFor(context.Background(), key) // orders the mark before later fills, cluster-wide
	h.flights.supersede(key, staleFetch, true)
	h.store.MarkStale(key)
	res := revalidation.Result{Target: key.Target(), Outcome: revalidation.Marked}
	h.share(context.Background(), &res, revalidation.Soft, key, nil, gen, true)
	return []revalidation.Result{res}
}

// Purge removes every variant of key; the next request fills it again.
func (h *Handler) Purge(key cache.Key) []revalidation.Result {
	key = h.canonical(key)
	// Fetches in flight read the page before this purge: they must not
	// store it again after it.
	gen := h.genFor(context.Background(), key) // orders the purge before later fills, cluster-wide
	h.flights.supersede(key, dropFetch, true)
	h.store.Delete(key)
	res := revalidation.Result{Target: key.Target(), Outcome: revalidation.Purged}
	h.share(context.Background(), &res, revalidation.Purge, key, nil, gen, true)
	return []revalidation.Result{res}
}

// SupersedeInFlight reaches the fetches in flight for host's keys that are
// not stored yet and whose escaped path starts with one of prefixes, or
// whose page will carry one of tags: they read the origin before this
// call, which the index cannot show them to. Their pages are then not
// stored (mode purge or refetch: the next request fills afresh) or stored
// marked stale (soft).
func (h *Handler) SupersedeInFlight(host string, tags, prefixes []string, mode revalidation.Mode) {
	if len(tags) == 0 && len(prefixes) == 0 {
		return
	}
	level := dropFetch
	if mode == revalidation.Soft {
		level = staleFetch
	}
	unstored := func(key cache.Key) bool { return h.store.Get(key) == nil }
	h.flights.supersedeUnstored(unstored, func(key cache.Key) (bool, []string) {
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

// refetch fetches one variant of key and stores it. In a cluster it then
// publishes the page, and, when wait, waits for every live replica to hold it.
func (h *Handler) refetch(ctx context.Context, key cache.Key, https bool, vary http.Header, wait bool) revalidation.Result {
	target := key.Target()
	// The generation is taken before waiting for a slot: this fetch is
	// newer than any fill that started before the revalidation arrived.
	gen := h.genFor(ctx, key)
	superseded, done := h.flights.track(key)
	defer done()
	if err := h.refetchs.Acquire(ctx, 1); err != nil {
		return revalidation.Fail(target, revalidation.Failure{Reason: revalidation.Canceled, Detail: err.Error()})
	}
	start := h.now()
	req := h.origin.fillRequest(ctx, key, https, nil, vary)
	got, err := h.origin.fetch(ctx, req, h.maxObject)
	defer got.done() // the body is counted until its page is stored or dropped
	h.refetchs.Release(1)
	h.metrics.OriginDone("refetch", got.statusOf(err), h.now().Sub(start))
	if err != nil {
		h.log.Warn("refetch failed", "key", key.String(), "err", err)
		return revalidation.Fail(target, fetchFailure(err))
	}
	p, reason := h.builder.build(key, got, vary, gen, h.now())
	p.HTTPS = https
	if reason != "" {
		f := revalidation.Failure{Reason: revalidation.NotStorable, Detail: reason}
		if !h.builder.statuses[got.status] {
			f = revalidation.Failure{Reason: revalidation.OriginStatus, Status: got.status}
		}
		res := revalidation.Fail(target, f)
		res.Status = got.status
		return res
	}
	res := revalidation.Result{Target: target, Status: got.status}
	switch h.store.PutIf(p, superseded.admit) {
	case cache.Stored:
		res.Outcome = revalidation.Stored
	case cache.Replaced, cache.Superseded, cache.Withdrawn:
		// Superseded: a fetch that started later is stored: newer still.
		// Withdrawn: a purge or invalidation that arrived later removed
		// the key: the next request fills it from a newer fetch.
		res.Outcome = revalidation.Replaced
	default:
		res = revalidation.Fail(target, revalidation.Failure{Reason: revalidation.NotAdmitted})
		res.Status = got.status
		return res
	}
	h.passes.remove(key)
	h.share(ctx, &res, revalidation.Refetch, key, p, gen, wait)
	return res
}

// refreshInBackground refetches p's variant for a STALE answer. The caller
// holds p's refresh claim.
func (h *Handler) refreshInBackground(p *cache.Page) {
	h.bg.Add(1)
	go func() {
		defer h.bg.Done()
		res := h.refetch(h.bgCtx, p.Key, p.HTTPS, varyHeader(p), false)
		if res.Outcome == revalidation.Failed {
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

// fetchFailure classifies why an origin fetch failed.
func fetchFailure(err error) revalidation.Failure {
	switch {
	case errors.Is(err, errTooLarge):
		return revalidation.Failure{Reason: revalidation.TooLarge}
	case errors.Is(err, errBuffersFull):
		return revalidation.Failure{Reason: revalidation.Busy}
	case statusFor(err) == http.StatusGatewayTimeout:
		return revalidation.Failure{Reason: revalidation.OriginTimeout}
	}
	return revalidation.Failure{Reason: revalidation.OriginUnreachable, Detail: err.Error()}
}
