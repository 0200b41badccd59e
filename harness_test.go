package main

// The shared harness of the end-to-end tests: isrproxy started in-process
// through run() on loopback, scripted origins (an httptest one, and a raw one
// that can misbehave at the byte level), clients, and the assertions every
// rule file uses.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiSecret is the REVALIDATE_SECRET of every test instance.
const apiSecret = "test-secret-0123456789"

// testOrigin is a scripted origin: it counts requests, records the last
// one, and answers with whatever handler the test sets.
type testOrigin struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex    // guards last
	last    *http.Request // the last request received (body not kept)
	handler atomic.Pointer[http.HandlerFunc]
}

func newTestOrigin(t *testing.T, h http.HandlerFunc) *testOrigin {
	t.Helper()
	o := &testOrigin{}
	o.set(h)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.mu.Lock()
		o.last = r.Clone(context.Background())
		o.mu.Unlock()
		(*o.handler.Load())(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *testOrigin) set(h http.HandlerFunc) { o.handler.Store(&h) }

// lastRequest returns the last request the origin received.
func (o *testOrigin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// instance is isrproxy running in-process through run(), on loopback ports.
type instance struct {
	t      *testing.T
	URL    string // public listener, "http://127.0.0.1:port"
	Admin  string // admin listener
	TLS    string // TLS listener, "https://127.0.0.1:port"; "" when not configured
	logs   *syncBuffer
	client *http.Client
	sent   *atomic.Int64 // requests sent through do, each owed an access-log line; shared by copies
	proc   *process      // the run() behind it; shared by copies
}

// process is one call of run(): it can be stopped mid-test, and tells
// whether run has returned on its own.
type process struct {
	cancel   context.CancelFunc
	done     chan error
	exited   atomic.Bool // run returned before it was cancelled
	explicit atomic.Bool // the test called stop itself
	once     sync.Once
	err      error
}

// end cancels run and waits up to limit for it to return.
func (pr *process) end(limit time.Duration) error {
	pr.once.Do(func() {
		pr.cancel()
		select {
		case pr.err = <-pr.done:
		case <-time.After(limit):
			pr.err = fmt.Errorf("run did not return within %s of cancellation", limit)
		}
	})
	return pr.err
}

// quietLogs is the env of an instance that logs errors only: for tests
// that send a great many requests and never read the access log.
var quietLogs = map[string]string{"LOG_LEVEL": "error"}

// startProxy runs isrproxy in front of the origin at originURL, with env
// added to the test defaults. It stops when the test ends (or earlier, by
// stop); a non-nil error from run then fails the test. At the end, before
// isrproxy shuts down, the client's idle connections are closed: under
// concurrency Go's Transport dials spare connections that never carry a
// request, and http.Server.Shutdown waits up to 5 s for those (see
// TestShutdownIsNotHeldByUnusedConnection).
func startProxy(t *testing.T, originURL string, env map[string]string) *instance {
	t.Helper()
	environ := map[string]string{
		"ORIGIN_URL":        originURL,
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"LOG_LEVEL":         "info",
		"SHUTDOWN_TIMEOUT":  "5s",
		"GOMEMLIMIT":        "off", // leave the test process's limits alone
		"GOGC":              "100",
	}
	if v, ok := os.LookupEnv(fastPathVar); ok {
		environ[fastPathVar] = v // ISRPROXY_FASTPATH=off go test . : the suite without the fast path
	}
	for k, v := range env {
		environ[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Listeners, 1)
	pr := &process{cancel: cancel, done: make(chan error, 1)}
	logs := &syncBuffer{}
	go func() {
		err := run(ctx, environ, logs, func(l Listeners) { ready <- l })
		if ctx.Err() == nil {
			pr.exited.Store(true)
		}
		pr.done <- err
	}()
	var l Listeners
	select {
	case l = <-ready:
	case err := <-pr.done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("isrproxy did not start")
	}
	tlsURL := ""
	if l.TLS != "" {
		tlsURL = "https://" + l.TLS
	}
	in := &instance{
		t: t, URL: "http://" + l.Public, Admin: "http://" + l.Admin, logs: logs, sent: new(atomic.Int64), proc: pr,
		TLS: tlsURL,
		client: &http.Client{
			Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       30 * time.Second,
		},
	}
	t.Cleanup(func() {
		if pr.explicit.Load() {
			return // the test checked stop's answer itself
		}
		in.client.CloseIdleConnections()
		if err := pr.end(10 * time.Second); err != nil {
			t.Errorf("run returned %v", err)
		}
	})
	return in
}

// stop cancels the instance mid-test and waits for run to return (30 s at
// most), giving run's answer; the test's cleanup then checks nothing more.
func (in *instance) stop() error {
	in.proc.explicit.Store(true)
	err := in.proc.end(30 * time.Second)
	in.client.CloseIdleConnections()
	return err
}

// exited reports whether run returned before it was cancelled.
func (in *instance) exited() bool { return in.proc.exited.Load() }

// on returns a copy of in whose helpers report to t (a sub-test): require
// must only ever be called on the goroutine of the test it fails.
func (in *instance) on(t *testing.T) *instance {
	c := *in
	c.t = t
	return &c
}

// answer is a response read whole.
type answer struct {
	Proto  string // "HTTP/1.1", "HTTP/2.0"
	Status int
	Header http.Header
	Body   string
}

// do sends req and reads the whole answer.
func (in *instance) do(req *http.Request) answer {
	in.t.Helper()
	in.sent.Add(1)
	resp, err := in.client.Do(req)
	require.NoError(in.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(in.t, err)
	return answer{Proto: resp.Proto, Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// get fetches path with optional header pairs ("Name", "value", ...).
func (in *instance) get(path string, header ...string) answer {
	in.t.Helper()
	return in.request(http.MethodGet, path, nil, header...)
}

func (in *instance) request(method, path string, body io.Reader, header ...string) answer {
	in.t.Helper()
	req, err := http.NewRequest(method, in.URL+path, body)
	require.NoError(in.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	return in.do(req)
}

// revalidate calls the revalidate API with the secret and query (e.g. "path=/a").
func (in *instance) revalidate(query string) answer {
	in.t.Helper()
	return in.request(http.MethodPost, "/api/revalidate?"+query, nil, "Authorization", "Bearer "+apiSecret)
}

// accessLog returns the access-log lines written so far, as decoded JSON,
// once there is one for every request sent through do. A line is written
// after its answer has left (as nginx and Varnish log too), so a client can
// hold the whole answer a moment before the line exists: this waits for it.
func (in *instance) accessLog() []map[string]any {
	in.t.Helper()
	var lines []map[string]any
	require.Eventually(in.t, func() bool {
		lines = lines[:0]
		for line := range strings.SplitSeq(in.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
				lines = append(lines, m)
			}
		}
		return int64(len(lines)) >= in.sent.Load()
	}, 5*time.Second, 5*time.Millisecond, "an access-log line for each of %d requests:\n%s", in.sent.Load(), in.logs.String())
	return lines
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// page is an origin handler answering a fixed HTML body.
func page(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, body)
	}
}

// gate blocks origin handlers until it is opened, by the test or at
// cleanup (whichever comes first).
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

// newCoreGate is newGate under the name config_exit_test.go uses.
func newCoreGate() *gate { return newGate() }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens or r's client goes away; it reports
// whether the gate opened.
func (g *gate) wait(r *http.Request) bool {
	select {
	case <-g.ch:
		return true
	case <-r.Context().Done():
		return false
	}
}

// openAtCleanup must be called after startProxy, so that the gate opens
// before the proxy shuts down and before the origin closes (cleanups run
// last registered first).
func (g *gate) openAtCleanup(t *testing.T) { t.Cleanup(g.open) }

// hostPort is "127.0.0.1:port" of a "http://127.0.0.1:port" URL.
func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }

// rawAnswer is the outcome of one raw exchange.
type rawAnswer struct {
	Status int // 0 when the connection closed without an answer
	Header http.Header
	Body   string // the first answer's body
	Err    error  // why no answer could be read
}

// sendRaw writes raw bytes on a new TCP connection to the public listener
// and reads one answer to a request of the given method, with a deadline.
// Writing happens on its own goroutine, so that a server that answers
// before reading everything (431) is still heard.
func sendRaw(t *testing.T, p *instance, method, raw string) rawAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", hostPort(p.URL))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(15*time.Second)))
	go io.WriteString(conn, raw) //nolint:errcheck // the server may close first
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return rawAnswer{Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return rawAnswer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// mustRaw is sendRaw for an exchange that must get an answer.
func mustRaw(t *testing.T, p *instance, method, raw string) rawAnswer {
	t.Helper()
	r := sendRaw(t, p, method, raw)
	require.NoError(t, r.Err, "no answer to %q", raw)
	return r
}

// refused reports whether an answer is a refusal: a 4xx, or the 501 or
// 505 Go itself gives an unsupported Transfer-Encoding or protocol version,
// or the connection closed with no answer at all.
func refused(r rawAnswer) bool {
	return r.Err != nil || (r.Status >= 400 && r.Status < 500) ||
		r.Status == http.StatusNotImplemented || r.Status == http.StatusHTTPVersionNotSupported
}

// metric reads one unlabelled sample from p's admin /metrics.
func metric(t *testing.T, p *instance, name string) float64 {
	t.Helper()
	v, err := metricErr(p.Admin, name)
	require.NoError(t, err)
	return v
}

// metricErr reads one sample from the admin /metrics at admin, with no
// assertion: safe in any goroutine.
func metricErr(admin, name string) (float64, error) {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// waitForRequests waits until the proxy is answering n page requests at
// once, as its isrproxy_requests_in_flight gauge says.
func waitForRequests(t *testing.T, p *instance, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, "isrproxy_requests_in_flight")
		return err == nil && v == float64(n)
	}, 10*time.Second, 5*time.Millisecond, "waiting for %d requests in flight", n)
}

// gunzip decompresses s.
func gunzip(t *testing.T, s string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(s))
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	return string(b)
}

// gzipped compresses s.
func gzipped(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, s)
	zw.Close()
	return buf.Bytes()
}

// fetch gets url whole, with no assertion: safe in any goroutine.
func fetch(c *http.Client, url string) (answer, error) {
	resp, err := c.Get(url)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, err
}

// launchGets sends n GETs of path at once, with optional header pairs; the
// returned function, called on the test's goroutine, waits for their
// answers.
func launchGets(t *testing.T, p *instance, path string, n int, header ...string) func() []answer {
	t.Helper()
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodGet, p.URL+path, nil)
			if !assert.NoError(t, err) {
				return
			}
			for j := 0; j+1 < len(header); j += 2 {
				req.Header.Add(header[j], header[j+1])
			}
			resp, err := p.client.Do(req)
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			assert.NoError(t, err)
			answers[i] = answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
		}()
	}
	return func() []answer {
		t.Helper()
		waitAll(t, &wg)
		return answers
	}
}

// getAll sends n concurrent GETs of path and returns their answers; an
// error is kept as the answer's body, with no assertion.
func getAll(p *instance, path string, n int) []answer {
	out := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := fetch(p.client, p.URL+path)
			switch {
			case err != nil && got.Status == 0:
				out[i] = answer{Body: err.Error()}
			case err != nil:
				out[i] = answer{Body: "reading body: " + err.Error()}
			default:
				out[i] = got
			}
		})
	}
	wg.Wait()
	return out
}

// waitAll waits for wg on the test's goroutine, failing after 20 s.
func waitAll(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "concurrent requests did not finish")
	}
}

// assertStored checks that path (with header pairs) is answered from
// memory now: a HIT, and the origin not asked.
func assertStored(t *testing.T, p *instance, o *testOrigin, path string, header ...string) answer {
	t.Helper()
	before := o.hits.Load()
	got := p.get(path, header...)
	assert.Equal(t, "HIT", got.Header.Get("X-Cache"), "%s %q must be stored", path, header)
	assert.Equal(t, before, o.hits.Load(), "%s %q must be answered from memory", path, header)
	return got
}

// assertNotStored checks that path (with header pairs) is not answered
// from memory: the origin is asked again and the answer is no HIT nor STALE.
func assertNotStored(t *testing.T, p *instance, o *testOrigin, path string, header ...string) answer {
	t.Helper()
	before := o.hits.Load()
	got := p.get(path, header...)
	assert.NotEqual(t, "HIT", got.Header.Get("X-Cache"), "%s %q must not be stored", path, header)
	assert.NotEqual(t, "STALE", got.Header.Get("X-Cache"), "%s %q must not be stored", path, header)
	assert.Equal(t, before+1, o.hits.Load(), "%s %q must go to the origin", path, header)
	return got
}

// reflectOrigin answers every request with a text page that lists its method,
// request target, Host and every header, one "Name: value" a line: an
// origin that reflects whatever reaches it, the worst case for poisoning.
func reflectOrigin(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "Method: %s\nRequestURI: %s\nHost: %s\n", r.Method, r.RequestURI, r.Host)
	for _, name := range slices.Sorted(maps.Keys(r.Header)) {
		for _, v := range r.Header[name] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, b.String())
}

// seenRequest is what an origin received: one line per request.
type seenRequest struct {
	Method, RequestURI, Host string
	Header                   http.Header
}

// recorder records every request an origin receives.
type recorder struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (rec *recorder) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, seenRequest{r.Method, r.RequestURI, r.Host, r.Header.Clone()})
		rec.mu.Unlock()
		h(w, r)
	}
}

func (rec *recorder) all() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.seen)
}

// rawScript answers one request on a raw origin connection: it may write
// any bytes, or none. It reports whether the connection may serve another.
type rawScript func(c net.Conn, req *http.Request) (keepAlive bool)

// rawOrigin is an origin on a net.Listener the test controls: every
// request is answered by the current script, and the listener can be
// taken down and brought back on the same address.
type rawOrigin struct {
	addr   string
	script atomic.Pointer[rawScript]
	hits   atomic.Int64
	quit   chan struct{} // closed by close: waiting scripts give up

	mu     sync.Mutex // guards ln, conns, closed
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and every connection
}

func newRawOrigin(t *testing.T, s rawScript) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	o := &rawOrigin{addr: ln.Addr().String(), quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	o.set(s)
	o.serve(ln)
	t.Cleanup(o.close)
	return o
}

func (o *rawOrigin) URL() string { return "http://" + o.addr }

func (o *rawOrigin) set(s rawScript) { o.script.Store(&s) }

func (o *rawOrigin) current() rawScript { return *o.script.Load() }

func (o *rawOrigin) serve(ln net.Listener) {
	o.mu.Lock()
	o.ln = ln
	o.mu.Unlock()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			if o.closed {
				o.mu.Unlock()
				c.Close()
				return
			}
			o.conns[c] = struct{}{}
			o.wg.Add(1)
			o.mu.Unlock()
			go o.handle(c)
		}
	}()
}

func (o *rawOrigin) handle(c net.Conn) {
	defer o.wg.Done()
	defer func() {
		o.mu.Lock()
		delete(o.conns, c)
		o.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		o.hits.Add(1)
		if !o.current()(c, req) {
			return
		}
	}
}

// down closes the listener and every connection: the origin is gone.
func (o *rawOrigin) down() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ln != nil {
		o.ln.Close()
		o.ln = nil
	}
	for c := range o.conns {
		c.Close()
	}
}

// up listens again on the same address.
func (o *rawOrigin) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	require.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", o.addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond, "listen again on %s", o.addr)
	o.serve(ln)
}

// close stops everything and waits for every goroutine of the origin.
func (o *rawOrigin) close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.quit)
	}
	o.mu.Unlock()
	o.down()
	o.wg.Wait()
}

// bigBody is a 4 MiB body that is not compressed when stored
// (application/octet-stream): larger than any socket buffer.
var bigBody = func() []byte {
	b := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}()

// goodScript answers every path with a complete page naming the path and
// the current version; "/big" is bigBody.
func goodScript(version *atomic.Int64) rawScript {
	return func(c net.Conn, req *http.Request) bool {
		if req.URL.Path == "/big" {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(bigBody))
			_, err := c.Write(bigBody)
			return err == nil
		}
		body := versionedBody(req.URL.Path, version.Load())
		_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return err == nil
	}
}

func versionedBody(path string, version int64) string {
	return fmt.Sprintf("<p>%s good version %d</p>", path, version)
}

// rawReply writes s and closes the connection cleanly (FIN).
func rawReply(s string) rawScript {
	return func(c net.Conn, _ *http.Request) bool {
		io.WriteString(c, s)
		return false
	}
}

// resetAfter writes s and resets the connection (RST).
func resetAfter(s string) rawScript {
	return func(c net.Conn, _ *http.Request) bool {
		if s != "" {
			io.WriteString(c, s)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		return false
	}
}

// trickle writes head at once, then tail one byte every 50 ms, until
// done, the proxy hangs up, or the origin closes.
func (o *rawOrigin) trickle(head, tail string) rawScript {
	return func(c net.Conn, _ *http.Request) bool {
		if head != "" {
			if _, err := io.WriteString(c, head); err != nil {
				return false
			}
		}
		for i := range len(tail) {
			select {
			case <-o.quit:
				return false
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := c.Write([]byte{tail[i]}); err != nil {
				return false
			}
		}
		return false
	}
}

// hang writes head, then sends nothing more until the proxy hangs up
// (at most 10 s).
func (o *rawOrigin) hang(head string) rawScript {
	return func(c net.Conn, _ *http.Request) bool {
		if head != "" {
			io.WriteString(c, head)
		}
		buf := make([]byte, 512)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-o.quit:
				return false
			default:
			}
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := c.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return false // the proxy hung up
			}
		}
		return false
	}
}

// storm5xx answers every request with a complete 5xx, rotating codes.
func storm5xx() rawScript {
	var n atomic.Int64
	codes := []int{500, 502, 503, 504}
	return func(c net.Conn, _ *http.Request) bool {
		code := codes[int(n.Add(1))%len(codes)]
		body := "<p>origin error</p>"
		_, err := fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s",
			code, http.StatusText(code), len(body), body)
		return err == nil
	}
}

const okHead = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"

// checkStoredPages sends n GETs, from 4 goroutines on a fresh client, of the
// stored pages (path -> body), and returns a description of each answer
// that was not 200 HIT with the stored body. It is safe to call from any
// goroutine.
func checkStoredPages(base string, pages map[string]string, n int) []string {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 15 * time.Second}
	defer client.CloseIdleConnections()
	paths := make([]string, 0, len(pages))
	for p := range pages {
		paths = append(paths, p)
	}
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 4 {
				path := paths[i%len(paths)]
				if msg := checkPage(client, base, path, pages[path]); msg != "" {
					mu.Lock()
					bad = append(bad, msg)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return bad
}

// checkPage fetches path and describes what is wrong with the answer,
// or returns "".
func checkPage(client *http.Client, base, path, want string) string {
	resp, err := client.Get(base + path)
	if err != nil {
		return fmt.Sprintf("%s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Sprintf("%s: reading body: %v", path, err)
	case resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache") != "HIT":
		return fmt.Sprintf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("X-Cache"))
	case string(body) != want:
		return fmt.Sprintf("%s: body %.60q, want %.60q", path, body, want)
	}
	return ""
}

type originFault struct {
	name   string
	script rawScript // nil: the origin is down (listener and connections closed)
	// fill is the status of a fill during the fault: 502, 504, or 0 for
	// the origin's own 5xx (not storable, given to its fetchers).
	fill int
	// refetchError is what each failed result's error must contain.
	refetchError string
}

func originFaults(o *rawOrigin) []originFault {
	partial := "<p>partial page"
	return []originFault{
		{"reset before answering", resetAfter(""), 502, "previous version kept"},
		{"reset mid-body", resetAfter(okHead + "Content-Length: 5000\r\n\r\n" + partial), 502, "previous version kept"},
		{"reset mid-chunk", resetAfter(okHead + "Transfer-Encoding: chunked\r\n\r\n400\r\n" + partial), 502, "previous version kept"},
		{"trickled body", o.trickle(okHead+"Content-Length: 120\r\n\r\n", strings.Repeat("p", 120)), 504, "origin timed out; previous version kept"},
		{"trickled headers", o.trickle("", okHead+"Content-Length: 4\r\n\r\nslow"), 504, "origin timed out; previous version kept"},
		{"hang before headers", o.hang(""), 504, "origin timed out; previous version kept"},
		{"hang mid-body", o.hang(okHead + "Content-Length: 100\r\n\r\n" + partial), 504, "origin timed out; previous version kept"},
		{"bad chunk size", rawReply(okHead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + partial + "\r\n0\r\n\r\n"), 502, "previous version kept"},
		{"chunked without last chunk", rawReply(okHead + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n", len(partial), partial)), 502, "previous version kept"},
		{"garbage status line", rawReply("HTTP/1.1 2x0 OK\r\nContent-Length: 15\r\n\r\n" + partial), 502, "previous version kept"},
		{"not HTTP at all", rawReply("SSH-2.0-OpenSSH_9.6\r\n\r\n" + partial), 502, "previous version kept"},
		{"Content-Length longer than body", rawReply(okHead + "Content-Length: 100\r\n\r\n" + partial), 502, "previous version kept"},
		{"conflicting Content-Length", rawReply(okHead + "Content-Length: 15\r\nContent-Length: 16\r\n\r\n" + partial + "."), 502, "previous version kept"},
		{"5xx storm", storm5xx(), 0, "previous version kept"},
		{"origin down", nil, 502, "previous version kept"},
	}
}

// dial opens a raw connection to the public listener.
func dial(t *testing.T, p *instance) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL, "http://"), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// slowReaders starts n clients that ask for /big with a small receive
// buffer and then read one byte a second, until stop is called.
func slowReaders(t *testing.T, p *instance, n int) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range n {
		c := dial(t, p)
		conns[i] = c
		if tc, ok := c.(*net.TCPConn); ok {
			require.NoError(t, tc.SetReadBuffer(4096))
		}
		// The listener's own host: the key under which /big is stored.
		_, err := fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimPrefix(p.URL, "http://"))
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			one := make([]byte, 1)
			for range 60 { // a bound: 60 s at most
				if _, err := c.Read(one); err != nil {
					return
				}
				select {
				case <-quit:
					return
				case <-time.After(time.Second):
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		})
	}
}

// abandonedConns opens n connections that send the start of a request
// line, or nothing, or headers without their end, and are left open.
func abandonedConns(t *testing.T, p *instance, n int) []net.Conn {
	t.Helper()
	starts := []string{"GET /sto", "", "G", "GET /stored HTTP/1.1\r\nHost: x\r\n", "POST /api/revalidate HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"paths\":"}
	conns := make([]net.Conn, n)
	for i := range n {
		c := dial(t, p)
		if s := starts[i%len(starts)]; s != "" {
			_, err := io.WriteString(c, s)
			require.NoError(t, err)
		}
		conns[i] = c
	}
	return conns
}

// slowloris starts n clients that send a request's headers one line
// every 100 ms, lines at most, until stop is called.
func slowloris(t *testing.T, p *instance, n, lines int) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range n {
		c := dial(t, p)
		conns[i] = c
		_, err := fmt.Fprintf(c, "GET /stored/%d HTTP/1.1\r\nHost: loris.test\r\n", i)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range lines {
				select {
				case <-quit:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := fmt.Fprintf(c, "X-Loris-%d: %d\r\n", j, j); err != nil {
					return
				}
			}
		}()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			wg.Wait()
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

// editableOrigin serves GETs with a version that every unsafe request
// bumps; an unsafe request is answered with the status, Location and
// Content-Location its X-Answer-* headers ask for.
func editableOrigin(version *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			io.Copy(io.Discard, r.Body)
			version.Add(1)
			if l := r.Header.Get("X-Answer-Location"); l != "" {
				w.Header().Set("Location", l)
			}
			if l := r.Header.Get("X-Answer-Content-Location"); l != "" {
				w.Header().Set("Content-Location", l)
			}
			status, _ := strconv.Atoi(r.Header.Get("X-Answer-Status"))
			w.WriteHeader(max(status, http.StatusOK))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Vary", "X-Lang")
		fmt.Fprintf(w, "<p>%s %s version %d</p>", r.URL.RequestURI(), r.Header.Get("X-Lang"), version.Load())
	}
}

type apiAnswer struct {
	Revalidated bool   `json:"revalidated"`
	Message     string `json:"message"`
	Results     []struct {
		Path    string `json:"path"`
		Status  int    `json:"status"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"results"`
}

func decodeAPI(t *testing.T, a answer) apiAnswer {
	t.Helper()
	var got apiAnswer
	require.NoError(t, json.Unmarshal([]byte(a.Body), &got), "body %q", a.Body)
	assert.Equal(t, "no-store", a.Header.Get("Cache-Control"))
	return got
}

// gatedOrigin answers chosen requests only when the test releases them.
// Request n (counting from 1) that has a gate waits for it, then answers
// the body that was current when it arrived: what a CMS renders.
type gatedOrigin struct {
	mu      sync.Mutex
	n       int
	gates   map[int]chan struct{}
	arrived map[int]chan struct{}
	body    string
}

func newGatedOrigin(body string, gated ...int) *gatedOrigin {
	g := &gatedOrigin{gates: map[int]chan struct{}{}, arrived: map[int]chan struct{}{}, body: body}
	for _, n := range gated {
		g.gates[n] = make(chan struct{})
		g.arrived[n] = make(chan struct{})
	}
	return g
}

func (g *gatedOrigin) setBody(b string) {
	g.mu.Lock()
	g.body = b
	g.mu.Unlock()
}

func (g *gatedOrigin) handler(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.n++
	n, body := g.n, g.body
	gate, arrived := g.gates[n], g.arrived[n]
	g.mu.Unlock()
	if gate != nil {
		close(arrived)
		<-gate
	}
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, body)
}
