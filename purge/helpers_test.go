package purge

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

const testSecret = "s3cret-s3cret-s3cret"

// fakeRevalidator records every call. Refetch can be held on gate and can
// fail chosen targets.
type fakeRevalidator struct {
	gate    chan struct{} // when not nil, Refetch waits until it is closed (or ctx ends)
	started chan string   // when not nil, Refetch sends the target before waiting
	fail    map[string]bool
	extra   map[string]int // target -> extra variants to report

	quit     chan struct{} // closed at cleanup: nothing blocks any more
	quitOnce sync.Once

	mu          sync.Mutex // guards the fields below
	calls       []string   // "mode host target"
	ctxOK       []bool     // per Refetch: ctx.Err() == nil when it was called
	inFlight    int        // Refetch calls running
	maxInFlight int
}

func (f *fakeRevalidator) record(mode string, key cache.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, mode+" "+key.Host+" "+key.Target())
}

func (f *fakeRevalidator) Refetch(ctx context.Context, key cache.Key) []revalidation.Result {
	f.record("refetch", key)
	f.mu.Lock()
	f.ctxOK = append(f.ctxOK, ctx.Err() == nil)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.started != nil {
		select {
		case f.started <- key.Target():
		case <-f.quit:
		}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-f.quit:
		case <-ctx.Done():
			return []revalidation.Result{revalidation.Fail(key.Target(), revalidation.Failure{Reason: revalidation.Canceled, Detail: "cancelled; previous version kept"})}
		}
	}
	if f.fail[key.Target()] {
		res := revalidation.Fail(key.Target(), revalidation.Failure{Reason: revalidation.OriginStatus, Status: 503})
		res.Status = 503
		return []revalidation.Result{res}
	}
	results := []revalidation.Result{{Target: key.Target(), Status: 200, Outcome: revalidation.Replaced}}
	for range f.extra[key.Target()] {
		results = append(results, revalidation.Result{Target: key.Target(), Status: 200, Outcome: revalidation.Stored})
	}
	return results
}

// stop unblocks every call, for a test that failed half-way.
func (f *fakeRevalidator) stop() { f.quitOnce.Do(func() { close(f.quit) }) }

func (f *fakeRevalidator) MarkStale(key cache.Key) []revalidation.Result {
	f.record("soft", key)
	return []revalidation.Result{{Target: key.Target(), Outcome: revalidation.Marked}}
}

func (f *fakeRevalidator) Purge(key cache.Key) []revalidation.Result {
	f.record("purge", key)
	return []revalidation.Result{{Target: key.Target(), Outcome: revalidation.Purged}}
}

func (f *fakeRevalidator) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := append([]string(nil), f.calls...)
	sort.Strings(calls)
	return calls
}

// fakeIndex holds stored keys (cache.Key.String forms) and their tags.
type fakeIndex struct {
	keys map[string][]string // key -> tags
}

func (x *fakeIndex) KeysByTag(host, tag string) []cache.Key {
	var keys []string
	for k, tags := range x.keys {
		key := cache.ParseKey(k)
		for _, t := range tags {
			if key.Host == host && t == tag {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return parseKeys(keys)
}

func (x *fakeIndex) KeysByPrefix(host, prefix string) []cache.Key {
	var keys []string
	for k := range x.keys {
		if key := cache.ParseKey(k); key.Host == host && strings.HasPrefix(key.Path, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return parseKeys(keys)
}

// parseKeys turns cache.Key.String forms back into keys.
func parseKeys(ss []string) []cache.Key {
	keys := make([]cache.Key, len(ss))
	for i, s := range ss {
		keys[i] = cache.ParseKey(s)
	}
	return keys
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is a Handler behind a real server, with its fakes.
type testEnv struct {
	h     *Handler
	srv   *httptest.Server
	rev   *fakeRevalidator
	index *fakeIndex
	clock *clock
	logs  *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex // guards buf
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

func newEnv(t *testing.T, configure ...func(*Options, *fakeRevalidator)) *testEnv {
	t.Helper()
	e := &testEnv{
		rev:   &fakeRevalidator{quit: make(chan struct{})},
		index: &fakeIndex{keys: map[string][]string{}},
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		logs:  &syncBuffer{},
	}
	opts := Options{
		Secret:      testSecret,
		Path:        "/api/revalidate",
		Revalidator: e.rev,
		Index:       e.index,
		Logger:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:         e.clock.Now,
	}
	for _, f := range configure {
		f(&opts, e.rev)
	}
	e.h = New(opts)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(func() {
		e.rev.stop()
		e.srv.Close()
		e.h.Close()
	})
	return e
}

// apiReply is any API answer, decoded loosely.
type apiReply struct {
	Status int
	Header http.Header
	Raw    string

	Message     string
	Revalidated *bool
	Now         int64
	Results     []Result
	Job         string
	Done        bool
	Total       int
	Completed   int
}

// newReq builds a request to the test server; hdr is name, value pairs.
func (e *testEnv) newReq(t *testing.T, method, target string, body io.Reader, hdr ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+target, body)
	assert.NoError(t, err) // not require: newReq also runs on other goroutines, where FailNow must not be called
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// send sends req and checks what every API answer must carry. It uses
// assert only, so tests may call it from other goroutines (require's
// FailNow must run on the test's own goroutine).
func (e *testEnv) send(t *testing.T, req *http.Request) apiReply {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if !assert.NoError(t, err) {
		return apiReply{}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	assert.NoError(t, err)
	r := apiReply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "Content-Type of %s", raw)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	if req.Method != http.MethodHead {
		assert.NoError(t, json.Unmarshal(raw, &r), "answer %q is not JSON", raw)
	}
	if r.Status >= 400 {
		assert.NotEmpty(t, r.Message, "error answer %s has no message", raw)
	}
	return r
}

// call is send with a bearer secret and no body.
func (e *testEnv) call(t *testing.T, method, target string, hdr ...string) apiReply {
	t.Helper()
	return e.send(t, e.newReq(t, method, target, nil, append([]string{"Authorization", "Bearer " + testSecret}, hdr...)...))
}

// post sends a JSON body with a bearer secret.
func (e *testEnv) post(t *testing.T, target, body string, hdr ...string) apiReply {
	t.Helper()
	hdr = append([]string{"Authorization", "Bearer " + testSecret, "Content-Type", "application/json"}, hdr...)
	return e.send(t, e.newReq(t, http.MethodPost, target, strings.NewReader(body), hdr...))
}

// host is the key host of requests to the test server.
func (e *testEnv) host() string {
	return strings.TrimPrefix(e.srv.URL, "http://")
}

func paths(results []Result) []string {
	var ps []string
	for _, r := range results {
		ps = append(ps, r.Path+" "+string(r.Outcome))
	}
	return ps
}

// waitJob waits until job id has finished.
func (e *testEnv) waitJob(t *testing.T, id string) {
	t.Helper()
	j := e.h.jobs.get(id, e.clock.Now())
	if !assert.NotNil(t, j, "job %s", id) {
		return
	}
	select {
	case <-j.ended:
	case <-time.After(10 * time.Second):
		t.Errorf("job %s did not finish", id)
	}
}

// closeWithin calls Close, failing the test if it does not return: Close
// must cancel what is in progress rather than wait for it.
func (e *testEnv) closeWithin(t *testing.T) {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		e.h.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: work in progress was not cancelled")
	}
}
