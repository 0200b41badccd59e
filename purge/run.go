package purge

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

const (
	// maxWorkers bounds the goroutines one revalidation uses. The origin is
	// protected by the Revalidator's own limit (REVALIDATE_CONCURRENCY);
	// this only keeps a call over thousands of keys from starting thousands
	// of goroutines.
	maxWorkers = 16
	// asyncAbove: a call whose tags and prefixes match more distinct stored
	// pages than this always runs as a job (README.md#async-jobs).
	asyncAbove = 100
)

// plan is a checked call, resolved to the keys it acts on.
type plan struct {
	mode    revalidation.Mode
	host    string
	keys    []cache.Key // distinct; paths first, in order, then tag and prefix matches
	paths   int         // how many of keys come from path targets
	async   bool        // run as a job
	large   bool        // a job because tags and prefixes matched so many pages: paths run first
	targets *targets
}

// plan resolves t for host: path targets become keys, tags and prefixes
// are looked up in the index. It decides whether the call runs as a job.
func (h *Handler) plan(t *targets, host string) (*plan, error) {
	p := &plan{mode: t.mode, host: host, targets: t}
	seen := make(map[cache.Key]bool)
	for _, pt := range t.paths {
		key, err := cache.NewKey(host, pt.path, pt.query, h.opts.Ignore, h.opts.Keep)
		if err != nil { // checkTarget has already ruled this out
			return nil, badInput("Invalid path %q: %v", pt.path, err)
		}
		if !seen[key] {
			seen[key] = true
			p.keys = append(p.keys, key)
		}
	}
	p.paths = len(p.keys)
	if h.opts.InFlight != nil {
		// Before the index is read: a fetch that stores after this finds
		// itself superseded; one that stored before is in the index. A
		// pattern reaches the fetches under its literal prefix.
		prefixes := t.prefixes
		for _, pt := range t.patterns {
			prefixes = append(slices.Clip(prefixes), pt.literalPrefix())
		}
		h.opts.InFlight.SupersedeInFlight(host, t.tags, prefixes, t.mode)
	}
	matched := make(map[cache.Key]bool)
	if h.opts.Index != nil {
		var found []cache.Key
		for _, tag := range t.tags {
			found = append(found, h.opts.Index.KeysByTag(host, tag)...)
		}
		for _, prefix := range t.prefixes {
			found = append(found, h.opts.Index.KeysByPrefix(host, prefix)...)
		}
		if hi, ok := h.opts.Index.(HostIndex); ok && len(t.patterns) > 0 {
			for _, key := range hi.KeysOfHost(host) {
				for _, pt := range t.patterns {
					if pt.re.MatchString(key.Target()) {
						found = append(found, key)
						break
					}
				}
			}
		}
		for _, key := range found {
			matched[key] = true
			if !seen[key] {
				seen[key] = true
				p.keys = append(p.keys, key)
			}
		}
	}
	if li, ok := h.opts.Index.(LinkIndex); ok && t.linked {
		// Once each: the pages that link to a revalidated key, found
		// through the links read when they were stored.
		for _, key := range slices.Clone(p.keys) {
			for _, linking := range li.KeysLinkingTo(host, key.Target()) {
				if !seen[linking] {
					seen[linking] = true
					matched[linking] = true
					p.keys = append(p.keys, linking)
				}
			}
		}
	}
	p.large = !t.async && len(matched) > asyncAbove
	p.async = t.async || p.large
	return p, nil
}

// logAttrs describes p for the call's log line: counts, never the targets.
func (p *plan) logAttrs() []slog.Attr {
	return []slog.Attr{
		slog.String("mode", string(p.mode)),
		slog.String("host", p.host),
		slog.Int("paths", len(p.targets.paths)),
		slog.Int("tags", len(p.targets.tags)),
		slog.Int("prefixes", len(p.targets.prefixes)),
		slog.Int("patterns", len(p.targets.patterns)),
		slog.Bool("linked", p.targets.linked),
		slog.Int("keys", len(p.keys)),
		slog.Bool("async", p.async),
	}
}

// runNow runs p while the caller waits and answers with every result. The
// run outlives a client that hangs up, so a half-done revalidation is
// finished either way. The caller has called h.begin.
func (h *Handler) runNow(c *call, r *http.Request, p *plan) {
	defer h.wg.Done()
	ctx, cancel := h.detach(r)
	defer cancel()
	var mu sync.Mutex // guards results
	results := make([]Result, 0, len(p.keys))
	h.run(ctx, p, func(res Result) {
		mu.Lock()
		results = append(results, res)
		mu.Unlock()
	})
	sortResults(results)
	c.attrs = append(c.attrs, outcomeAttrs(results))
	status, a := h.answer(results)
	c.reply(status, a)
}

// run acts on every key of p with at most maxWorkers goroutines and hands
// each Result to add, which must be safe for concurrent use.
func (h *Handler) run(ctx context.Context, p *plan, add func(Result)) {
	work := make(chan cache.Key)
	var wg sync.WaitGroup
	for range min(maxWorkers, len(p.keys)) {
		wg.Go(func() {
			for key := range work {
				results := h.act(ctx, p.mode, key)
				h.recent.note(key.String(), p.mode, results, h.now())
				for _, res := range results {
					if h.opts.OnResult != nil {
						h.opts.OnResult(res.Outcome)
					}
					add(res)
				}
			}
		})
	}
	for _, key := range p.keys {
		work <- key
	}
	close(work)
	wg.Wait()
}

// act applies mode to key and returns at least one Result, each naming its path.
func (h *Handler) act(ctx context.Context, mode revalidation.Mode, key cache.Key) []Result {
	if ctx.Err() != nil { // Close: do not start what cannot finish
		return []Result{{Path: key.Target(), Outcome: revalidation.Failed, Error: "shutting down; nothing changed"}}
	}
	var got []revalidation.Result
	switch mode {
	case revalidation.Soft:
		got = h.opts.Revalidator.MarkStale(key)
	case revalidation.Purge:
		got = h.opts.Revalidator.Purge(key)
	default:
		got = h.opts.Revalidator.Refetch(ctx, key)
	}
	if len(got) == 0 {
		return []Result{{Path: key.Target(), Outcome: revalidation.Failed, Error: "no result"}}
	}
	results := make([]Result, len(got))
	for i, res := range got {
		results[i] = Result{Path: res.Target, Status: res.Status, Outcome: res.Outcome,
			Replicas: res.Replicas, Unconfirmed: res.Unconfirmed, alone: res.Alone}
		if results[i].Path == "" {
			results[i].Path = key.Target()
		}
		switch {
		case res.Outcome == revalidation.Failed:
			results[i].Error = failureMessage(res.Failure)
		case res.Alone != "":
			results[i].Error = "cluster unreachable: applied on " + res.Alone + " only"
		case len(res.Unconfirmed) > 0:
			results[i].Error = "not confirmed by " + strings.Join(res.Unconfirmed, ", ")
		}
	}
	return results
}

// failureMessage words a failure for the API's answer. Every failure that reached
// the origin says that the stored version was kept.
func failureMessage(f *revalidation.Failure) string {
	const kept = "; previous version kept"
	if f == nil {
		return "failed"
	}
	switch f.Reason {
	case revalidation.OriginStatus:
		return fmt.Sprintf("origin answered %d", f.Status) + kept
	case revalidation.NotStorable:
		return "response not storable (" + f.Detail + ")" + kept
	case revalidation.OriginTimeout:
		return "origin timed out" + kept
	case revalidation.OriginUnreachable:
		return "origin request failed: " + f.Detail + kept
	case revalidation.TooLarge:
		return "response larger than MAX_OBJECT_BYTES" + kept
	case revalidation.Busy:
		return "too many response bodies being buffered at once" + kept
	case revalidation.NotAdmitted:
		return "the cache did not admit the page (memory budget)"
	}
	return f.Detail
}

// answer is the body of a finished synchronous call.
type answer struct {
	Revalidated bool     `json:"revalidated"`
	Now         int64    `json:"now"` // Unix milliseconds
	Message     string   `json:"message,omitempty"`
	Results     []Result `json:"results"`
	// Unconfirmed lists, in cluster mode, the live replicas that did not
	// confirm every result in time.
	Unconfirmed []string `json:"unconfirmed,omitempty"`
}

// answer builds the answer to sorted results: 200, or 502 when any failed.
func (h *Handler) answer(results []Result) (int, answer) {
	a := answer{Revalidated: true, Now: h.now().UnixMilli(), Results: results}
	var failed []Result
	alone := ""
	seen := map[string]bool{}
	for _, res := range results {
		if res.Outcome == revalidation.Failed || res.clusterFailed() {
			failed = append(failed, res)
		}
		if res.alone != "" {
			alone = res.alone
		}
		for _, n := range res.Unconfirmed {
			if !seen[n] {
				seen[n] = true
				a.Unconfirmed = append(a.Unconfirmed, n)
			}
		}
	}
	if len(failed) == 0 {
		return http.StatusOK, a
	}
	a.Revalidated = false
	slices.Sort(a.Unconfirmed)
	if alone != "" {
		// In cluster mode with Redis unreachable: done here, not elsewhere.
		a.Message = "cluster unreachable: applied on " + alone + " only"
		return http.StatusBadGateway, a
	}
	first := failed[0].Path + ": " + failed[0].Error
	if len(failed) == 1 {
		a.Message = "Error revalidating: " + first
	} else {
		a.Message = fmt.Sprintf("Error revalidating: %d of %d failed; first %s", len(failed), len(results), first)
	}
	return http.StatusBadGateway, a
}

// sortResults orders results by path, for a stable answer; variants of one
// path keep the order the Revalidator gave.
func sortResults(results []Result) {
	slices.SortStableFunc(results, func(a, b Result) int { return cmp.Compare(a.Path, b.Path) })
}

// outcomeAttrs counts results by outcome for the log.
func outcomeAttrs(results []Result) slog.Attr {
	counts := make(map[revalidation.Outcome]int)
	for _, res := range results {
		counts[res.Outcome]++
	}
	var attrs []any
	for _, o := range revalidation.Outcomes {
		if counts[o] > 0 {
			attrs = append(attrs, slog.Int(string(o), counts[o]))
		}
	}
	return slog.Group("outcomes", attrs...)
}
