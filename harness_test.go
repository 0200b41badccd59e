package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
	in := &instance{
		t: t, URL: "http://" + l.Public, Admin: "http://" + l.Admin, logs: logs, sent: new(atomic.Int64), proc: pr,
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
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
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
