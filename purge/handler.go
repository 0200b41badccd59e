package purge

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/revalidation"
)

// maxBody is the largest request body accepted (1 MiB exactly is fine).
const maxBody = 1 << 20

// Handler serves the revalidate API under [Options.Path]. Build it with
// [New]; it is safe for concurrent use. Call Close on shutdown.
type Handler struct {
	opts    Options           // as given, with defaults filled in
	digest  [sha256.Size]byte // SHA-256 of the secret: compared, never the secret itself
	lockout *lockout
	jobs    *jobs
	recent  *recent // the last revalidation of each recent key, for the status endpoint
	logger  *slog.Logger
	now     func() time.Time

	ctx    context.Context // parent of every run's context; cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex     // guards closed, and orders wg.Add before Close's wg.Wait
	closed bool           // set by Close: no new runs start
	wg     sync.WaitGroup // one per run in progress, synchronous or job
}

// New builds a Handler. It panics when opts lacks a Revalidator or a Secret:
// those are programmer errors that configuration validation rules out.
func New(opts Options) *Handler {
	if opts.Revalidator == nil {
		panic("purge: nil Revalidator")
	}
	if opts.Secret == "" {
		panic("purge: empty Secret")
	}
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if len(opts.Path) > 1 {
		opts.Path = strings.TrimSuffix(opts.Path, "/")
	}
	h := &Handler{
		opts:    opts,
		digest:  sha256.Sum256([]byte(opts.Secret)),
		lockout: newLockout(maxLockoutPeers),
		jobs:    newJobs(maxJobs),
		recent:  newRecent(maxRecent),
		logger:  opts.Logger,
		now:     opts.Now,
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.opts.PurgeMode == "" {
		h.opts.PurgeMode = revalidation.Refetch
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// Close cancels the revalidations in progress (synchronous calls and
// background jobs), waits for them to end, and makes later calls answer 503.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// begin registers a run with Close; false once Close has been called.
func (h *Handler) begin() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// detach returns a context for a run: it keeps the request's values but not
// its cancellation, so a CMS that hangs up does not abort a half-done
// revalidation, and it ends on Close.
func (h *Handler) detach(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(h.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// ServeHTTP answers every request whose path is Options.Path or starts with
// Options.Path+"/": the API itself, its jobs, and 404 for anything else
// below it. Nothing is ever forwarded to the origin.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	c := &call{ResponseWriter: w}
	defer h.logCall(c, r, start)

	switch rt, id := h.route(r.URL.Path); rt {
	case routeAPI:
		h.serveAPI(c, r)
	case routeJob:
		h.serveJob(c, r, id)
	case routeStatus:
		h.serveStatus(c, r)
	default:
		if h.locked(c, r) {
			return
		}
		c.fail(http.StatusNotFound, "Not found")
	}
}

type route int

const (
	routeNone route = iota
	routeAPI
	routeJob
	routeStatus
)

// route tells which endpoint p names, and the job id for routeJob.
func (h *Handler) route(p string) (route, string) {
	if p == h.opts.Path {
		return routeAPI, ""
	}
	rest, ok := strings.CutPrefix(p, h.opts.Path+"/")
	if !ok {
		return routeNone, ""
	}
	if rest == "status" {
		return routeStatus, ""
	}
	if id, ok := strings.CutPrefix(rest, "jobs/"); ok && id != "" && !strings.Contains(id, "/") {
		return routeJob, id
	}
	return routeNone, ""
}

// serveAPI runs the checks in their documented order (method, lockout, secret,
// size, input), then the revalidation itself.
func (h *Handler) serveAPI(c *call, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		c.methodNotAllowed(r.Method, "GET, POST")
		return
	}
	if h.locked(c, r) || !h.authenticate(c, r) {
		return
	}
	body, status, err := readBody(r)
	if err != nil {
		c.fail(status, err.Error())
		return
	}
	t, err := parseTargets(r.URL.RawQuery, r.Header.Get("Content-Type"), body)
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return
	}
	h.serveTargets(c, r, t)
}

// serveTargets resolves checked targets to keys and acts on them, while
// the caller waits or as a job: the common end of the API and of PURGE
// and BAN (varnish.go).
func (h *Handler) serveTargets(c *call, r *http.Request, t *targets) {
	host, err := h.resolveHost(t.host, r)
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return
	}
	p, err := h.plan(t, host)
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return
	}
	c.attrs = append(c.attrs, p.logAttrs()...)
	if !h.begin() {
		c.fail(http.StatusServiceUnavailable, "Shutting down")
		return
	}
	if p.async {
		h.startJob(c, r, p)
		return
	}
	h.runNow(c, r, p)
}

// serveJob answers GET Path/jobs/<id> with the job's progress.
func (h *Handler) serveJob(c *call, r *http.Request, id string) {
	if r.Method != http.MethodGet {
		c.methodNotAllowed(r.Method, "GET")
		return
	}
	if h.locked(c, r) || !h.authenticate(c, r) {
		return
	}
	j := h.jobs.get(id, h.now())
	if j == nil {
		c.fail(http.StatusNotFound, "Unknown job "+strconv.Quote(id))
		return
	}
	c.attrs = append(c.attrs, slog.String("job", id))
	c.reply(http.StatusOK, j.view())
}

// readBody reads at most maxBody bytes of r's body; a larger body is 413.
func readBody(r *http.Request) ([]byte, int, error) {
	if r.ContentLength > maxBody {
		return nil, http.StatusRequestEntityTooLarge, errTooLarge
	}
	body, err := readAtMost(r.Body, maxBody+1)
	if err != nil {
		return nil, http.StatusBadRequest, badInput("Reading the body: %v", err)
	}
	if len(body) > maxBody {
		return nil, http.StatusRequestEntityTooLarge, errTooLarge
	}
	return body, 0, nil
}

var errTooLarge = badInput("Body over 1 MiB")

// call is one API request in progress: the writer, its status for the log,
// and attributes gathered for the one log line.
type call struct {
	http.ResponseWriter
	status int
	attrs  []slog.Attr
}

// reply writes v as the whole answer. Every API answer goes through it, so
// each is JSON and never stored by a cache.
func (c *call) reply(status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // cannot happen with the package's own types
		status, body = http.StatusInternalServerError, []byte(`{"message":"Encoding the answer failed"}`)
	}
	hdr := c.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)+1))
	c.status = status
	c.WriteHeader(status)
	_, _ = c.Write(append(body, '\n'))
}

// message is every error answer's shape.
type message struct {
	Message string `json:"message"`
}

func (c *call) fail(status int, msg string) {
	c.attrs = append(c.attrs, slog.String("error", msg))
	c.reply(status, message{msg})
}

func (c *call) methodNotAllowed(method, allow string) {
	c.Header().Set("Allow", allow)
	c.fail(http.StatusMethodNotAllowed, "Method "+strconv.Quote(method)+" not allowed: use "+allow)
}

// logCall writes the call's one log line: never the secret, never the query.
func (h *Handler) logCall(c *call, r *http.Request, start time.Time) {
	level := slog.LevelInfo
	if c.status >= 400 {
		level = slog.LevelWarn
	}
	if !h.logger.Enabled(r.Context(), level) {
		return
	}
	attrs := append([]slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("peer", peerAddr(r)),
		slog.Int("status", c.status),
		slog.Duration("duration", h.now().Sub(start)),
	}, c.attrs...)
	h.logger.LogAttrs(r.Context(), level, "revalidate", attrs...)
}

// peerAddr is the TCP peer's address without its port: the lockout's client
// identity. Forwarded headers are never consulted; anyone can write them.
func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var _ http.Handler = (*Handler)(nil)
