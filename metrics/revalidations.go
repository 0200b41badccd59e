package metrics

import (
	"context"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// Revalidator is what the revalidate API acts on: the page handler's
// refetch, mark-stale and purge of one key (purge.Revalidator has the same
// methods).
type Revalidator interface {
	Refetch(ctx context.Context, key cache.Key) []revalidation.Result
	MarkStale(key cache.Key) []revalidation.Result
	Purge(key cache.Key) []revalidation.Result
}

// KeepRevalidations returns next with every result it gives kept for the
// dashboard's list of the last revalidations, with the key's host, the
// mode and the failure. A nil *Metrics returns next itself.
func (m *Metrics) KeepRevalidations(next Revalidator) Revalidator {
	if m == nil {
		return next
	}
	return keeper{next: next, m: m}
}

type keeper struct {
	next Revalidator
	m    *Metrics
}

func (k keeper) Refetch(ctx context.Context, key cache.Key) []revalidation.Result {
	return k.keep(key, revalidation.Refetch, k.next.Refetch(ctx, key))
}

func (k keeper) MarkStale(key cache.Key) []revalidation.Result {
	return k.keep(key, revalidation.Soft, k.next.MarkStale(key))
}

func (k keeper) Purge(key cache.Key) []revalidation.Result {
	return k.keep(key, revalidation.Purge, k.next.Purge(key))
}

func (k keeper) keep(key cache.Key, mode revalidation.Mode, results []revalidation.Result) []revalidation.Result {
	at := k.m.now()
	for _, res := range results {
		r := Revalidation{
			At: at, Host: key.Host, Path: res.Target, Mode: string(mode),
			Outcome: string(res.Outcome), Status: res.Status,
		}
		if r.Path == "" {
			r.Path = key.Target()
		}
		if res.Failure != nil {
			r.Error = res.Failure.Error()
		}
		k.m.revals.add(r)
	}
	return results
}
