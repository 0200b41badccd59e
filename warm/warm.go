// Package warm fills pages at start, before visitors ask for them: the
// paths of WARM_PATHS_FILE for each allowed host, and the URLs of the
// WARM_SITEMAP sitemap (indexes followed) on the hosts served
// (docs/behaviour.md#restarts-and-deploys).
//
// Every request goes through the page handler, as a visitor's GET would:
// fills are anonymous, coalesced with visitors' misses, counted against
// ORIGIN_MAX_CONCURRENCY, and ordered against revalidations by
// generations. The handler only ever sends to ORIGIN_URL, and a sitemap URL
// on a host or scheme not served is skipped before any request is built,
// so no sitemap can make isrproxy send a request anywhere else. At most
// Rate fills start per second, and a page already stored (loaded from the
// snapshot) is not fetched again.
package warm

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Pages is the page handler: [*proxy.Handler].
type Pages interface {
	http.Handler
	// Warm answers r as ServeHTTP would, unless a page is stored for it:
	// then it does nothing and returns true.
	Warm(w http.ResponseWriter, r *http.Request) (stored bool)
}

// Options configure Run. Pages and Hosts are required.
type Options struct {
	Pages Pages
	// Hosts are the hosts served (ALLOWED_HOSTS), normalised.
	Hosts []string
	// HTTP and HTTPS say which schemes visitors reach isrproxy by: a
	// sitemap URL of another scheme is skipped, and one on https fills the
	// https variant of its page. Paths of the paths file are filled over
	// https when HTTP is false. Both false: HTTP.
	HTTP, HTTPS bool
	// Sitemap is WARM_SITEMAP, a path on the origin; "" for none.
	Sitemap string
	// PathsFile is WARM_PATHS_FILE; "" for none.
	PathsFile string
	// Rate is WARM_RATE, the most fills started per second. Zero: 10.
	Rate float64
	// MaxInFlight bounds the fills in flight at once. Zero: 8.
	MaxInFlight int
	// Limits on sitemaps: the bytes of one (after decompression), the
	// depth of indexes followed, the URLs taken over all of them, and the
	// sitemaps fetched. Zero: 50 MiB, 3, 50,000, 1,000.
	MaxSitemapBytes int64
	MaxDepth        int
	MaxURLs         int
	MaxSitemaps     int
	// Logger receives what was skipped and why. Nil: discard.
	Logger *slog.Logger
}

// Result counts what Run did.
type Result struct {
	// Targets is the number of distinct pages warm-up tried.
	Targets int
	// Stored counts pages already stored (nothing fetched), Filled those
	// fetched and answered below 500, Failed the others.
	Stored, Filled, Failed int
	// Skipped counts sitemap URLs on a host or scheme not served, or that
	// are not URLs; BadLines the lines of the paths file that are not paths.
	Skipped, BadLines int
	Took              time.Duration
}

// target is one page to fill.
type target struct {
	host  string
	https bool
	path  string // escaped path plus "?query"
}

// Run fills every page of the paths file and the sitemap once and returns
// when each has been tried, or ctx ends. It never fails: what went wrong is
// logged and counted.
func Run(ctx context.Context, opts Options) Result {
	start := time.Now()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if !opts.HTTP && !opts.HTTPS {
		opts.HTTP = true
	}
	if opts.Rate <= 0 {
		opts.Rate = 10
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 8
	}
	if opts.MaxSitemapBytes <= 0 {
		opts.MaxSitemapBytes = 50 << 20
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 3
	}
	if opts.MaxURLs <= 0 {
		opts.MaxURLs = 50_000
	}
	if opts.MaxSitemaps <= 0 {
		opts.MaxSitemaps = 1000
	}
	w := &warmer{opts: opts, log: opts.Logger, seen: map[target]bool{}}
	w.pace = newPacer(opts.Rate)
	var res Result
	if opts.PathsFile != "" {
		w.pathsFile(ctx, &res)
	}
	if opts.Sitemap != "" {
		w.sitemaps(ctx, &res)
	}
	w.wg.Wait()
	res.Targets = len(w.seen)
	res.Stored, res.Filled, res.Failed = w.stored, w.filled, w.failed
	res.Took = time.Since(start)
	return res
}

// warmer is one Run.
type warmer struct {
	opts Options
	log  *slog.Logger
	pace *pacer
	seen map[target]bool // targets already started (Run's goroutine only)

	wg                     sync.WaitGroup
	slots                  chan struct{}
	mu                     sync.Mutex // guards the counts
	stored, filled, failed int
}

// pathsFile fills each path of the file for each host.
func (w *warmer) pathsFile(ctx context.Context, res *Result) {
	f, err := os.Open(w.opts.PathsFile)
	if err != nil {
		w.log.Error("warm-up: cannot read WARM_PATHS_FILE", "file", w.opts.PathsFile, "err", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	https := !w.opts.HTTP
	line := 0
	for sc.Scan() && ctx.Err() == nil {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		path, ok := originPath(s)
		if !ok {
			res.BadLines++
			w.log.Warn("warm-up: not a path, skipped", "file", w.opts.PathsFile, "line", line, "text", s)
			continue
		}
		for _, host := range w.opts.Hosts {
			w.fill(ctx, target{host: host, https: https, path: path})
		}
	}
	if err := sc.Err(); err != nil {
		w.log.Error("warm-up: reading WARM_PATHS_FILE", "file", w.opts.PathsFile, "line", line, "err", err)
	}
}

// originPath checks a line of the paths file: an origin-form path with
// an optional query, returned in escaped form.
func originPath(s string) (string, bool) {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "#\\") {
		return "", false
	}
	u, err := url.ParseRequestURI(s)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "", false
	}
	return requestTarget(u), true
}

func requestTarget(u *url.URL) string {
	t := u.EscapedPath()
	if t == "" {
		t = "/"
	}
	if u.RawQuery != "" {
		t += "?" + u.RawQuery
	}
	return t
}

// fill starts the fill of t, unless it was started already, at the pace
// of Rate and within MaxInFlight.
func (w *warmer) fill(ctx context.Context, t target) {
	if w.seen[t] {
		return
	}
	w.seen[t] = true
	if w.slots == nil {
		w.slots = make(chan struct{}, w.opts.MaxInFlight)
	}
	if w.pace.wait(ctx) != nil {
		return
	}
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() { <-w.slots }()
		rec := newRecorder(0)
		stored := w.opts.Pages.Warm(rec, w.request(ctx, t))
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case stored:
			w.stored++
		case rec.status > 0 && rec.status < 500:
			w.filled++
		default:
			w.failed++
			w.log.Warn("warm-up: fill failed", "host", t.host, "path", t.path, "status", rec.status)
		}
	}()
}

// request builds the GET a visitor with no cookies would send for t.
func (w *warmer) request(ctx context.Context, t target) *http.Request {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.host+t.path, nil)
	if err != nil {
		// The target was parsed from a URL: cannot happen. A request for
		// the host's root is harmless.
		r, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.host+"/", nil)
	}
	r.RemoteAddr = "127.0.0.1:0"
	r.RequestURI = t.path
	r.Header.Set("User-Agent", "isrproxy-warm")
	if t.https {
		// How the page handler learns the scheme of a request that came
		// over TLS: the https variant is filled.
		r.TLS = &tls.ConnectionState{}
	}
	return r
}

// pacer lets at most rate events start per second, evenly spaced.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

func (p *pacer) wait(ctx context.Context) error {
	p.mu.Lock()
	now := time.Now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

// recorder is the ResponseWriter of warm-up requests: it keeps the status
// and, up to a limit, the body.
type recorder struct {
	header  http.Header
	status  int
	body    []byte
	limit   int64 // 0: the body is discarded
	over    bool  // the body went past limit
	written bool
}

func newRecorder(limit int64) *recorder { return &recorder{header: http.Header{}, limit: limit} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if r.limit == 0 || r.over {
		return len(b), nil
	}
	if int64(len(r.body)+len(b)) > r.limit {
		r.over = true
		return len(b), nil
	}
	r.body = append(r.body, b...)
	return len(b), nil
}

var _ io.Writer = (*recorder)(nil)

func (r *recorder) String() string { return fmt.Sprintf("%d, %d bytes", r.status, len(r.body)) }
