package proxy

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/isrproxy/isrproxy/cache"
)

// A fill is one origin fetch for a key that concurrent misses share
// (docs/promises.md#7-one-fetch-per-key). Unlike singleflight, the fetch runs on its own goroutine with a
// context detached from every visitor, so a visitor who hangs up neither
// cancels it for the others nor stops the page being stored; and the
// visitor who started it is told so, since only that visitor may be handed
// a response that turned out not to be storable. A response too large to
// buffer is handed to that visitor still open (hand), to be streamed: the
// one origin request answers it, and the others ask the origin themselves.
type fill struct {
	done chan struct{} // closed when the fields below are set

	// Written once before done is closed, read only after.
	page      *cache.Page // nil when err is set
	reason    string      // why page was not stored ("" when stored)
	stored    bool
	withdrawn bool // a later revalidation superseded it: page was not stored
	err       error

	// hand carries a response too large to buffer from the fill to the
	// visitor who started it.
	hand handoff

	// superseded is raised when a revalidation, purge, soft mark or
	// invalidation of the key starts while this fill is in flight: its
	// result, read before, is then not stored, or stored marked stale.
	superseded supersession
}

// A handoff passes an open response from the fill's goroutine to the
// visitor who started the fill, who may have gone away meanwhile: exactly
// one of them closes it, and nothing is left open when neither wants it.
type handoff struct {
	mu   sync.Mutex // guards open and left
	open *http.Response
	left bool // the visitor took what there was, or went away
}

// give hands resp to the visitor; false when it no longer waits, and the
// caller must close resp.
func (h *handoff) give(resp *http.Response) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.left {
		return false
	}
	h.open = resp
	return true
}

// take returns the response given (nil if none) and refuses any given
// later: the visitor calls it once, when the fill is done or when it goes
// away, and then owns what it got.
func (h *handoff) take() *http.Response {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.left = true
	resp := h.open
	h.open = nil
	return resp
}

// streamFill answers the visitor who started a fill with the origin's
// response the fill found too large to buffer, still open (its Body an
// *openBody): as a pass-through is answered, by httputil.ReverseProxy's
// own treatment of the head (hop-by-hop headers removed, trailers
// announced) and body (streamed as it arrives, the connection aborted if
// the origin cuts it short), labelled a MISS that was not stored. A HEAD
// gets the head alone. The origin request ends, and its slot is released,
// when the body is closed: at its end, when this visitor goes away, or when
// it stops reading (the connection's send timeout).
func (h *Handler) streamFill(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	body := resp.Body.(*openBody)
	defer body.Close()
	// The fill's request was detached from every visitor: from now on this
	// one's going away ends it.
	stop := context.AfterFunc(r.Context(), body.abort)
	defer stop()
	body.takeShare(h.origin.pass)
	if r.Method == http.MethodHead {
		body.Close() // the origin's body is not wanted
		resp.Body = http.NoBody
	}
	h.metrics.Served(verdictMiss.name)
	verdictMiss.label(w.Header())
	rp := &httputil.ReverseProxy{
		Rewrite:   func(*httputil.ProxyRequest) {},
		Transport: openTransport{resp},
		ModifyResponse: func(res *http.Response) error {
			res.Header.Del("X-Cache")
			res.Header.Del("Cache-Status")
			return plainFor(res, r)
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			h.fail(w, http.StatusBadGateway, "origin unavailable")
		},
		ErrorLog: h.rp.ErrorLog,
	}
	rp.ServeHTTP(w, r)
}

// openTransport answers the one request a streamFill proxy makes with the
// response already open.
type openTransport struct{ resp *http.Response }

func (t openTransport) RoundTrip(*http.Request) (*http.Response, error) { return t.resp, nil }

// plainFor fits a streamed response the fill asked for with gzip to the
// visitor r: one whose Accept-Encoding does not take gzip gets the body
// decompressed as it passes, like any answer from a fill; the answer then
// depends on Accept-Encoding, which its Vary says.
func plainFor(res *http.Response, r *http.Request) error {
	enc := res.Header.Values("Content-Encoding")
	if len(enc) != 1 || !slices.Contains([]string{"gzip", "x-gzip"}, strings.ToLower(strings.TrimSpace(enc[0]))) {
		return nil
	}
	if names, star := parseVary(res.Header); !star && !slices.Contains(names, "Accept-Encoding") {
		res.Header.Set("Vary", strings.Join(append(names, "Accept-Encoding"), ", "))
	}
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		return nil
	}
	res.Header.Del("Content-Encoding")
	res.Header.Del("Content-Length")
	res.ContentLength = -1
	weakenETag(res.Header)
	if res.Body == http.NoBody {
		return nil
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		return err // not the gzip it says: 502
	}
	res.Body = gunzipBody{zr, res.Body}
	return nil
}

// gunzipBody decompresses a streamed body; closing it closes the origin's.
type gunzipBody struct {
	*gzip.Reader
	origin io.Closer
}

func (b gunzipBody) Close() error { return b.origin.Close() }

// What a later revalidation decided about a fetch in flight, by severity.
const (
	keepFetch  int32 = iota // store the fetch's page as usual
	staleFetch              // a soft mark came after it started: store it marked stale
	dropFetch               // a purge, invalidation or newer refetch came after: do not store it
)

// A supersession carries onto a fetch in flight what a revalidation that
// arrived after it began decided: its page was read before that
// revalidation, so it must not undo it: a newer page never loses to an
// older one. A tag
// revalidation cannot know which fetch's page will carry its tag: it
// leaves its level per tag, applied when the page is about to be stored.
type supersession struct {
	level atomic.Int32
	mu    sync.Mutex       // guards byTag
	byTag map[string]int32 // tag -> level, for a page that carries it
}

// raiseTag raises the level for a page that carries tag.
func (s *supersession) raiseTag(tag string, l int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byTag == nil {
		s.byTag = make(map[string]int32)
	}
	s.byTag[tag] = max(s.byTag[tag], l)
}

// levelFor is the level that applies to p.
func (s *supersession) levelFor(p *cache.Page) int32 {
	l := s.level.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tag := range p.Tags {
		l = max(l, s.byTag[tag])
	}
	return l
}

// raise sets the level to at least l; a purge outranks a soft mark.
func (s *supersession) raise(l int32) {
	for {
		cur := s.level.Load()
		if cur >= l || s.level.CompareAndSwap(cur, l) {
			return
		}
	}
}

// admit is the store's last check before storing p, under the key's lock
// (cache.Store.PutIf): false drops p; a soft mark is carried onto it.
func (s *supersession) admit(p *cache.Page) bool {
	switch s.levelFor(p) {
	case dropFetch:
		return false
	case staleFetch:
		p.MarkStale()
	}
	return true
}

// flights tracks the fills and refetches in flight.
type flights struct {
	mu        sync.Mutex                               // guards calls and refetches
	calls     map[flightKey]*fill                      // one fill per key and variant
	refetches map[cache.Key]map[*supersession]struct{} // key -> its refetches in flight
}

// join returns the fill in flight for fk and false, or registers a new one
// and returns it and true: the caller must then start it with run. A fill
// that a purge, invalidation or revalidation has superseded is not joined:
// a request that arrives after those must not get what it read before.
func (fs *flights) join(fk flightKey) (*fill, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.calls[fk]; ok && f.superseded.level.Load() != dropFetch {
		return f, false
	}
	if fs.calls == nil {
		fs.calls = make(map[flightKey]*fill)
	}
	f := &fill{done: make(chan struct{})}
	fs.calls[fk] = f
	return f, true
}

// finish publishes f's result and forgets it, so later misses start afresh.
func (fs *flights) finish(fk flightKey, f *fill) {
	fs.mu.Lock()
	if fs.calls[fk] == f { // a superseded fill may have been replaced
		delete(fs.calls, fk)
	}
	fs.mu.Unlock()
	close(f.done)
}

// supersede raises to level every fill of key (every variant) and, when
// refetches is true, every refetch of key in flight. A refetch does not
// supersede an earlier refetch: generations order those, and the earlier
// one's page is still newer than what is stored if the later one fails.
func (fs *flights) supersede(key cache.Key, level int32, refetches bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for fk, f := range fs.calls {
		if fk.key == key {
			f.superseded.raise(level)
		}
	}
	if refetches {
		for s := range fs.refetches[key] {
			s.raise(level)
		}
	}
}

// supersedeUnstored reaches the fills and refetches in flight for keys
// that unstored says are not stored, and that match: match(key) returns
// whether the fetch is reached at once (a prefix) and the tags for which
// its page is (a tag). Stored keys are left to the revalidation's own
// action on them.
func (fs *flights) supersedeUnstored(unstored func(cache.Key) bool, match func(cache.Key) (all bool, tags []string), level int32) {
	apply := func(key cache.Key, s *supersession) {
		if !unstored(key) {
			return
		}
		all, tags := match(key)
		if all {
			s.raise(level)
		}
		for _, tag := range tags {
			s.raiseTag(tag, level)
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for fk, f := range fs.calls {
		apply(fk.key, &f.superseded)
	}
	for key, set := range fs.refetches {
		for s := range set {
			apply(key, s)
		}
	}
}

// track registers a refetch of key so that a later purge or soft mark
// reaches it; the caller calls done when its page is stored or dropped.
func (fs *flights) track(key cache.Key) (s *supersession, done func()) {
	s = new(supersession)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.refetches == nil {
		fs.refetches = make(map[cache.Key]map[*supersession]struct{})
	}
	set := fs.refetches[key]
	if set == nil {
		set = make(map[*supersession]struct{})
		fs.refetches[key] = set
	}
	set[s] = struct{}{}
	return s, func() {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		delete(set, s)
		if len(set) == 0 { // still the key's set: only an empty one is ever removed
			delete(fs.refetches, key)
		}
	}
}

// wait blocks until f is done or ctx ends.
func (f *fill) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flightKey names the fill of one variant of a key: the variant is
// [cache.Page.VariantID] of the request's Vary values.
type flightKey struct {
	key     cache.Key
	variant string
}
