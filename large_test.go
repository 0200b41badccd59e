package main

// A page larger than MAX_OBJECT_BYTES costs one origin request per visitor
// request, its first one included: the fill that finds it too large hands
// the response, still open, to the visitor who started it, who gets it
// streamed as it arrives; the key then passes through.

import (
	"bytes"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// largeLimit is MAX_OBJECT_BYTES in these tests.
const largeLimit = 64 << 10

// largeEnv configures an instance for the large-page tests.
var largeEnv = map[string]string{"MAX_OBJECT_BYTES": "64KiB", "PASS_TTL": "1m"}

// randomBody is n incompressible bytes.
func randomBody(n int) []byte {
	b := make([]byte, n)
	rnd := mrand.New(mrand.NewPCG(uint64(n), 7))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

// largeOrigin answers body for every path, with Content-Length on /sized
// and chunked (flushed in pieces, no length) on any other.
func largeOrigin(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		for off := 0; off < len(body); off += 16 << 10 {
			w.Write(body[off:min(off+16<<10, len(body))])
			w.(http.Flusher).Flush()
		}
	}
}

// The first visitor of a page one byte over MAX_OBJECT_BYTES, with or
// without Content-Length, costs one origin request and gets the page whole
// and byte-exact, a MISS not stored; the next request goes straight to the
// origin (BYPASS), one origin request again.
func TestALargePageIsFetchedOnceForItsFirstVisitor(t *testing.T) {
	body := randomBody(largeLimit + 1)
	o := newTestOrigin(t, largeOrigin(body))
	p := startProxy(t, o.URL, largeEnv)
	for _, path := range []string{"/sized", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			p := p.on(t)
			before := o.hits.Load()
			first := p.get(path)
			assert.Equal(t, http.StatusOK, first.Status)
			assert.Equal(t, before+1, o.hits.Load(), "the first visitor's request reaches the origin once")
			assert.True(t, first.Body == string(body), "the body arrives whole and byte-exact (%d bytes of %d)", len(first.Body), len(body))
			assert.Equal(t, "MISS", first.Header.Get("X-Cache"))
			assert.Equal(t, "isrproxy; fwd=miss", first.Header.Get("Cache-Status"))
			if path == "/sized" {
				assert.Equal(t, strconv.Itoa(len(body)), first.Header.Get("Content-Length"))
			}

			second := p.get(path)
			assert.Equal(t, before+2, o.hits.Load(), "the next request too reaches the origin once")
			assert.Equal(t, "BYPASS", second.Header.Get("X-Cache"), "the key passes through")
			assert.Equal(t, "isrproxy; fwd=bypass", second.Header.Get("Cache-Status"))
			assert.True(t, second.Body == string(body), "the body arrives whole and byte-exact")
		})
	}
	assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
}

// The first visitor of a large page gets its start before the origin has
// sent its end: the origin holds the end until the visitor has read more
// than MAX_OBJECT_BYTES, which a proxy that buffered the page (or fetched
// it whole before answering) would never let happen.
func TestALargePageIsStreamedToItsFirstVisitorAsItArrives(t *testing.T) {
	const start = largeLimit + 64<<10 // sent before the origin holds
	body := randomBody(start + 256<<10)
	for _, path := range []string{"/sized", "/chunked"} {
		t.Run(path, func(t *testing.T) {
			readStart := make(chan struct{})
			var held atomic.Bool // the origin waited in vain
			o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				if r.URL.Path == "/sized" {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.Write(body[:start])
				w.(http.Flusher).Flush()
				select {
				case <-readStart:
				case <-time.After(10 * time.Second):
					held.Store(true)
				case <-r.Context().Done():
					return
				}
				w.Write(body[start:])
			})
			p := startProxy(t, o.URL, largeEnv)
			resp, err := p.client.Get(p.URL + path)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, "MISS", resp.Header.Get("X-Cache"))
			got := make([]byte, largeLimit+1)
			_, err = io.ReadFull(resp.Body, got)
			require.NoError(t, err)
			close(readStart)
			rest, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			got = append(got, rest...)
			assert.False(t, held.Load(), "the visitor got nothing before the origin sent the end")
			assert.True(t, bytes.Equal(body, got), "the body arrives whole and byte-exact")
			assert.EqualValues(t, 1, o.hits.Load(), "one origin request")
		})
	}
}

// Concurrent first requests for a large page: one origin request per
// visitor request. The one who started the fill gets its response; those
// who waited on it ask the origin themselves (never getting another
// visitor's response), and each gets the page whole.
func TestConcurrentFirstRequestsForALargePageCostOneOriginRequestEach(t *testing.T) {
	const n = 6
	body := randomBody(largeLimit + 1)
	serve := largeOrigin(body)
	gates := map[string]*gate{"/sized": newGate(), "/chunked": newGate()}
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if gates[r.URL.Path].wait(r) {
			serve(w, r)
		}
	})
	p := startProxy(t, o.URL, largeEnv)
	for _, path := range []string{"/sized", "/chunked"} {
		gates[path].openAtCleanup(t)
		before := o.hits.Load()
		wait := launchGets(t, p, path, n)
		waitForRequests(t, p, n) // the first holds the fill, the others wait on it
		// The fill reaches the origin from its own goroutine, maybe a
		// moment after the visitors are all in.
		require.Eventually(t, func() bool { return o.hits.Load() > before }, 10*time.Second, 5*time.Millisecond)
		assert.Equal(t, before+1, o.hits.Load(), "%s: one fill", path)
		gates[path].open()
		answers := wait()
		for i, a := range answers {
			assert.Equal(t, http.StatusOK, a.Status, "%s #%d", path, i)
			assert.True(t, a.Body == string(body), "%s #%d: the body arrives whole and byte-exact", path, i)
			assert.NotEqual(t, "HIT", a.Header.Get("X-Cache"), "%s #%d", path, i)
		}
		assert.Equal(t, before+n, o.hits.Load(), "%s: one origin request per visitor request", path)
	}
}

// A HEAD that fills a large page with GET gets the head alone, from the
// one origin request: its body is not read on, and the origin connection
// is given up (the origin cannot send the rest).
func TestAHeadFillOfALargePageGetsTheHeadOnly(t *testing.T) {
	const size = 64 << 20 // more than the socket buffers between them hold
	chunk := randomBody(64 << 10)
	var mu sync.Mutex
	sent := map[string]int{}
	done := make(chan string, 16) // never full: a handler must not block on it
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- r.URL.Path }()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Etag", `"large"`)
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		if r.Method != http.MethodGet {
			return
		}
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			mu.Lock()
			sent[r.URL.Path] = written + len(chunk)
			mu.Unlock()
		}
	})
	p := startProxy(t, o.URL, largeEnv)
	for _, path := range []string{"/sized", "/chunked"} {
		before := o.hits.Load()
		got := p.request(http.MethodHead, path, nil)
		assert.Equal(t, http.StatusOK, got.Status, path)
		assert.Empty(t, got.Body, path)
		assert.Equal(t, "MISS", got.Header.Get("X-Cache"), path)
		assert.Equal(t, `"large"`, got.Header.Get("Etag"), path)
		if path == "/sized" {
			assert.Equal(t, strconv.Itoa(size), got.Header.Get("Content-Length"), path)
		}
		assert.Equal(t, before+1, o.hits.Load(), "%s: one origin request", path)
		assert.Equal(t, http.MethodGet, o.lastRequest().Method, "%s: a HEAD miss fills with GET", path)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the origin is still sending the body a HEAD does not want", path)
		}
		mu.Lock()
		assert.Less(t, sent[path], size, "%s: the body was read on for a HEAD", path)
		mu.Unlock()

		again := p.request(http.MethodHead, path, nil)
		assert.Equal(t, "BYPASS", again.Header.Get("X-Cache"), path)
		assert.Equal(t, before+2, o.hits.Load(), "%s: one origin request", path)
		<-done
	}
}

// A visitor who goes away in the middle of a large page ends its origin
// request: the origin slot it held is free for the next, even when
// ORIGIN_MAX_CONCURRENCY is one.
func TestAVisitorLeavingALargePageFreesItsOriginSlot(t *testing.T) {
	body := randomBody(4 * largeLimit)
	ended := make(chan struct{}, 1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "small")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body[:2*largeLimit])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes: only the proxy can end this
		select {
		case ended <- struct{}{}:
		default:
		}
	})
	env := map[string]string{"MAX_OBJECT_BYTES": "64KiB", "ORIGIN_MAX_CONCURRENCY": "1", "ORIGIN_TIMEOUT": "5s"}
	p := startProxy(t, o.URL, env)
	resp, err := p.client.Get(p.URL + "/big")
	require.NoError(t, err)
	_, err = io.ReadFull(resp.Body, make([]byte, largeLimit+1))
	require.NoError(t, err)
	resp.Body.Close() // the visitor goes away
	p.client.CloseIdleConnections()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the origin request outlived its visitor")
	}
	got := p.get("/small")
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "small", got.Body)
}

// A large page the origin sends gzipped (a fill asks for gzip) reaches its
// first visitor in the coding that visitor accepts: the gzip bytes as they
// are for a gzip client, decompressed as they pass for any other, and
// either way with Accept-Encoding in its Vary.
func TestALargeGzipPageFollowsTheFirstVisitorsAcceptEncoding(t *testing.T) {
	plain := randomBody(2 * largeLimit)
	zipped := gzipped(string(plain))
	require.Greater(t, len(zipped), largeLimit)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Etag", `"z"`)
		w.Write(zipped)
	})
	p := startProxy(t, o.URL, largeEnv)

	gz := p.get("/gz", "Accept-Encoding", "gzip")
	assert.Equal(t, "gzip", gz.Header.Get("Content-Encoding"))
	assert.True(t, gz.Body == string(zipped), "the gzip bytes as the origin sent them")
	assert.Equal(t, `"z"`, gz.Header.Get("Etag"))
	assert.Contains(t, gz.Header.Get("Vary"), "Accept-Encoding")

	id := p.get("/id")
	assert.Empty(t, id.Header.Get("Content-Encoding"))
	assert.True(t, id.Body == string(plain), "decompressed whole and byte-exact")
	assert.Equal(t, `W/"z"`, id.Header.Get("Etag"), "another representation: a weak tag")
	assert.Contains(t, id.Header.Get("Vary"), "Accept-Encoding")
	assert.EqualValues(t, 2, o.hits.Load(), "one origin request each")
}
