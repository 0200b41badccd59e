// Package proxy is isrproxy's public handler: it answers stored pages from
// memory, fills misses with one origin fetch per key, passes everything
// else through to the origin, and refetches pages when asked.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/forwarded"
	"github.com/isrproxy/isrproxy/metrics"
)

// Options configures a Handler. Origin and Store are required; every other
// zero value means the documented default or "none", as each field says.
type Options struct {
	// Origin is ORIGIN_URL: only its scheme and host are used.
	Origin *url.URL
	// OriginHost is ORIGIN_HOST: the Host sent to the origin; "" sends the visitor's.
	OriginHost string
	// Store holds the pages.
	Store *cache.Store
	// Transport reaches the origin. Nil: one built for OriginTimeout.
	Transport http.RoundTripper
	// OriginTimeout bounds one origin request (ORIGIN_TIMEOUT). Zero: 30s.
	OriginTimeout time.Duration
	// MaxObjectBytes is the largest body stored (MAX_OBJECT_BYTES). Zero: 8 MiB.
	MaxObjectBytes int64
	// CacheStatuses are the storable status codes (CACHE_STATUSES). Nil: none.
	CacheStatuses []int
	// CompressTypes are media types gzipped once when stored (COMPRESS_TYPES). Nil: none.
	CompressTypes []string
	// CompressMinBytes is COMPRESS_MIN_BYTES: smaller bodies are stored as
	// received. Zero: any size is compressed.
	CompressMinBytes int64
	// BypassCookies names cookies that make a request pass through (BYPASS_COOKIES).
	BypassCookies cache.Matcher
	// IgnoreParams names query parameters dropped from keys and fills (IGNORE_QUERY_PARAMS).
	IgnoreParams cache.Matcher
	// KeepParams, when not empty, names the only query parameters kept in
	// keys, fills and pass-through GET and HEAD requests (KEEP_QUERY_PARAMS);
	// IgnoreParams still applies. Empty: every parameter is kept.
	KeepParams cache.Matcher
	// BypassPaths names escaped paths, exact or by prefix, that always pass
	// through and are never stored (BYPASS_PATHS). Empty: none.
	BypassPaths cache.Matcher
	// TagHeaders are the canonical names of the origin response headers
	// that tag a page (TAG_HEADERS); they are never sent to visitors. Nil: none.
	TagHeaders []string
	// Invalidation is what a successful unsafe request does to the stored
	// pages of its URL (UNSAFE_INVALIDATION). Zero: InvalidateSoft.
	Invalidation Invalidation
	// AllowedHosts are the normalised hosts served (ALLOWED_HOSTS). Nil: any.
	AllowedHosts []string
	// RevalidateAfter is REVALIDATE_AFTER; zero keeps pages until revalidated.
	RevalidateAfter time.Duration
	// NegativeTTL is NEGATIVE_TTL for stored 404 and 410; zero keeps them.
	NegativeTTL time.Duration
	// PassTTL is how long an unstorable key passes through (PASS_TTL); zero: not remembered.
	PassTTL time.Duration
	// OriginMaxConcurrency caps origin requests in flight (ORIGIN_MAX_CONCURRENCY). Zero: 64.
	OriginMaxConcurrency int
	// RevalidateConcurrency caps refetches in flight (REVALIDATE_CONCURRENCY). Zero: 4.
	RevalidateConcurrency int
	// DecompressedBytes is the budget of the small cache of decompressed
	// bodies kept for pages asked for repeatedly without gzip. Zero: none.
	DecompressedBytes int64
	// HTTPSOnly is HTTPS_REDIRECT on: plain-HTTP page requests never reach
	// the handler, so a page revalidated before anyone asked for it is
	// fetched as the https page, whatever the revalidate call came over.
	HTTPSOnly bool
	// Logger receives errors and notices. Nil: discard.
	Logger *slog.Logger
	// Metrics, if not nil, counts requests and origin fetches.
	Metrics *metrics.Metrics
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Shared, when not nil, is the cluster this replica belongs to
	// (REDIS_URL). Nil: a single node, which never reaches beyond the origin.
	Shared Shared
}

// Invalidation is what a 2xx or 3xx answer to an unsafe method does to the
// stored pages of its URL, Location and Content-Location
// (docs/behaviour.md#unsafe-method-invalidation).
type Invalidation int

const (
	// InvalidateSoft marks them stale: answered STALE while one background
	// refetch replaces them. An anonymous POST can then neither make a
	// visitor wait for the origin nor flood it.
	InvalidateSoft Invalidation = iota
	// InvalidateStrict removes them, as RFC 9111 §4.4 says.
	InvalidateStrict
	// InvalidateOff leaves them alone.
	InvalidateOff
)

// ParseInvalidation reads UNSAFE_INVALIDATION: "soft" (or ""), "strict" or "off".
func ParseInvalidation(s string) (Invalidation, error) {
	switch s {
	case "", "soft":
		return InvalidateSoft, nil
	case "strict":
		return InvalidateStrict, nil
	case "off":
		return InvalidateOff, nil
	}
	return 0, fmt.Errorf("proxy: unknown invalidation %q (soft, strict or off)", s)
}

// Handler is the public listener's page handler.
type Handler struct {
	store    *cache.Store
	shared   Shared // nil: a single node
	origin   *origin
	builder  builder
	rp       *httputil.ReverseProxy
	flights  flights
	passes   passList
	refetchs *semaphore.Weighted // REVALIDATE_CONCURRENCY
	metrics  *metrics.Metrics
	log      *slog.Logger
	now      func() time.Time

	maxObject       int64
	bypassCookies   cache.Matcher
	ignore          cache.Matcher
	keep            cache.Matcher
	bypassPaths     cache.Matcher
	tagHeaders      []string
	invalidation    Invalidation
	allowed         map[string]bool // nil: any host
	revalidateAfter time.Duration
	negativeTTL     time.Duration
	httpsOnly       bool

	gunzip sync.Pool           // *gzip.Reader
	plain  *cache.Decompressed // decompressed bodies; nil: none

	bgCtx    context.Context // background refreshes; cancelled by Close
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// New builds a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Origin == nil || opts.Store == nil {
		return nil, errors.New("proxy: Origin and Store are required")
	}
	if opts.OriginTimeout <= 0 {
		opts.OriginTimeout = 30 * time.Second
	}
	if opts.MaxObjectBytes <= 0 {
		opts.MaxObjectBytes = 8 << 20
	}
	if opts.OriginMaxConcurrency <= 0 {
		opts.OriginMaxConcurrency = 64
	}
	if opts.RevalidateConcurrency <= 0 {
		opts.RevalidateConcurrency = 4
	}
	if opts.Transport == nil {
		opts.Transport = newTransport(opts.OriginTimeout, opts.OriginMaxConcurrency)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{
		store:  opts.Store,
		shared: opts.Shared,
		origin: &origin{
			base:      &url.URL{Scheme: opts.Origin.Scheme, Host: opts.Origin.Host},
			host:      opts.OriginHost,
			transport: opts.Transport,
			slots:     semaphore.NewWeighted(int64(opts.OriginMaxConcurrency)),
			buffers:   semaphore.NewWeighted(max(bufferBudget, opts.MaxObjectBytes)),
			pass:      semaphore.NewWeighted(passShare(opts.OriginMaxConcurrency)),
			timeout:   opts.OriginTimeout,
		},
		builder: builder{
			statuses:      make(map[int]bool),
			compressTypes: make(map[string]bool),
			compressMin:   opts.CompressMinBytes,
			maxPlain:      max(opts.MaxObjectBytes*32, 256<<20),
			tagHeaders:    opts.TagHeaders,
			ignore:        opts.IgnoreParams,
			keep:          opts.KeepParams,
		},
		passes:          passList{ttl: opts.PassTTL},
		refetchs:        semaphore.NewWeighted(int64(opts.RevalidateConcurrency)),
		metrics:         opts.Metrics,
		log:             opts.Logger,
		now:             opts.Now,
		maxObject:       opts.MaxObjectBytes,
		bypassCookies:   opts.BypassCookies,
		ignore:          opts.IgnoreParams,
		keep:            opts.KeepParams,
		bypassPaths:     opts.BypassPaths,
		tagHeaders:      opts.TagHeaders,
		invalidation:    opts.Invalidation,
		revalidateAfter: opts.RevalidateAfter,
		negativeTTL:     opts.NegativeTTL,
		httpsOnly:       opts.HTTPSOnly,
	}
	for _, s := range opts.CacheStatuses {
		h.builder.statuses[s] = true
	}
	for _, t := range opts.CompressTypes {
		h.builder.compressTypes[strings.ToLower(t)] = true
	}
	if opts.AllowedHosts != nil {
		h.allowed = make(map[string]bool)
		for _, a := range opts.AllowedHosts {
			h.allowed[a] = true
		}
	}
	if opts.DecompressedBytes > 0 {
		plain, err := cache.NewDecompressed(opts.DecompressedBytes)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		h.plain = plain
	}
	h.bgCtx, h.bgCancel = context.WithCancel(context.Background())
	h.rp = &httputil.ReverseProxy{
		Rewrite: h.rewrite,
		Transport: &limitedTransport{next: opts.Transport, slots: h.origin.slots,
			pass: h.origin.pass},
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.passError,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return h, nil
}

// Close stops background refreshes and waits for them.
func (h *Handler) Close() {
	h.bgCancel()
	h.bg.Wait()
	h.plain.Close()
}

// ServeHTTP answers a page request: refused, passed through, from memory,
// or filled from the origin.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.metrics.RequestStarted()
	defer h.metrics.RequestEnded()
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		h.fail(w, http.StatusMethodNotAllowed, "CONNECT is not proxied: this is a reverse proxy")
		return
	}
	if msg := refusal(r); msg != "" {
		// Close the connection too: whatever framing trick the request
		// holds, nothing after it on this connection is read.
		w.Header().Set("Connection", "close")
		h.fail(w, http.StatusBadRequest, msg)
		return
	}
	if len(r.TransferEncoding) > 0 {
		// A chunked request body: answer it, then close, so that no
		// request hidden behind its framing is ever read (RFC 9112 §6.1).
		w.Header().Set("Connection", "close")
	}
	https := forwarded.HTTPS(r)
	host := cache.NormalizeHost(r.Host, https)
	if h.allowed != nil && !h.allowed[host] {
		h.fail(w, http.StatusMisdirectedRequest, "host not served here")
		return
	}
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || len(r.Header["Upgrade"]) > 0 {
		h.pass(w, r, verdictBypass) // other methods, WebSocket upgrades
		return
	}
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/" // an absolute-form target with no path
	}
	key, err := cache.NewKey(host, path, r.URL.RawQuery, h.ignore, h.keep)
	if err != nil {
		h.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if h.mustBypass(r) || h.bypassPath(path, r.URL.Path) {
		h.pass(w, r, verdictBypass)
		return
	}
	entry := h.store.Get(key)
	if entry != nil {
		if p := entry.Lookup(https, r.Header); p != nil {
			h.serveStored(w, r, p)
			return
		}
	}
	if len(r.Header["Range"]) > 0 || h.passes.has(key, h.now()) {
		// A range of a page not stored passes through and never fills
		// (docs/behaviour.md#range-requests), nor does a pass-through key.
		h.pass(w, r, verdictBypass)
		return
	}
	variant := ""
	if entry != nil {
		variant = variantOf(https, entry.Variants[0].Vary, r.Header)
	} else if https {
		variant = variantOf(https, nil, nil)
	}
	h.miss(w, r, key, variant, false)
}

// serveStored answers from a stored page: HIT, or STALE with one
// background refresh when the page is past its age or marked.
func (h *Handler) serveStored(w http.ResponseWriter, r *http.Request, p *cache.Page) {
	now := h.now()
	age := p.OriginAge + int64(now.Sub(p.StoredAt)/time.Second)
	if h.isStale(p, now) {
		if p.ClaimRefresh(now) {
			h.refreshInBackground(p)
		}
		h.write(w, r, p, verdictStale, age)
		return
	}
	h.write(w, r, p, verdictHit, age)
}

func (h *Handler) isStale(p *cache.Page, now time.Time) bool {
	if p.StaleMarked() {
		return true
	}
	age := now.Sub(p.StoredAt)
	if p.Status == http.StatusNotFound || p.Status == http.StatusGone {
		return h.negativeTTL > 0 && age > h.negativeTTL
	}
	return h.revalidateAfter > 0 && age > h.revalidateAfter
}

// miss fills key from the origin, sharing one fetch among concurrent misses.
func (h *Handler) miss(w http.ResponseWriter, r *http.Request, key cache.Key, variant string, retried bool) {
	https := forwarded.HTTPS(r)
	fk := flightKey{key, variant}
	f, leader := h.flights.join(fk)
	if leader {
		// Re-check the store: a fill that finished between our lookup and
		// join has stored the page and left the flight table (groupcache's
		// load() makes the same check for the same interleaving).
		if e := h.store.Get(key); e != nil {
			if p := e.Lookup(https, r.Header); p != nil {
				f.page, f.stored = p, true
				h.flights.finish(fk, f)
				h.serveStored(w, r, p)
				return
			}
		}
		req := h.origin.fillRequest(context.WithoutCancel(r.Context()), key, https, r, nil)
		if h.shared != nil {
			// The cluster's page, or its one fill: see sharedFill.
			go h.sharedFill(fk, f, key, https, r.Header.Clone(), req)
		} else {
			gen := h.store.NextGen() // taken as the fetch starts: see cache.Page.Gen
			go h.runFill(fk, f, key, https, req, gen, nil)
		}
	}
	if f.wait(r.Context()) != nil {
		if leader {
			// Gone: a response handed on for this visitor is closed, and
			// none is handed on later.
			if open := f.hand.take(); open != nil {
				open.Body.Close()
			}
		}
		return // the visitor left; the fill goes on and stores the page
	}
	var open *http.Response // a response too large to buffer, for the leader only
	if leader {
		open = f.hand.take()
	}
	switch {
	case open != nil:
		// One origin request answers this visitor: the one the fill made.
		h.streamFill(w, r, open)
	case errors.Is(f.err, errTooLarge), errors.Is(f.err, errBuffersFull):
		// Waiters never get the response the leader fetched: each asks
		// the origin itself.
		h.pass(w, r, verdictMiss)
	case f.err != nil:
		// A miss all the same: X-Cache and Cache-Status say so on the 502/504.
		h.metrics.Served(verdictMiss.name)
		verdictMiss.label(w.Header())
		h.fail(w, statusFor(f.err), "origin unavailable")
	case f.withdrawn && !leader && !retried:
		// A revalidation after the fill began threw its page away: this
		// visitor may have arrived after it, so it fetches afresh.
		h.miss(w, r, key, variant, true)
	case leader:
		v := verdictMiss
		if f.stored {
			v = verdictMissStored
		}
		h.write(w, r, f.page, v, -1)
	case f.reason != "":
		// Not storable: only the visitor who fetched it may see it.
		h.pass(w, r, verdictMiss)
	case !f.page.Matches(https, r.Header) && !retried:
		// Another variant than ours: fill ours.
		h.miss(w, r, key, variantOf(https, f.page.Vary, r.Header), true)
	case !f.page.Matches(https, r.Header):
		h.pass(w, r, verdictMiss)
	default:
		v := verdictMiss
		if f.stored {
			v = verdictMissStored
		}
		h.write(w, r, f.page, v, -1)
	}
}

// runFill fetches for f, stores the page when it may, and publishes the result;
// stored, when not nil, is called with the page once it is stored, before the
// fill's visitors are answered.
func (h *Handler) runFill(fk flightKey, f *fill, key cache.Key, https bool, req *http.Request, gen uint64, stored func(*cache.Page)) {
	defer h.flights.finish(fk, f)
	start := h.now()
	got, open, err := h.origin.fetchOpen(req.Context(), req, h.maxObject)
	defer got.done() // the body is counted until its page is stored or dropped
	status := got.statusOf(err)
	if open != nil {
		status = open.StatusCode
	}
	h.metrics.OriginDone("fill", status, h.now().Sub(start))
	if err != nil {
		f.err = err
		if open == nil {
			h.log.Warn("fill failed", "key", key.String(), "err", err)
			return
		}
		// Too large to buffer: the response, open, goes to the visitor who
		// started the fill, streamed as it arrives, and is not stored.
		if errors.Is(err, errTooLarge) && open.StatusCode < 500 {
			h.passes.addWhy(key, h.now(), "too-large") // later requests pass through
		}
		if errors.Is(err, errBuffersFull) {
			h.log.Warn("fill streamed, not stored", "key", key.String(), "err", err)
		} else {
			h.log.Debug("not stored", "key", key.String(), "reason", err.Error())
		}
		if !f.hand.give(open) {
			open.Body.Close() // that visitor has gone
		}
		return
	}
	p, reason := h.builder.build(key, got, req.Header, gen, h.now())
	p.HTTPS = https
	f.page, f.reason = p, reason
	if reason != "" {
		// A 5xx is an origin failing, not a page that cannot be stored
		// (a failed fetch, which marks nothing): the next request tries
		// again, so pages are cached again as soon as the origin recovers.
		if got.status < 500 {
			h.passes.addWhy(key, h.now(), reason)
		}
		h.log.Debug("not stored", "key", key.String(), "reason", reason)
		return
	}
	// A revalidation, purge or soft mark that started after this fetch
	// decides, under the key's lock, whether and how it is stored.
	switch h.store.PutIf(p, f.superseded.admit) {
	case cache.Stored, cache.Replaced:
		f.stored = true
		h.passes.remove(key)
		if stored != nil {
			stored(p) // before the deferred finish answers the fill's visitors
		}
	case cache.Withdrawn:
		// Its visitor, the leader, is answered this page unstored
		// (fwd=miss); the others fetch afresh.
		f.withdrawn = true
		h.log.Debug("fill superseded; not stored", "key", key.String())
	}
}

// mustBypass reports a request that may never be answered from memory nor
// fill: credentials, a bypass cookie.
func (h *Handler) mustBypass(r *http.Request) bool {
	if len(r.Header["Authorization"]) > 0 {
		return true
	}
	if h.bypassCookies.Empty() {
		return false
	}
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			name, _, _ := strings.Cut(pair, "=")
			if name = strings.TrimSpace(name); name != "" && h.bypassCookies.Match(name) {
				return true
			}
		}
	}
	return false
}

// bypassPath reports a request for one of BYPASS_PATHS, the CMS's back
// office: its escaped path as written, or that path decoded and cleaned
// of "//", "/./" and "/../" the way the origin's router may read it, so
// that no other spelling of a back-office path is stored either.
func (h *Handler) bypassPath(escaped, decoded string) bool {
	if h.bypassPaths.Empty() {
		return false
	}
	if h.bypassPaths.Match(escaped) {
		return true
	}
	if !strings.Contains(escaped, "%") && !strings.Contains(escaped, "//") && !strings.Contains(escaped, "/.") {
		return false // already decoded and clean: nothing else to compare (no allocation on a hit)
	}
	clean := path.Clean("/" + decoded)
	if strings.HasSuffix(decoded, "/") && clean != "/" {
		clean += "/"
	}
	return clean != escaped && h.bypassPaths.Match(clean)
}

// variantOf names the variant that a request over https (or not) with
// header h selects under the Vary names.
func variantOf(https bool, names []string, h http.Header) string {
	p := cache.Page{HTTPS: https, Vary: names, VaryValues: make([]string, len(names))}
	for i, name := range names {
		p.VaryValues[i] = cache.VaryValue(h, name)
	}
	return p.VariantID()
}

// refusal is why a request must be refused before anything reaches the
// origin (docs/behaviour.md#request-refusals), or "".
func refusal(r *http.Request) string {
	switch {
	case r.Method == "PRI":
		return "only HTTP/1.x, or HTTP/2 over TLS, is served here" // an HTTP/2 preface over HTTP/1
	case r.ProtoMajor == 2 && r.TLS != nil:
		// HTTP/2 as the TLS handshake chose it: never h2c. Its
		// requests are held to every rule below, as HTTP/1.1 ones are.
	case r.ProtoMajor != 1:
		return "only HTTP/1.x, or HTTP/2 over TLS, is served here"
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// ContentLength is -1 for a body of unknown length: chunked over
		// HTTP/1.1, DATA frames without content-length over HTTP/2.
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			return "a GET or HEAD request may not carry a body"
		}
	}
	for _, line := range r.Header["Connection"] {
		for _, name := range strings.Split(line, ",") {
			switch http.CanonicalHeaderKey(strings.TrimSpace(name)) {
			case "Host", "Content-Length", "Transfer-Encoding", "Cookie", "Authorization":
				return "Connection may not name " + strings.TrimSpace(name)
			}
		}
	}
	for _, line := range r.Header["Upgrade"] {
		for _, proto := range strings.Split(line, ",") {
			if strings.EqualFold(strings.TrimSpace(proto), "h2c") {
				return "Upgrade: h2c is not supported"
			}
		}
	}
	path := r.URL.EscapedPath()
	switch {
	case path == "":
		path = "/" // an absolute-form target with no path
	case path == "*" && r.Method == http.MethodOptions:
		return "" // OPTIONS * asks about the server itself
	}
	if err := cache.CheckPath(path); err != nil {
		return err.Error()
	}
	return ""
}

// statusFor maps an origin failure to the visitor's status: 504 on a
// timeout, otherwise 502.
func statusFor(err error) int {
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout()) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// fail answers a page request with an error of our own.
func (h *Handler) fail(w http.ResponseWriter, code int, msg string) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s: %s\n", code, http.StatusText(code), msg)
}

var _ http.Handler = (*Handler)(nil)
