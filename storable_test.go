package main

// Which answers are stored: the statuses of CACHE_STATUSES with a body; an
// unstorable but complete answer makes its key pass straight through for
// PASS_TTL, and a failed fetch marks nothing.

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A key whose response was not storable passes straight through
// (BYPASS) while PASS_TTL lasts, even once the origin sends storable pages.
func TestUnstorableKeyPassesThroughDuringPassTTL(t *testing.T) {
	var cookie atomic.Bool
	cookie.Store(true)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if cookie.Load() {
			w.Header().Set("Set-Cookie", "sid=1")
		}
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil) // PASS_TTL 2m

	first := p.get("/pass")
	assert.Equal(t, "MISS", first.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=miss", first.Header.Get("Cache-Status"))

	cookie.Store(false) // storable from now on, but the key is pass-through
	for range 3 {
		got := assertNotStored(t, p, o, "/pass")
		assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
		assert.Equal(t, "isrproxy; fwd=bypass", got.Header.Get("Cache-Status"))
		assert.Equal(t, "page", got.Body)
	}
}

// An origin 5xx counts as a failed fetch, and a failed fetch
// marks nothing: once the origin recovers, the next request fills and
// stores the page, rather than passing through for PASS_TTL.
func TestOrigin5xxOnAFillDoesNotMarkThePagePassThrough(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "down for maintenance")
			return
		}
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil) // PASS_TTL 2m
	failed := p.get("/outage")
	assert.Equal(t, http.StatusServiceUnavailable, failed.Status)
	assert.Equal(t, "MISS", failed.Header.Get("X-Cache"))

	down.Store(false)
	got := p.get("/outage")
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
	assert.Equal(t, "HIT", p.get("/outage").Header.Get("X-Cache"))
}

// The pass-through mark ends after PASS_TTL; the key fills and is
// stored again.
func TestPassThroughEndsAfterPassTTL(t *testing.T) {
	var cookie atomic.Bool
	cookie.Store(true)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if cookie.Load() {
			w.Header().Set("Set-Cookie", "sid=1")
		}
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, map[string]string{"PASS_TTL": "150ms"})

	p.get("/pass")
	cookie.Store(false)
	assert.Equal(t, "BYPASS", p.get("/pass").Header.Get("X-Cache"))
	require.Eventually(t, func() bool {
		resp, err := p.client.Get(p.URL + "/pass")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("Cache-Status") == "isrproxy; fwd=miss; stored"
	}, 10*time.Second, 20*time.Millisecond, "the key must fill again after PASS_TTL")
	assertStored(t, p, o, "/pass")
}

// Only a complete, unstorable response marks a key pass-through;
// a failed fill does not, so the next request fills and stores.
func TestFailedFillDoesNotMakeKeyPassThrough(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			buf.Flush()
			conn.Close()
			return
		}
		io.WriteString(w, "whole page")
	})
	p := startProxy(t, o.URL, nil)
	assert.Equal(t, http.StatusBadGateway, p.get("/heal").Status)
	broken.Store(false)
	got := p.get("/heal")
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
	assert.Equal(t, "whole page", got.Body)
	assertStored(t, p, o, "/heal")
}

func TestEmpty200IsNotStored(t *testing.T) {
	emptyGzip := gzipped("")
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/empty-gzip" { // a gzip stream of nothing is an empty body too
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(emptyGzip)
		}
	})
	p := startProxy(t, o.URL, nil)
	for _, path := range []string{"/empty", "/empty-gzip"} {
		got := p.get(path)
		assert.Equal(t, http.StatusOK, got.Status, path)
		assert.Equal(t, "isrproxy; fwd=miss", got.Header.Get("Cache-Status"), path)
		assertNotStored(t, p, o, path)
	}
}

func TestServerErrorIsNotStored(t *testing.T) {
	for _, code := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			io.WriteString(w, "origin trouble")
		})
		p := startProxy(t, o.URL, nil)
		got := p.get("/err")
		assert.Equal(t, code, got.Status, "the origin's own answer")
		assert.Equal(t, "origin trouble", got.Body)
		assert.NotEqual(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
		assertNotStored(t, p, o, "/err")
	}
}

func TestNotFoundGoneAndRedirectsAreStored(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusGone, http.StatusMovedPermanently} {
		o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			if code == http.StatusMovedPermanently {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(code)
			io.WriteString(w, "status body")
		})
		p := startProxy(t, o.URL, nil)
		first := p.get("/gone")
		assert.Equal(t, code, first.Status)
		assert.Equal(t, "isrproxy; fwd=miss; stored", first.Header.Get("Cache-Status"), "status %d", code)
		got := assertStored(t, p, o, "/gone")
		assert.Equal(t, code, got.Status)
		assert.Equal(t, "status body", got.Body)
	}
}

// CACHE_STATUSES decides which statuses are stored.
func TestCacheStatusesIsConfigurable(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "missing")
	})
	p := startProxy(t, o.URL, map[string]string{"CACHE_STATUSES": "200"})
	p.get("/nf")
	assertNotStored(t, p, o, "/nf")
}
