package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// versioned is an origin whose pages carry a version the test bumps.
type versioned struct {
	version atomic.Int64
}

func (v *versioned) handler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Cache-Tag", "all, path:"+r.URL.Path)
	fmt.Fprintf(w, "<p>%s version %d</p>", r.URL.Path, v.version.Load())
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

// Promise 2: once revalidate answers 200, the next request gets the new page.
func TestRevalidateReadYourWrites(t *testing.T) {
	v := &versioned{}
	v.version.Store(1)
	o := newTestOrigin(t, v.handler)
	p := startProxy(t, o.URL, nil)

	assert.Equal(t, "<p>/events/42 version 1</p>", p.get("/events/42").Body)
	for version := int64(2); version <= 5; version++ {
		v.version.Store(version)
		res := p.revalidate("path=/events/42")
		require.Equal(t, http.StatusOK, res.Status, res.Body)
		api := decodeAPI(t, res)
		assert.True(t, api.Revalidated)
		require.Len(t, api.Results, 1)
		assert.Equal(t, "/events/42", api.Results[0].Path)
		assert.Equal(t, "replaced", api.Results[0].Outcome)
		assert.Equal(t, 200, api.Results[0].Status)

		got := p.get("/events/42")
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
		assert.Equal(t, fmt.Sprintf("<p>/events/42 version %d</p>", version), got.Body)
	}
	// A path not stored yet is fetched and stored.
	res := decodeAPI(t, p.revalidate("path=/new"))
	require.Len(t, res.Results, 1)
	assert.Equal(t, "stored", res.Results[0].Outcome)
	assert.Equal(t, "HIT", p.get("/new").Header.Get("X-Cache"))
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

// Promise 2 and 5: a revalidation never joins a fill already in flight
// (that fill read the old data), and the late fill never overwrites it.
func TestRevalidateNeverPiggybacksOnAFillInFlight(t *testing.T) {
	g := newGatedOrigin("old", 1)
	o := newTestOrigin(t, g.handler)
	p := startProxy(t, o.URL, nil)

	fillDone := make(chan answer)
	go func() {
		resp, err := p.client.Get(p.URL + "/race")
		if !assert.NoError(t, err) {
			close(fillDone)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fillDone <- answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	}()
	<-g.arrived[1] // the fill is at the origin and has read "old"

	g.setBody("new")
	res := p.revalidate("path=/race")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.EqualValues(t, 2, o.hits.Load(), "the revalidation made its own origin request")
	assert.Equal(t, "new", p.get("/race").Body)

	close(g.gates[1]) // the old fill finishes after the revalidation
	fill := <-fillDone
	assert.Equal(t, "old", fill.Body, "the fill's own visitor gets what it fetched")
	for range 3 {
		got := p.get("/race")
		assert.Equal(t, "new", got.Body, "a late, older fill must not overwrite")
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
	}
}

// Promise 5 between revalidations: of two concurrent refetches, the one
// that started later wins, even when it finishes first.
func TestNewerRevalidationWins(t *testing.T) {
	g := newGatedOrigin("v1", 2) // request 2 is the first revalidation's refetch
	o := newTestOrigin(t, g.handler)
	p := startProxy(t, o.URL, nil)
	require.Equal(t, "v1", p.get("/n").Body)

	g.setBody("v2-slow")
	first := make(chan answer)
	go func() { first <- p.revalidate("path=/n") }()
	<-g.arrived[2]

	g.setBody("v3")
	second := p.revalidate("path=/n")
	require.Equal(t, http.StatusOK, second.Status, second.Body)
	assert.Equal(t, "v3", p.get("/n").Body)

	close(g.gates[2])
	res := <-first
	assert.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, "v3", p.get("/n").Body, "the older refetch, finishing last, must not win")
}

// Promise 3: while a refetch runs, visitors get the stored page at once.
func TestNoStaleOrSlowWindowDuringRefetch(t *testing.T) {
	g := newGatedOrigin("old", 2)
	o := newTestOrigin(t, g.handler)
	p := startProxy(t, o.URL, nil)
	require.Equal(t, "old", p.get("/w").Body)

	g.setBody("new")
	done := make(chan answer)
	go func() { done <- p.revalidate("path=/w") }()
	<-g.arrived[2] // the refetch is held at the origin
	for range 20 {
		got := p.get("/w") // returns while the origin is held: nobody waits
		assert.Equal(t, http.StatusOK, got.Status)
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
		assert.Equal(t, "old", got.Body)
	}
	close(g.gates[2])
	require.Equal(t, http.StatusOK, (<-done).Status)
	assert.Equal(t, "new", p.get("/w").Body)
}

// Promise 4: every kind of failed refetch keeps the stored page, and the
// API reports it with 502 and a result per key.
func TestFailedRefetchKeepsTheLastGoodPage(t *testing.T) {
	failures := []struct {
		name    string
		handler http.HandlerFunc
		error   string
	}{
		{"origin 503", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, "origin answered 503; previous version kept"},
		{"empty 200", func(w http.ResponseWriter, r *http.Request) {}, "previous version kept"},
		{"Set-Cookie", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Set-Cookie", "session=abc")
			io.WriteString(w, "personal")
		}, "previous version kept"},
		{"private", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "PRIVATE, max-age=60")
			io.WriteString(w, "personal")
		}, "previous version kept"},
		{"no-store", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Cache-Control", "public")
			w.Header().Add("Cache-Control", `no-store`)
			io.WriteString(w, "uncacheable")
		}, "previous version kept"},
		{"truncated body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, "only part of it")
			hijackClose(w)
		}, "previous version kept"},
		{"reset", func(w http.ResponseWriter, r *http.Request) {
			hijackClose(w)
		}, "previous version kept"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // longer than ORIGIN_TIMEOUT
		}, "origin timed out; previous version kept"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			o := newTestOrigin(t, page("good page"))
			p := startProxy(t, o.URL, map[string]string{"ORIGIN_TIMEOUT": "300ms"})
			require.Equal(t, "good page", p.get("/k").Body)

			o.set(f.handler)
			res := p.revalidate("path=/k")
			assert.Equal(t, http.StatusBadGateway, res.Status)
			api := decodeAPI(t, res)
			assert.False(t, api.Revalidated)
			assert.Contains(t, api.Message, "Error revalidating")
			require.Len(t, api.Results, 1)
			assert.Equal(t, "failed", api.Results[0].Outcome)
			assert.Contains(t, api.Results[0].Error, f.error)

			got := p.get("/k")
			assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
			assert.Equal(t, "good page", got.Body)
		})
	}
}

// hijackClose drops the connection without finishing the response.
func hijackClose(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a clean close
		}
		conn.Close()
	}
}

// mode=soft: the next visitors get STALE from memory, and exactly one
// background refetch runs however many arrive.
func TestSoftRevalidationServesStaleAndRefetchesOnce(t *testing.T) {
	g := newGatedOrigin("old", 2)
	o := newTestOrigin(t, g.handler)
	p := startProxy(t, o.URL, nil)
	require.Equal(t, "old", p.get("/s").Body)

	res := decodeAPI(t, p.revalidate("path=/s&mode=soft"))
	require.Len(t, res.Results, 1)
	assert.Equal(t, "marked", res.Results[0].Outcome)
	assert.EqualValues(t, 1, o.hits.Load(), "soft touches no origin")

	g.setBody("new")
	first := p.get("/s")
	assert.Equal(t, "STALE", first.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; hit; fwd=stale", first.Header.Get("Cache-Status"))
	assert.Equal(t, "old", first.Body)
	<-g.arrived[2] // the one background refetch
	for range 20 {
		got := p.get("/s")
		assert.Equal(t, "STALE", got.Header.Get("X-Cache"))
		assert.Equal(t, "old", got.Body)
	}
	assert.EqualValues(t, 2, o.hits.Load(), "one background refetch for all stale visitors")
	close(g.gates[2])
	require.Eventually(t, func() bool { return p.get("/s").Body == "new" }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "HIT", p.get("/s").Header.Get("X-Cache"))
}

// mode=purge removes the page: the next request fills it again.
func TestPurgeRemovesThePage(t *testing.T) {
	v := &versioned{}
	o := newTestOrigin(t, v.handler)
	p := startProxy(t, o.URL, nil)
	p.get("/gone")
	v.version.Store(7)
	res := decodeAPI(t, p.revalidate("path=/gone&mode=purge"))
	require.Len(t, res.Results, 1)
	assert.Equal(t, "purged", res.Results[0].Outcome)
	got := p.get("/gone")
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	assert.Contains(t, got.Body, "version 7")
}

// Tags and prefixes reach every matching stored page, and only those.
func TestRevalidateByTagAndPrefix(t *testing.T) {
	v := &versioned{}
	o := newTestOrigin(t, v.handler)
	p := startProxy(t, o.URL, nil)
	for _, path := range []string{"/blog/a", "/blog/b", "/about"} {
		p.get(path)
	}
	v.version.Store(1)
	res := decodeAPI(t, p.revalidate("prefix=/blog/"))
	assert.Len(t, res.Results, 2)
	assert.Contains(t, p.get("/blog/a").Body, "version 1")
	assert.Contains(t, p.get("/blog/b").Body, "version 1")
	assert.Contains(t, p.get("/about").Body, "version 0")

	v.version.Store(2)
	res = decodeAPI(t, p.revalidate("tag=path:/about"))
	require.Len(t, res.Results, 1)
	assert.Equal(t, "/about", res.Results[0].Path)
	assert.Contains(t, p.get("/about").Body, "version 2")
}

// REVALIDATE_AFTER: an old page is served STALE while one background
// refetch replaces it; NEGATIVE_TTL heals a 404 the same way.
func TestTimeBasedRevalidationAndNegativeHealing(t *testing.T) {
	var body atomic.Value
	body.Store("missing")
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if b := body.Load().(string); b != "missing" {
			io.WriteString(w, b)
			return
		}
		http.NotFound(w, r)
	})
	p := startProxy(t, o.URL, map[string]string{"NEGATIVE_TTL": "50ms", "REVALIDATE_AFTER": "50ms"})
	assert.Equal(t, http.StatusNotFound, p.get("/later").Status)
	assert.Equal(t, "HIT", p.get("/later").Header.Get("X-Cache"), "a 404 is stored")

	body.Store("published")
	time.Sleep(60 * time.Millisecond) // the page passes NEGATIVE_TTL
	stale := p.get("/later")
	assert.Equal(t, "STALE", stale.Header.Get("X-Cache"))
	assert.Equal(t, http.StatusNotFound, stale.Status)
	require.Eventually(t, func() bool { return p.get("/later").Status == http.StatusOK }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, "published", p.get("/later").Body)
}

// Stress: readers and revalidations of the same keys for a while: never an
// error, never a torn page, never a version older than an acknowledged one.
func TestStressReadersAndRevalidations(t *testing.T) {
	if testing.Short() {
		t.Skip("stress")
	}
	var version atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		n := version.Load()
		w.Header().Set("Content-Type", "text/html")
		// The version is written at both ends: a torn page shows two.
		fmt.Fprintf(w, "v=%d|%s|v=%d", n, strings.Repeat("x", 4000), n)
	})
	p := startProxy(t, o.URL, map[string]string{"LOG_LEVEL": "warn"})
	paths := []string{"/s/0", "/s/1", "/s/2"}
	for _, path := range paths {
		p.get(path)
	}

	var acked sync.Map // path -> highest acknowledged version (int64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, errs atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := paths[i%len(paths)]
				floor, _ := acked.Load(path)
				resp, err := p.client.Get(p.URL + path)
				if err != nil {
					errs.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				reads.Add(1)
				var a, z int64
				_, scanErr := fmt.Sscanf(string(b[:min(len(b), 20)]), "v=%d|", &a)
				tail := string(b[max(0, len(b)-20):])
				_, scanErr2 := fmt.Sscanf(tail[strings.LastIndex(tail, "|")+1:], "v=%d", &z)
				if resp.StatusCode != 200 || scanErr != nil || scanErr2 != nil || a != z {
					errs.Add(1)
					continue
				}
				if f, ok := floor.(int64); ok && a < f {
					t.Errorf("%s: got version %d after version %d was acknowledged", path, a, f)
				}
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		path := paths[i%len(paths)]
		n := version.Add(1)
		res := p.revalidate("path=" + path)
		if assert.Equal(t, http.StatusOK, res.Status, res.Body) {
			acked.Store(path, n)
		}
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, errs.Load(), "errors or torn pages")
	assert.Greater(t, reads.Load(), int64(100))
}

// Promise 2 against a fetch already in flight: a purge or a soft mark that
// arrives while an earlier refetch, background refresh or first fill is at
// the origin is not undone when that fetch, which read the older page,
// lands after it.
func TestPurgeAndSoftMarkOutliveFetchesInFlight(t *testing.T) {
	// Each start stores what it needs, then leaves a fetch of /k held at
	// the origin after reading "v2"; the returned land releases it and
	// returns once its result is stored or dropped.
	type start func(t *testing.T, p *instance, g *gatedOrigin) (land func())
	refetch := func(t *testing.T, p *instance, g *gatedOrigin) func() {
		require.Equal(t, "v1", p.get("/k").Body) // request 1 stores v1
		g.setBody("v2")
		done := make(chan answer)
		go func() { done <- p.revalidate("path=/k") }()
		<-g.arrived[2]
		return func() {
			close(g.gates[2])
			<-done // the call answers after its page is stored or dropped
		}
	}
	background := func(t *testing.T, p *instance, g *gatedOrigin) func() {
		require.Equal(t, "v1", p.get("/k").Body)
		require.Equal(t, http.StatusOK, p.revalidate("path=/k&mode=soft").Status)
		g.setBody("v2")
		require.Equal(t, "STALE", p.get("/k").Header.Get("X-Cache")) // starts the refresh
		<-g.arrived[2]
		return func() {
			close(g.gates[2])
			// Counted when the fetch ends, just before its result is
			// stored or dropped: then leave it a moment to land.
			require.Eventually(t, func() bool { // no require in here: it runs on another goroutine
				v, err := metricErr(p.Admin, `isrproxy_origin_requests_total{reason="refetch",status="200"}`)
				return err == nil && v == 1
			}, 5*time.Second, 5*time.Millisecond)
			time.Sleep(100 * time.Millisecond) // a margin for the bug to show, never a false failure
		}
	}
	firstFill := func(t *testing.T, p *instance, g *gatedOrigin) func() {
		g.setBody("v2")
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := p.client.Get(p.URL + "/k") // request 1: the fill, held
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		<-g.arrived[1]
		return func() {
			close(g.gates[1])
			<-done // the fill's visitor is answered after its page is stored or dropped
		}
	}
	for _, tc := range []struct {
		name  string
		gated int
		start start
	}{
		{"refetch", 2, refetch},
		{"background refresh", 2, background},
		{"first fill", 1, firstFill},
	} {
		// After a purge the next visitor fills v3 (MISS); after a soft mark
		// it gets STALE (the page the fetch read, never older) and starts
		// the one refresh of v3.
		for _, m := range []struct{ mode, want string }{{"purge", "MISS"}, {"soft", "STALE"}} {
			t.Run(tc.name+"/"+m.mode, func(t *testing.T) {
				g := newGatedOrigin("v1", tc.gated)
				p := startProxy(t, newTestOrigin(t, g.handler).URL, nil)
				land := tc.start(t, p, g)
				g.setBody("v3")
				require.Equal(t, http.StatusOK, p.revalidate("path=/k&mode="+m.mode).Status)
				land()
				got := p.get("/k")
				assert.Equal(t, m.want, got.Header.Get("X-Cache"), "the %s was undone (%q)", m.mode, got.Body)
				if m.mode == "purge" {
					assert.Equal(t, "v3", got.Body, "the fetch that read v2 before the purge stored it after")
				}
				require.Eventually(t, func() bool { return p.get("/k").Body == "v3" }, 5*time.Second, 5*time.Millisecond)
			})
		}
	}
}

// A tag or prefix revalidation finds stored pages in the index; a page
// whose first fill is still in flight is not there yet. That fill read the
// origin before the call, so it must not be stored afterwards as if newer.
func TestTagAndPrefixRevalidationsReachFirstFillsInFlight(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"prefix=/news/&mode=purge", "MISS"},
		{"tag=news&mode=purge", "MISS"},
		{"prefix=/news/", "MISS"},
		{"tag=news", "MISS"},
		{"tag=news&async=1", "MISS"},
		{"prefix=/news/&mode=soft", "STALE"},
		{"tag=news&mode=soft", "STALE"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			g := newGatedOrigin("v1", 1)
			o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Tag", "news")
				g.handler(w, r)
			})
			p := startProxy(t, o.URL, nil)
			done := make(chan struct{})
			go func() {
				defer close(done)
				resp, err := p.client.Get(p.URL + "/news/1") // the first fill, held
				if assert.NoError(t, err) {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
			<-g.arrived[1]
			g.setBody("v2")
			res := p.revalidate(tc.query)
			require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, res.Status, res.Body)
			close(g.gates[1])
			<-done // the fill's page is stored or dropped before its visitor is answered
			got := p.get("/news/1")
			assert.Equal(t, tc.want, got.Header.Get("X-Cache"), got.Body)
			require.Eventually(t, func() bool { return p.get("/news/1").Body == "v2" }, 5*time.Second, 5*time.Millisecond,
				"the page read before the revalidation stayed")
		})
	}
}

// A request that arrives after a purge or an invalidation does not join a
// fill that began before it: it fetches for itself, at once.
func TestRequestAfterPurgeDoesNotJoinAnOlderFill(t *testing.T) {
	for _, invalidate := range []string{"purge", "POST"} {
		t.Run(invalidate, func(t *testing.T) {
			g := newGatedOrigin("v1", 1)
			o := newTestOrigin(t, g.handler)
			p := startProxy(t, o.URL, nil)
			t.Cleanup(func() { close(g.gates[1]) })
			go func() {
				resp, err := p.client.Get(p.URL + "/bt") // the old fill, held
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
			<-g.arrived[1]
			g.setBody("v2")
			if invalidate == "purge" {
				require.Equal(t, http.StatusOK, p.revalidate("path=/bt&mode=purge").Status)
			} else {
				require.Equal(t, http.StatusOK, p.request(http.MethodPost, "/bt", strings.NewReader("x")).Status)
			}
			got := p.get("/bt") // would wait for the held fill and get v1
			assert.Equal(t, "v2", got.Body)
			assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
		})
	}
}
