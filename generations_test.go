package main

// The newer never loses: a fetch that began before a revalidation, purge or
// invalidation never overwrites what came after it, and a revalidation
// never joins a fetch already in flight: that fetch may have read the old
// data.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A fill that started before a successful unsafe request and finishes
// after it must not undo the invalidation: the page it fetched is older
// than the change. Strict: it is not stored. Soft (the default): it is
// stored marked stale, so the next visitor starts the refetch that
// replaces it.
func TestInvalidationWinsOverAFillInFlight(t *testing.T) {
	for _, mode := range []string{"strict", "soft"} {
		t.Run(mode, func(t *testing.T) { invalidationWinsOverAFillInFlight(t, mode) })
	}
}

func invalidationWinsOverAFillInFlight(t *testing.T, mode string) {
	var version atomic.Int64
	held := make(chan struct{})
	arrived := make(chan struct{}, 1)
	editable := editableOrigin(&version)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.Header.Get("X-Hold") != "" {
			v := version.Load()
			arrived <- struct{}{}
			<-held
			fmt.Fprintf(w, "<p>version %d</p>", v)
			return
		}
		editable(w, r)
	})
	p := startProxy(t, o.URL, map[string]string{"UNSAFE_INVALIDATION": mode})
	done := make(chan answer, 1)
	go func() {
		resp, err := p.client.Do(func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, p.URL+"/inflight", nil)
			req.Header.Set("X-Hold", "1")
			return req
		}())
		if !assert.NoError(t, err) {
			done <- answer{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- answer{Status: resp.StatusCode, Body: string(b)}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		close(held)
		t.Fatal("the fill never reached the origin")
	}
	post := p.request(http.MethodPost, "/inflight", strings.NewReader("x"))
	assert.Equal(t, http.StatusOK, post.Status)
	close(held)
	first := <-done
	assert.Equal(t, "<p>version 0</p>", first.Body)
	if mode == "strict" {
		after := assertNotStored(t, p, o, "/inflight")
		assert.Contains(t, after.Body, "version 1", "the page read before the change was stored after it")
		return
	}
	stale := p.get("/inflight")
	assert.Equal(t, "STALE", stale.Header.Get("X-Cache"), "the page read before the change was stored unmarked")
	assert.Equal(t, "<p>version 0</p>", stale.Body)
	require.Eventually(t, func() bool { return strings.Contains(p.get("/inflight").Body, "version 1") },
		5*time.Second, 5*time.Millisecond, "the background refetch replaces it")
	assertStored(t, p, o, "/inflight")
}

// A revalidation never joins a fill already in flight
// (that fill read the old data), and the late fill never overwrites it.
func TestRevalidationNeverJoinsAFillInFlight(t *testing.T) {
	g := newGatedOrigin("old", 1)
	o := newTestOrigin(t, g.handler)
	p := startProxy(t, o.URL, map[string]string{"LOG_LEVEL": "debug"})

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
	assert.Equal(t, "isrproxy; fwd=miss", fill.Header.Get("Cache-Status"), "unstored")
	// Cache-Status says "not stored"; the debug log says why, and of which key.
	assert.Regexp(t, `"msg":"fill superseded; not stored","key":"[^"]*/race"`, p.logs.String())
	for range 3 {
		got := p.get("/race")
		assert.Equal(t, "new", got.Body, "a late, older fill must not overwrite")
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
	}
}

// The newer never loses, between revalidations: of two concurrent refetches, the one
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

// Read-your-writes against a fetch already in flight: a purge or a soft mark that
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
			// A soft invalidation (the default) lets a later visitor join
			// the fill, whose page is then stored marked stale.
			p := startProxy(t, o.URL, map[string]string{"UNSAFE_INVALIDATION": "strict"})
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
