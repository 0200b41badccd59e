package proxy

import (
	"net/http"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/forwarded"
)

// Warm answers r, a GET that warm-up builds, as ServeHTTP does, so that a
// page it names is filled as a visitor's miss would fill it: anonymous,
// one fetch per key, within ORIGIN_MAX_CONCURRENCY, ordered by
// generations against revalidations. A page already stored for r (loaded
// from the snapshot, say) is not answered at all, so that nothing is
// fetched for it, not even the background refresh of a stale page: Warm
// then returns true.
func (h *Handler) Warm(w http.ResponseWriter, r *http.Request) (stored bool) {
	https := forwarded.HTTPS(r)
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if key, err := cache.NewKey(cache.NormalizeHost(r.Host, https), path, r.URL.RawQuery, h.ignore, h.keep); err == nil {
		if e := h.store.Get(key); e != nil && e.Lookup(https, r.Header) != nil {
			return true
		}
	}
	h.ServeHTTP(w, r)
	return false
}
