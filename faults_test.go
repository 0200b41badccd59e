package main

// Fault injection (issue 4, section 3): an origin that resets, trickles,
// hangs, mangles its framing, fails in storms or is gone; clients that read
// one byte a second, abandon half a request line or dribble headers. Stored
// pages keep being served, nothing partial is stored, the API reports every
// failure, other visitors are unaffected, and no goroutine is left behind.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// ---------------------------------------------------------------- raw origin

// faultScript answers one request on a raw origin connection: it may write
// any bytes, or none. It reports whether the connection may serve another.
type faultScript func(c net.Conn, req *http.Request) (keepAlive bool)

// faultOrigin is an origin on a net.Listener the test controls: every
// request is answered by the current script, and the listener can be
// taken down and brought back on the same address.
type faultOrigin struct {
	addr   string
	script atomic.Pointer[faultScript]
	hits   atomic.Int64
	quit   chan struct{} // closed by close: waiting scripts give up

	mu     sync.Mutex // guards ln, conns, closed
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and every connection
}

func newFaultOrigin(t *testing.T, s faultScript) *faultOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	o := &faultOrigin{addr: ln.Addr().String(), quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	o.set(s)
	o.serve(ln)
	t.Cleanup(o.close)
	return o
}

func (o *faultOrigin) URL() string          { return "http://" + o.addr }
func (o *faultOrigin) set(s faultScript)    { o.script.Store(&s) }
func (o *faultOrigin) current() faultScript { return *o.script.Load() }

func (o *faultOrigin) serve(ln net.Listener) {
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

func (o *faultOrigin) handle(c net.Conn) {
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
func (o *faultOrigin) down() {
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
func (o *faultOrigin) up(t *testing.T) {
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
func (o *faultOrigin) close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.quit)
	}
	o.mu.Unlock()
	o.down()
	o.wg.Wait()
}

// faultBig is a 4 MiB body that is not compressed when stored
// (application/octet-stream): larger than any socket buffer.
var faultBig = func() []byte {
	b := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}()

// faultGood answers every path with a complete page naming the path and
// the current version; "/big" is faultBig.
func faultGood(version *atomic.Int64) faultScript {
	return func(c net.Conn, req *http.Request) bool {
		if req.URL.Path == "/big" {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(faultBig))
			_, err := c.Write(faultBig)
			return err == nil
		}
		body := faultBody(req.URL.Path, version.Load())
		_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return err == nil
	}
}

func faultBody(path string, version int64) string {
	return fmt.Sprintf("<p>%s good version %d</p>", path, version)
}

// faultRaw writes s and closes the connection cleanly (FIN).
func faultRaw(s string) faultScript {
	return func(c net.Conn, _ *http.Request) bool {
		io.WriteString(c, s)
		return false
	}
}

// faultReset writes s and resets the connection (RST).
func faultReset(s string) faultScript {
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

// faultTrickle writes head at once, then tail one byte every 50 ms, until
// done, the proxy hangs up, or the origin closes.
func (o *faultOrigin) faultTrickle(head, tail string) faultScript {
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

// faultHang writes head, then sends nothing more until the proxy hangs up
// (at most 10 s).
func (o *faultOrigin) faultHang(head string) faultScript {
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

// faultStorm answers every request with a complete 5xx, rotating codes.
func faultStorm() faultScript {
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

const faultHead = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"

// ---------------------------------------------------------------- a stoppable instance

// faultCheckPages sends n GETs, from 4 goroutines on a fresh client, of the
// stored pages (path -> body), and returns a description of each answer
// that was not 200 HIT with the stored body. It is safe to call from any
// goroutine.
func faultCheckPages(base string, pages map[string]string, n int) []string {
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
				if msg := faultCheckOne(client, base, path, pages[path]); msg != "" {
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

// faultCheckOne fetches path and describes what is wrong with the answer,
// or returns "".
func faultCheckOne(client *http.Client, base, path, want string) string {
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

// faultReaders reads the stored pages in a loop from 4 goroutines until
// stop is called, which reports how many answers there were and describes
// (up to 20 of) those that were not 200 HIT with the stored body.
func faultReaders(base string, pages map[string]string) (stop func() (int64, []string)) {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}, Timeout: 15 * time.Second}
	paths := make([]string, 0, len(pages))
	for p := range pages {
		paths = append(paths, p)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	var mu sync.Mutex
	var bad []string
	deadline := time.Now().Add(60 * time.Second) // a bound, should stop never come
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i++ {
				select {
				case <-quit:
					return
				default:
				}
				path := paths[i%len(paths)]
				msg := faultCheckOne(client, base, path, pages[path])
				served.Add(1)
				if msg != "" {
					mu.Lock()
					if len(bad) < 20 {
						bad = append(bad, msg)
					}
					mu.Unlock()
				}
			}
		}()
	}
	return func() (int64, []string) {
		close(quit)
		wg.Wait()
		client.CloseIdleConnections()
		mu.Lock()
		defer mu.Unlock()
		return served.Load(), bad
	}
}

// ---------------------------------------------------------------- origin faults

type faultCase struct {
	name   string
	script faultScript // nil: the origin is down (listener and connections closed)
	// fill is the status of a fill during the fault: 502, 504, or 0 for
	// the origin's own 5xx (not storable, given to its fetchers).
	fill int
	// refetchError is what each failed result's error must contain.
	refetchError string
}

func faultCases(o *faultOrigin) []faultCase {
	partial := "<p>partial page"
	return []faultCase{
		{"reset before answering", faultReset(""), 502, "previous version kept"},
		{"reset mid-body", faultReset(faultHead + "Content-Length: 5000\r\n\r\n" + partial), 502, "previous version kept"},
		{"reset mid-chunk", faultReset(faultHead + "Transfer-Encoding: chunked\r\n\r\n400\r\n" + partial), 502, "previous version kept"},
		{"trickled body", o.faultTrickle(faultHead+"Content-Length: 120\r\n\r\n", strings.Repeat("p", 120)), 504, "origin timed out; previous version kept"},
		{"trickled headers", o.faultTrickle("", faultHead+"Content-Length: 4\r\n\r\nslow"), 504, "origin timed out; previous version kept"},
		{"hang before headers", o.faultHang(""), 504, "origin timed out; previous version kept"},
		{"hang mid-body", o.faultHang(faultHead + "Content-Length: 100\r\n\r\n" + partial), 504, "origin timed out; previous version kept"},
		{"bad chunk size", faultRaw(faultHead + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + partial + "\r\n0\r\n\r\n"), 502, "previous version kept"},
		{"chunked without last chunk", faultRaw(faultHead + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n", len(partial), partial)), 502, "previous version kept"},
		{"garbage status line", faultRaw("HTTP/1.1 2x0 OK\r\nContent-Length: 15\r\n\r\n" + partial), 502, "previous version kept"},
		{"not HTTP at all", faultRaw("SSH-2.0-OpenSSH_9.6\r\n\r\n" + partial), 502, "previous version kept"},
		{"Content-Length longer than body", faultRaw(faultHead + "Content-Length: 100\r\n\r\n" + partial), 502, "previous version kept"},
		{"conflicting Content-Length", faultRaw(faultHead + "Content-Length: 15\r\nContent-Length: 16\r\n\r\n" + partial + "."), 502, "previous version kept"},
		{"5xx storm", faultStorm(), 0, "previous version kept"},
		{"origin down", nil, 502, "previous version kept"},
	}
}

// Promises 3 and 4 against a misbehaving origin: while every fault runs,
// 100 % of the requests for stored pages are 200 HIT with the stored body;
// every failed refetch is reported (502, one "failed" result per key) and
// keeps the stored page; a fill during the fault answers 502 or 504 and
// stores nothing, so the next good fetch is what gets stored; and the
// process never stops serving.
func TestFaultOriginMisbehavesStoredPagesStayServed(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	o := newFaultOrigin(t, nil)
	good := faultGood(&version)
	o.set(good)
	p := startProxy(t, o.URL(), map[string]string{"LOG_LEVEL": "error", "ORIGIN_TIMEOUT": "300ms", "PASS_TTL": "100ms"})

	stored := map[string]string{}
	for i := range 4 {
		path := fmt.Sprintf("/stored/%d", i)
		got := p.get(path)
		require.Equal(t, http.StatusOK, got.Status, got.Body)
		require.Equal(t, faultBody(path, 1), got.Body)
		stored[path] = got.Body
	}
	require.Empty(t, faultCheckPages(p.URL, stored, 8), "the pages are stored")
	stopReaders := faultReaders(p.URL, stored)
	defer func() {
		if stopReaders != nil {
			stopReaders()
		}
	}()

	for i, f := range faultCases(o) {
		version.Store(int64(10 + i))
		ok := t.Run(f.name, func(t *testing.T) {
			p := p.on(t)
			if f.script == nil {
				o.down()
			} else {
				o.set(f.script)
			}
			cold := fmt.Sprintf("/cold/%d", i)
			coldRV := fmt.Sprintf("/cold-revalidated/%d", i)

			// The API reports every failed key; the stored pages stay.
			res := p.revalidate("path=/stored/0&path=/stored/1&path=" + coldRV)
			assert.Equal(t, http.StatusBadGateway, res.Status, res.Body)
			api := decodeAPI(t, res)
			assert.False(t, api.Revalidated)
			assert.Contains(t, api.Message, "Error revalidating")
			if assert.Len(t, api.Results, 3, res.Body) {
				for _, r := range api.Results {
					assert.Equal(t, "failed", r.Outcome, "%s: %s", r.Path, res.Body)
					assert.Contains(t, r.Error, f.refetchError, r.Path)
					if f.fill == 0 {
						assert.GreaterOrEqual(t, r.Status, 500, "the origin's status is reported")
					}
				}
			}
			if f.fill == 0 {
				// A storm of revalidations into the storm: every one is
				// reported as failed.
				var wrong atomic.Int64
				var wg sync.WaitGroup
				for range 12 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/revalidate?path=/stored/2&path=/stored/3", nil)
						req.Header.Set("Authorization", "Bearer "+apiSecret)
						resp, err := p.client.Do(req)
						if err != nil {
							wrong.Add(1)
							return
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusBadGateway || strings.Count(string(b), `"outcome":"failed"`) != 2 {
							wrong.Add(1)
						}
					}()
				}
				wg.Wait()
				assert.Zero(t, wrong.Load(), "revalidations during the storm not answered 502 with two failed results")
			}

			// Concurrent fills during the fault: an error, never a partial
			// page, and nothing stored.
			for _, got := range getAll(p, cold, 6) {
				if f.fill == 0 {
					assert.GreaterOrEqual(t, got.Status, 500, got.Body)
				} else {
					assert.Equal(t, f.fill, got.Status, got.Body)
				}
				assert.NotEqual(t, "HIT", got.Header.Get("X-Cache"))
				assert.NotContains(t, got.Body, "partial")
			}
			for path, body := range stored {
				got := p.get(path)
				assert.Equal(t, "HIT", got.Header.Get("X-Cache"), path)
				assert.Equal(t, body, got.Body, path)
			}

			// The origin heals: the next good fetch is what gets stored.
			if f.script == nil {
				o.up(t)
			}
			o.set(good)
			want := faultBody(cold, version.Load())
			if f.fill == 0 {
				// A complete 5xx made the key pass-through for PASS_TTL.
				assert.Eventually(t, func() bool {
					got, err := fetch(p.client, p.URL+cold)
					return err == nil && got.Header.Get("X-Cache") == "HIT" && got.Body == want
				}, 5*time.Second, 20*time.Millisecond, "%s is stored once the origin is good", cold)
			} else {
				got := p.get(cold)
				assert.Equal(t, http.StatusOK, got.Status)
				assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"), "a failed fill stored nothing and marked nothing")
				assert.Equal(t, want, got.Body)
				got = p.get(cold)
				assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
				assert.Equal(t, want, got.Body)
			}
			got := p.get(coldRV)
			assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"), "a failed revalidation stored nothing")
			assert.Equal(t, faultBody(coldRV, version.Load()), got.Body)
		})
		if !ok {
			o.set(good)
		}
	}

	served, bad := stopReaders()
	stopReaders = nil
	assert.Empty(t, bad, "stored pages answered other than 200 HIT while the origin misbehaved")
	assert.Positive(t, served)
	t.Logf("%d requests for stored pages during the faults, %d not 200 HIT", served, len(bad))

	// Still serving, and a good refetch now replaces the page.
	assert.False(t, p.exited(), "run returned while faults ran")
	health, err := http.Get(p.Admin + "/healthz")
	if assert.NoError(t, err) {
		health.Body.Close()
		assert.Equal(t, http.StatusOK, health.StatusCode)
	}
	version.Store(99)
	res := p.revalidate("path=/stored/0")
	assert.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, faultBody("/stored/0", 99), p.get("/stored/0").Body)
	assert.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, "isrproxy_requests_in_flight")
		return err == nil && v == 0
	}, 5*time.Second, 20*time.Millisecond, "no page request left in flight")
}

// ---------------------------------------------------------------- client faults

// faultDial opens a raw connection to the public listener.
func faultDial(t *testing.T, p *instance) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL, "http://"), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// faultSlowReaders starts n clients that ask for /big with a small receive
// buffer and then read one byte a second, until stop is called.
func faultSlowReaders(t *testing.T, p *instance, n int) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range n {
		c := faultDial(t, p)
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

// faultAbandoned opens n connections that send the start of a request
// line, or nothing, or headers without their end, and are left open.
func faultAbandoned(t *testing.T, p *instance, n int) []net.Conn {
	t.Helper()
	starts := []string{"GET /sto", "", "G", "GET /stored HTTP/1.1\r\nHost: x\r\n", "POST /api/revalidate HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"paths\":"}
	conns := make([]net.Conn, n)
	for i := range n {
		c := faultDial(t, p)
		if s := starts[i%len(starts)]; s != "" {
			_, err := io.WriteString(c, s)
			require.NoError(t, err)
		}
		conns[i] = c
	}
	return conns
}

// faultSlowloris starts n clients that send a request's headers one line
// every 100 ms, lines at most, until stop is called.
func faultSlowloris(t *testing.T, p *instance, n, lines int) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range n {
		c := faultDial(t, p)
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

// faultStoreClientPages starts an origin and an instance with a small page
// and the 4 MiB /big stored, for the client-side tests.
func faultStoreClientPages(t *testing.T) (*faultOrigin, *instance, map[string]string) {
	t.Helper()
	var version atomic.Int64
	version.Store(1)
	o := newFaultOrigin(t, nil)
	o.set(faultGood(&version))
	p := startProxy(t, o.URL(), quietLogs)
	pages := map[string]string{}
	for _, path := range []string{"/stored/0", "/stored/1"} {
		got := p.get(path)
		require.Equal(t, http.StatusOK, got.Status, got.Body)
		pages[path] = got.Body
	}
	big := p.get("/big")
	require.Equal(t, http.StatusOK, big.Status)
	require.True(t, bytes.Equal(faultBig, []byte(big.Body)), "the big page arrived whole")
	require.Equal(t, "HIT", p.get("/big").Header.Get("X-Cache"), "the big page is stored")
	return o, p, pages
}

// faultVisitorsUnaffected checks that, meanwhile, normal visitors get the
// stored pages (and the big one whole), and a new page fills.
func faultVisitorsUnaffected(t *testing.T, p *instance, pages map[string]string, fresh string) {
	t.Helper()
	assert.Empty(t, faultCheckPages(p.URL, pages, 200), "visitors of stored pages")
	big, err := fetch(p.client, p.URL+"/big")
	if assert.NoError(t, err) {
		assert.Equal(t, http.StatusOK, big.Status)
		assert.Equal(t, "HIT", big.Header.Get("X-Cache"))
		assert.True(t, bytes.Equal(faultBig, []byte(big.Body)), "a normal reader gets the big page whole")
	}
	got := p.get(fresh)
	assert.Equal(t, http.StatusOK, got.Status, got.Body)
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
}

// Clients that read a large stored page one byte a second hold a handler
// each (their writes block), and nobody else notices.
func TestSlowReadersDoNotHoldUpOtherVisitors(t *testing.T) {
	_, p, pages := faultStoreClientPages(t)
	stop := faultSlowReaders(t, p, 8)
	defer stop()
	require.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, "isrproxy_requests_in_flight")
		return err == nil && v >= 8
	}, 10*time.Second, 20*time.Millisecond, "the slow readers hold their handlers (their writes block)")

	faultVisitorsUnaffected(t, p, pages, "/fresh/slow-readers")
	stop()
	waitForRequests(t, p, 0)
}

// Connections that send half a request line (or nothing) and are left
// open take no handler and leave other visitors unaffected.
func TestAbandonedConnectionsDoNotHoldUpOtherVisitors(t *testing.T) {
	_, p, pages := faultStoreClientPages(t)
	conns := faultAbandoned(t, p, 100)
	faultVisitorsUnaffected(t, p, pages, "/fresh/abandoned")
	assert.Zero(t, metric(t, p, "isrproxy_requests_in_flight"), "an abandoned request never reaches a handler")
	for _, c := range conns {
		c.Close()
	}
	waitForRequests(t, p, 0)
}

// Slowloris: clients that send a header line every 100 ms, never ending
// their request; other visitors are unaffected meanwhile.
func TestSlowlorisHeadersDoNotHoldUpOtherVisitors(t *testing.T) {
	_, p, pages := faultStoreClientPages(t)
	stop := faultSlowloris(t, p, 20, 30)
	defer stop()
	faultVisitorsUnaffected(t, p, pages, "/fresh/slowloris")
	time.Sleep(300 * time.Millisecond) // a few more header lines arrive
	faultVisitorsUnaffected(t, p, pages, "/fresh/slowloris-2")
	assert.Zero(t, metric(t, p, "isrproxy_requests_in_flight"), "an unfinished header block never reaches a handler")
	stop()
	waitForRequests(t, p, 0)
}

// ---------------------------------------------------------------- leaks

// After an instance has lived through origin faults, failed fills and
// refetches, slow readers, abandoned connections and slowloris clients,
// and has been stopped, no goroutine of it is left.
func TestLeakNoGoroutineLeftAfterFaultsAndSlowClients(t *testing.T) {
	// Every goroutine that runs now is the test process's own, not the
	// instance's: only those may still run once it has stopped.
	before := goleak.IgnoreCurrent()

	var version atomic.Int64
	version.Store(1)
	o := newFaultOrigin(t, nil)
	good := faultGood(&version)
	o.set(good)
	fp := startProxy(t, o.URL(), map[string]string{"LOG_LEVEL": "error", "ORIGIN_TIMEOUT": "300ms", "PASS_TTL": "100ms"})
	p := fp
	pages := map[string]string{}
	for _, path := range []string{"/stored/0", "/stored/1"} {
		got := p.get(path)
		require.Equal(t, http.StatusOK, got.Status, got.Body)
		pages[path] = got.Body
	}
	require.Equal(t, http.StatusOK, p.get("/big").Status)

	during := 0
	for i, f := range faultCases(o) {
		if f.script == nil {
			o.down()
		} else {
			o.set(f.script)
		}
		res := p.revalidate("path=/stored/0")
		assert.Equal(t, http.StatusBadGateway, res.Status, "%s: %s", f.name, res.Body)
		for _, got := range getAll(p, fmt.Sprintf("/cold/%d", i), 4) {
			assert.GreaterOrEqual(t, got.Status, 500, "%s: %s", f.name, got.Body)
		}
		if f.script == nil {
			o.up(t)
		}
		o.set(good)
		during = max(during, runtime.NumGoroutine())
	}

	stopSlow := faultSlowReaders(t, p, 4)
	abandoned := faultAbandoned(t, p, 40)
	stopLoris := faultSlowloris(t, p, 10, 10)
	require.Eventually(t, func() bool {
		v, err := metricErr(fp.Admin, "isrproxy_requests_in_flight")
		return err == nil && v >= 4
	}, 10*time.Second, 20*time.Millisecond, "the slow readers hold their handlers")
	assert.Empty(t, faultCheckPages(p.URL, pages, 200))
	during = max(during, runtime.NumGoroutine())
	stopSlow()
	stopLoris()
	for _, c := range abandoned {
		c.Close()
	}
	waitForRequests(t, fp, 0)

	require.NoError(t, fp.stop(), "run returns nil once cancelled")
	o.close()
	http.DefaultClient.CloseIdleConnections() // metricErr's
	goleak.VerifyNone(t, before)              // retries for a while: goroutines take a moment to end
	t.Logf("goroutines: up to %d during, %d after", during, runtime.NumGoroutine())
}

// SIGTERM with a client still reading slowly: run stops within
// SHUTDOWN_TIMEOUT, returns nil (SPEC §7: exit 0), and then holds no
// connection and no goroutine for that client: the process really stops
// serving when run returns, whatever its clients do.
func TestLeakShutdownWithSlowReaderAttached(t *testing.T) {
	before := goleak.IgnoreCurrent()

	var version atomic.Int64
	o := newFaultOrigin(t, nil)
	o.set(faultGood(&version))
	fp := startProxy(t, o.URL(), map[string]string{"LOG_LEVEL": "error", "SHUTDOWN_TIMEOUT": "1s"})
	require.Equal(t, http.StatusOK, fp.get("/big").Status)
	stop := faultSlowReaders(t, fp, 2)
	defer stop()
	require.Eventually(t, func() bool {
		v, err := metricErr(fp.Admin, "isrproxy_requests_in_flight")
		return err == nil && v >= 2
	}, 10*time.Second, 20*time.Millisecond, "the slow readers hold their handlers")
	http.DefaultClient.CloseIdleConnections()

	assert.NoError(t, fp.stop(), "run's answer to a shutdown that outlasts SHUTDOWN_TIMEOUT")
	o.close()
	// The slow readers are still connected and still reading: nothing of
	// the stopped instance may wait on them.
	goleak.VerifyNone(t, before,
		goleak.IgnoreAnyFunction("github.com/isrproxy/isrproxy.faultSlowReaders.func1")) // the two readers' own goroutines
	stop()
}
