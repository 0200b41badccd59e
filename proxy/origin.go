package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/isrproxy/isrproxy/cache"
)

// errTooLarge reports a body over MAX_OBJECT_BYTES: it is streamed, not stored.
var errTooLarge = errors.New("response larger than MAX_OBJECT_BYTES")

// errBuffersFull reports a fetch that would take the bodies being read
// into memory past their budget: it is streamed, not stored, this time.
var errBuffersFull = errors.New("too many response bodies being buffered at once")

// bufferBudget is the bound on the bytes of origin bodies held in
// memory at once, from the first byte read until their page is stored or
// dropped (or, for a body streamed instead, until those bytes are given
// out), so that many large fills cannot push the process past
// CACHE_MAX_BYTES + 128 MiB. A fill that finds it spent is streamed to its
// visitor instead.
const bufferBudget = 32 << 20

// origin is the only code that builds requests to the origin: every URL it
// sends to has the scheme and host of ORIGIN_URL, whatever the input
// (docs/promises.md#9-origin-only), and the path and query exactly as keyed.
type origin struct {
	base      *url.URL // scheme and host of ORIGIN_URL
	host      string   // ORIGIN_HOST, or "" for the visitor's Host
	transport http.RoundTripper
	slots     *semaphore.Weighted // ORIGIN_MAX_CONCURRENCY, over every origin request
	buffers   *semaphore.Weighted // bufferBudget bytes of bodies being read
	pass      *semaphore.Weighted // the share of slots pass-through may hold
	timeout   time.Duration
}

// newTransport builds the one transport shared by fills, refetches and the
// pass-through proxy. Compression is disabled so that what the origin sends
// is what we see (a Transport that adds Accept-Encoding itself also
// decompresses the answer and drops its Content-Encoding).
func newTransport(timeout time.Duration, maxConns int) *http.Transport {
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,                               // never an environment proxy: the origin only
		DialContext:           dialHeadConns(dialer.DialContext), // see connheader.go
		DisableCompression:    true,
		MaxIdleConns:          max(maxConns*2, 100),
		MaxIdleConnsPerHost:   max(maxConns, 16),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// url returns the origin URL for an escaped path and a raw query.
func (o *origin) url(escapedPath, rawQuery string) *url.URL {
	u := &url.URL{Scheme: o.base.Scheme, Host: o.base.Host, RawQuery: rawQuery}
	if p, err := url.PathUnescape(escapedPath); err == nil {
		u.Path, u.RawPath = p, escapedPath
	} else {
		u.Path = escapedPath // cannot happen for checked keys
	}
	if u.EscapedPath() != escapedPath {
		// Only a checked, validly escaped path is ever sent: RawPath is
		// used as is exactly when it is a valid encoding.
		u.RawPath = ""
	}
	return u
}

// hostHeader is the Host sent to the origin for a visitor's host.
func (o *origin) hostHeader(visitorHost string) string {
	if o.host != "" {
		return o.host
	}
	return visitorHost
}

// droppedOnFill are request headers a fill or refetch never forwards, in
// canonical form: the stored page must be the anonymous render of exactly
// the keyed URL, whoever asked first. Beside credentials, ranges and
// conditionals: headers that rewrite the URL or method, or that name a
// host, scheme or client address to frameworks that trust them.
var droppedOnFill = map[string]bool{
	"Cookie": true, "Authorization": true, "Range": true, "If-Range": true,
	"If-Match": true, "If-None-Match": true, "If-Modified-Since": true, "If-Unmodified-Since": true,
	"X-Original-Url": true, "X-Original-Uri": true, "X-Rewrite-Url": true,
	"X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true,
	"Forwarded": true, "Forwarded-For": true, "X-Forwarded": true,
	"X-Host": true, "X-Original-Host": true, "X-Http-Host-Override": true,
	"Front-End-Https": true, "X-Url-Scheme": true,
	"X-Real-Ip": true, "X-Client-Ip": true, "True-Client-Ip": true, "X-Cluster-Client-Ip": true,
	"X-Proxyuser-Ip": true, "X-Original-Forwarded-For": true,
	"Content-Length": true, "Transfer-Encoding": true, "Expect": true, "Content-Type": true,
}

// droppedFromFill reports whether a fill drops the header name. CGI and
// PHP origins read underscores as dashes (X_Original_URL is
// X-Original-URL to them), so both spellings go.
func droppedFromFill(name string) bool {
	return droppedOnFill[http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))] || isForwardedHeader(name)
}

// isForwardedHeader reports an X-Forwarded-* header in any spelling,
// X_Forwarded_Host included: CGI and PHP origins read underscores as
// dashes, so that spelling too could poison a page.
func isForwardedHeader(name string) bool {
	if len(name) < len("X-Forwarded-") {
		return false
	}
	prefix := strings.ReplaceAll(name[:len("X-Forwarded-")], "_", "-")
	return strings.EqualFold(prefix, "X-Forwarded-")
}

// hopHeaders are removed from every request and response (RFC 9110 §7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes hop-by-hop headers and those named in Connection.
func removeHopHeaders(h http.Header) {
	for _, line := range h["Connection"] {
		for _, name := range strings.Split(line, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// setForwarded sets the forwarding headers of a request to the origin, for
// fills and pass-through alike: whatever the client sent as Forwarded or
// X-Forwarded-* (in any spelling) is dropped, and X-Forwarded-For (the
// client's address; none for a refetch), X-Forwarded-Host (the visitor's
// host) and X-Forwarded-Proto are set afresh, so an origin that trusts them
// is never told what a visitor made up.
func setForwarded(h http.Header, clientIP, host, scheme string) {
	for k := range h {
		if isForwardedHeader(k) || http.CanonicalHeaderKey(k) == "Forwarded" {
			delete(h, k)
		}
	}
	if clientIP != "" {
		h["X-Forwarded-For"] = []string{clientIP}
	}
	h["X-Forwarded-Host"] = []string{host}
	h["X-Forwarded-Proto"] = []string{scheme}
}

// fillRequest builds a GET for key's variant for a visitor over https (or
// not). in is the visitor's request (nil for a refetch); vary holds the
// header values that select the variant.
func (o *origin) fillRequest(ctx context.Context, key cache.Key, https bool, in *http.Request, vary http.Header) *http.Request {
	h := make(http.Header, 8)
	clientIP := ""
	if in != nil {
		h = in.Header.Clone()
		removeHopHeaders(h)
		clientIP, _, _ = net.SplitHostPort(in.RemoteAddr)
		if _, ok := h["User-Agent"]; !ok {
			h["User-Agent"] = []string{""} // send none, not Go's default (as ReverseProxy does)
		}
	} else {
		h.Set("User-Agent", "isrproxy")
	}
	for k, vs := range vary {
		h[k] = vs
	}
	for k := range h {
		if droppedFromFill(k) {
			delete(h, k)
		}
	}
	h.Set("Accept-Encoding", "gzip")
	scheme := "http"
	if https {
		scheme = "https"
	}
	setForwarded(h, clientIP, key.Host, scheme)
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        o.url(key.Path, key.Query),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       o.hostHeader(key.Host),
	}
	return req.WithContext(ctx)
}

// fetched is a complete origin response, its body read into memory.
type fetched struct {
	status int
	header http.Header
	body   []byte
	budget *budgetReader // the body's share of bufferBudget, until done
}

// statusOf is the origin's status for metrics: 0 when the fetch failed
// (err is what fetch returned with f).
func (f *fetched) statusOf(err error) int {
	if err != nil || f == nil {
		return 0
	}
	return f.status
}

// done returns the body's share of the buffer budget. Call it once the page
// built from it is stored or dropped: until then the body (and what is
// built from it) is memory that no other budget counts.
func (f *fetched) done() {
	if f != nil && f.budget != nil {
		f.budget.release()
		f.budget = nil
	}
}

// errOriginTimeout is why an origin fetch is cut off when ORIGIN_TIMEOUT
// has passed: a timeout, which the visitor is answered 504.
var errOriginTimeout = fmt.Errorf("no answer within ORIGIN_TIMEOUT: %w", context.DeadlineExceeded)

// fetch sends req within the origin's concurrency limit and timeout, and
// reads the whole body, at most limit bytes. A body cut short is an error:
// nothing partial is ever stored. A body too large to buffer fails with
// errTooLarge or errBuffersFull, its response closed.
func (o *origin) fetch(ctx context.Context, req *http.Request, limit int64) (*fetched, error) {
	got, open, err := o.fetchOpen(ctx, req, limit)
	if open != nil {
		open.Body.Close()
	}
	return got, err
}

// fetchOpen is fetch, but a response whose body proves too large to
// buffer (errTooLarge: declared or read beyond limit; errBuffersFull: the
// buffer budget is spent) is returned still open beside the error, so that
// it can be streamed rather than fetched again. Its Body (an *openBody)
// gives the bytes already read, then the rest; ORIGIN_TIMEOUT no longer
// applies to it (as for a pass-through, whose body is not timed either),
// and the origin slot is held until it is closed. The caller must close it.
func (o *origin) fetchOpen(ctx context.Context, req *http.Request, limit int64) (*fetched, *http.Response, error) {
	// The wait for a slot counts against ORIGIN_TIMEOUT: a fill or a
	// revalidation never waits without end behind a saturated origin. The
	// timeout is a timer rather than a deadline so that it can be lifted
	// from a response handed on open.
	ctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(o.timeout, func() { cancel(errOriginTimeout) })
	kept := false // the response is handed on open: its body releases all
	defer func() {
		if !kept {
			timer.Stop()
			cancel(context.Canceled)
		}
	}()
	if err := o.slots.Acquire(ctx, 1); err != nil {
		return nil, nil, fmt.Errorf("waiting for an origin slot: %w", context.Cause(ctx))
	}
	defer func() {
		if !kept {
			o.slots.Release(1)
		}
	}()
	var head headCopy
	resp, err := o.transport.RoundTrip(req.WithContext(head.trace(ctx)))
	head.removeClosedConnectionNames(resp)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", req.URL.RequestURI(), withCause(ctx, err))
	}
	defer func() {
		if !kept {
			resp.Body.Close()
		}
	}()
	open := func(read []byte, br *budgetReader, why error) (*fetched, *http.Response, error) {
		if !timer.Stop() { // the timeout came first: the response is being cut off
			br.release()
			return nil, nil, fmt.Errorf("read %s: %w", req.URL.RequestURI(), errOriginTimeout)
		}
		kept = true
		removeHopHeaders(resp.Header)
		resp.Body = &openBody{read: read, budget: br, rest: resp.Body, cancel: cancel, slots: o.slots}
		return nil, resp, why
	}
	if resp.ContentLength > limit {
		return open(nil, nil, errTooLarge)
	}
	br := &budgetReader{r: io.LimitReader(resp.Body, limit+1), budget: o.buffers}
	if resp.ContentLength > 0 {
		// Take the whole declared size before a byte is buffered: a fill
		// that cannot have it allocates nothing and is streamed instead.
		if !br.budget.TryAcquire(resp.ContentLength) {
			return open(nil, nil, errBuffersFull)
		}
		br.held = resp.ContentLength
	}
	body, err := readBody(br, resp.ContentLength)
	switch {
	case errors.Is(err, errBuffersFull):
		return open(body, br, errBuffersFull)
	case err != nil:
		br.release()
		return nil, nil, fmt.Errorf("read %s: %w", req.URL.RequestURI(), withCause(ctx, err))
	case int64(len(body)) > limit:
		return open(body, br, errTooLarge)
	}
	removeHopHeaders(resp.Header)
	return &fetched{status: resp.StatusCode, header: resp.Header, body: body, budget: br}, nil, nil
}

// withCause adds to err why ctx ended, if it has: a fetch cut off by
// ORIGIN_TIMEOUT then reads as a timeout whatever error the transport
// made of it.
func withCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// openBody is the body of a response handed on open by fetchOpen: the
// bytes already read, then the rest as the origin sends it. Closing it
// ends the origin request and gives back its origin slot (and its share
// of pass-through, if it took one).
type openBody struct {
	read   []byte        // read from the origin before, not yet given out
	budget *budgetReader // read's share of the buffer budget; nil: none
	rest   io.ReadCloser // the origin's body, after read
	cancel context.CancelCauseFunc
	slots  *semaphore.Weighted // the origin slot it holds
	share  *semaphore.Weighted // the pass-through share it holds; nil: none
	closed bool
}

// Read gives out what was read before, then the rest. The bytes read
// before stay counted against the buffer budget until they are given out:
// until then they are memory held.
func (b *openBody) Read(p []byte) (int, error) {
	if len(b.read) > 0 {
		n := copy(p, b.read)
		b.read = b.read[n:]
		if len(b.read) == 0 {
			b.read = nil
			b.budget.release()
		}
		return n, nil
	}
	return b.rest.Read(p)
}

// takeShare counts the response, from now on, in the share of origin
// slots that pass-through may hold, if that share has room: it is
// streamed as a pass-through is, for as long as its visitor reads.
func (b *openBody) takeShare(share *semaphore.Weighted) {
	if b.share == nil && share != nil && share.TryAcquire(1) {
		b.share = share
	}
}

// abort ends the origin request from another goroutine (its visitor has
// gone away): a Read waiting on the origin returns. Close must still be
// called.
func (b *openBody) abort() { b.cancel(context.Canceled) }

// Close ends the origin request and gives back what it held. It is safe to
// call more than once, from the goroutine that reads.
func (b *openBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.read = nil
	b.budget.release()
	err := b.rest.Close()
	b.cancel(context.Canceled)
	b.slots.Release(1)
	if b.share != nil {
		b.share.Release(1)
	}
	return err
}

// readBody reads r to its end. With the size known it reads into a buffer
// of that size (plus room to see the end), not one grown by doubling: the
// budget counts the bytes read, and the memory should be no more.
func readBody(r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(r)
	}
	var buf bytes.Buffer
	buf.Grow(int(size) + bytes.MinRead)
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// budgetReader takes every byte it reads from a shared budget, without
// waiting: when the budget is spent it fails with errBuffersFull.
type budgetReader struct {
	r      io.Reader
	budget *semaphore.Weighted
	held   int64 // taken from budget
	read   int64 // bytes read so far
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	if over := b.read - b.held; over > 0 { // beyond what was taken ahead
		if !b.budget.TryAcquire(over) {
			// The n bytes are kept, uncounted, so that the response can
			// still be streamed whole.
			return n, errBuffersFull
		}
		b.held += over
	}
	return n, err
}

// release gives back what b holds; a nil b holds nothing.
func (b *budgetReader) release() {
	if b != nil && b.held > 0 {
		b.budget.Release(b.held)
		b.held = 0
	}
}

// limitedTransport holds an origin slot for the life of each pass-through
// exchange, until its body is closed (or at once for a protocol switch).
// Pass-through takes at most the slots of pass: the rest stay for fills
// and refetches, so that uploads trickled by anyone cannot hold every slot
// and starve the cache and the revalidate API.
type limitedTransport struct {
	next  http.RoundTripper
	slots *semaphore.Weighted // ORIGIN_MAX_CONCURRENCY
	pass  *semaphore.Weighted // the share of it pass-through may hold
}

// passShare is how many of n origin slots pass-through may hold: all but a
// quarter (at least one) kept for fills and refetches, when n allows.
func passShare(n int) int64 {
	if n < 2 {
		return int64(n)
	}
	return int64(n - max(n/4, 1))
}

// RoundTrip implements http.RoundTripper.
func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.pass.Acquire(req.Context(), 1); err != nil {
		return nil, fmt.Errorf("waiting for an origin slot: %w", err)
	}
	if err := t.slots.Acquire(req.Context(), 1); err != nil {
		t.pass.Release(1)
		return nil, fmt.Errorf("waiting for an origin slot: %w", err)
	}
	release := func() {
		t.slots.Release(1)
		t.pass.Release(1)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		release()
		return resp, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

type releasingBody struct {
	io.ReadCloser
	release func()
	done    bool
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.done {
		b.done = true
		b.release()
	}
	return err
}
