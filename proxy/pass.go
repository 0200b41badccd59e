package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/forwarded"
)

// maxPasses bounds the pass-through table: past it, expired marks are
// swept, and new ones dropped if none expired.
const maxPasses = 100_000

// passList remembers keys whose response was not storable, for PASS_TTL, so
// that later requests go straight to the origin instead of queueing behind
// a fill that cannot be shared (docs/promises.md#7-one-fetch-per-key).
type passList struct {
	ttl   time.Duration
	mu    sync.Mutex              // guards until and why
	until map[cache.Key]time.Time // key -> end of its pass-through
	why   map[cache.Key]string    // key -> why its last response was not stored (inspect.go)
}

// add marks key pass-through until PASS_TTL from now.
func (l *passList) add(key cache.Key, now time.Time) { l.addWhy(key, now, "") }

// addWhy marks key pass-through until PASS_TTL from now, for reason.
func (l *passList) addWhy(key cache.Key, now time.Time, reason string) {
	if l.ttl <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until == nil {
		l.until = make(map[cache.Key]time.Time)
	}
	if len(l.until) >= maxPasses {
		for k, t := range l.until {
			if !now.Before(t) {
				delete(l.until, k)
				delete(l.why, k)
			}
		}
		if len(l.until) >= maxPasses {
			return
		}
	}
	l.until[key] = now.Add(l.ttl)
	l.noteLocked(key, reason)
}

// has reports whether key passes through at now.
func (l *passList) has(key cache.Key, now time.Time) bool {
	if l.ttl <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.until[key]
	if ok && !now.Before(t) {
		delete(l.until, key)
		delete(l.why, key)
		return false
	}
	return ok
}

// remove forgets key: its page is stored now.
func (l *passList) remove(key cache.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.until, key)
	delete(l.why, key)
}

// pass streams r through to the origin, unstored.
func (h *Handler) pass(w http.ResponseWriter, r *http.Request, v verdict) {
	h.metrics.Served(v.name)
	v.label(w.Header())
	var ps passState
	if unsafeMethod(r.Method) && h.invalidation != InvalidateOff {
		ps.invalidateHost = cache.NormalizeHost(r.Host, forwarded.HTTPS(r))
	}
	if r.Body != nil && r.Body != http.NoBody {
		ps.body = &clientBody{ReadCloser: r.Body}
		r.Body = ps.body
	}
	if ps != (passState{}) {
		r = r.WithContext(context.WithValue(r.Context(), passStateKey{}, &ps))
	}
	h.rp.ServeHTTP(w, r)
}

// passState travels with a pass-through request in its context, for
// modifyResponse and passError, which see only the outbound request.
type passState struct {
	invalidateHost string      // the visitor's host, for an unsafe method to invalidate after; "" otherwise
	body           *clientBody // the visitor's body, if any
}

type passStateKey struct{}

// clientBody remembers an error reading the visitor's request body, so
// that a malformed body (bad chunk framing) is answered 400, not 502.
type clientBody struct {
	io.ReadCloser
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// rewrite builds the pass-through request: the origin's scheme and host,
// the visitor's escaped path, the normalised query for GET and HEAD, the
// visitor's Host (or ORIGIN_HOST), and X-Forwarded-* set afresh.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	in := pr.In
	query := in.URL.RawQuery
	if in.Method == http.MethodGet || in.Method == http.MethodHead {
		if q, err := cache.NormalizeQuery(query, h.ignore, h.keep); err == nil {
			query = q
		}
	}
	pr.Out.URL = h.origin.url(in.URL.EscapedPath(), query)
	pr.Out.Host = h.origin.hostHeader(in.Host)
	clientIP, _, _ := net.SplitHostPort(in.RemoteAddr)
	scheme := "http"
	if forwarded.HTTPS(in) {
		scheme = "https"
	}
	setForwarded(pr.Out.Header, clientIP, in.Host, scheme)
	head := new(headCopy) // see connheader.go; read back in modifyResponse
	pr.Out = pr.Out.WithContext(context.WithValue(head.trace(pr.Out.Context()), headCopyKey{}, head))
}

type headCopyKey struct{}

// modifyResponse drops what would mislabel the answer and the tag headers
// (never sent to visitors), records the origin fetch, and applies RFC 9111
// §4.4 as UNSAFE_INVALIDATION says: a 2xx or 3xx answer to an unsafe
// method invalidates the stored page of its URL, Location and
// Content-Location.
func (h *Handler) modifyResponse(res *http.Response) error {
	if head, _ := res.Request.Context().Value(headCopyKey{}).(*headCopy); head != nil {
		head.removeClosedConnectionNames(res)
	}
	res.Header.Del("X-Cache")
	res.Header.Del("Cache-Status")
	for _, name := range h.tagHeaders {
		res.Header.Del(name)
	}
	h.metrics.OriginStatus("bypass", res.StatusCode)
	ps, _ := res.Request.Context().Value(passStateKey{}).(*passState)
	if ps == nil || ps.invalidateHost == "" || res.StatusCode < 200 || res.StatusCode >= 400 {
		return nil
	}
	host := ps.invalidateHost
	h.invalidateURL(host, res.Request.URL)
	for _, name := range []string{"Location", "Content-Location"} {
		if loc := res.Header.Get(name); loc != "" {
			if u, err := res.Request.URL.Parse(loc); err == nil {
				sameHost := u.Host == res.Request.URL.Host || cache.NormalizeHost(u.Host, u.Scheme == "https") == host
				if sameHost {
					h.invalidateURL(host, u)
				}
			}
		}
	}
	return nil
}

// invalidateURL marks stale (soft) or removes (strict) every variant of
// the page at u on host. Either way the fetches in flight for it, which
// read the origin before the change, cannot undo that: a soft mark is
// carried onto what they store, a removal drops it.
func (h *Handler) invalidateURL(host string, u *url.URL) {
	path := u.EscapedPath()
	if path == "" {
		path = "/" // "http://host" and "http://host?x=1" name the root
	}
	key, err := cache.NewKey(host, path, u.RawQuery, h.ignore, h.keep)
	if err != nil {
		return
	}
	switch h.invalidation {
	case InvalidateStrict:
		h.flights.supersede(key, dropFetch, true)
		h.store.Delete(key)
	case InvalidateSoft:
		// The next visitor gets the page STALE and starts the one
		// background refetch (cache.Page.ClaimRefresh): however many
		// POSTs arrive, no visitor waits and one refetch at a time runs.
		h.flights.supersede(key, staleFetch, true)
		h.store.MarkStale(key)
	}
}

// passError answers a pass-through that reached no origin answer.
func (h *Handler) passError(w http.ResponseWriter, r *http.Request, err error) {
	if ps, _ := r.Context().Value(passStateKey{}).(*passState); ps != nil && ps.body != nil && ps.body.err != nil {
		w.Header().Set("Connection", "close")
		h.fail(w, http.StatusBadRequest, "malformed request body")
		return
	}
	h.metrics.OriginStatus("bypass", 0)
	if r.Context().Err() == nil {
		h.log.Warn("pass-through failed", "path", r.URL.Path, "err", err)
	}
	h.fail(w, statusFor(err), "origin unavailable")
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}
