package main

// Memory is bounded: stored pages never hold more than CACHE_MAX_BYTES,
// however many pages or variants visitors ask for, and a body larger than
// MAX_OBJECT_BYTES is streamed, never held whole.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A huge request body is streamed to the origin as it arrives, whole and
// never buffered: the origin has the first megabytes while the client still
// holds the rest. Nothing is stored.
func TestHugeRequestBodyIsStreamedToTheOriginNotStored(t *testing.T) {
	const size = 48 << 20
	const firstPart = 4 << 20
	var received atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			io.WriteString(w, "<p>get</p>")
			return
		}
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			if received.Add(int64(n)) >= firstPart {
				once.Do(func() { close(reached) })
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d %x", received.Load(), h.Sum(nil))
	})
	p := startProxy(t, o.URL, map[string]string{"MAX_OBJECT_BYTES": "1MiB"})

	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for sent := 0; sent < size; sent += len(chunk) {
			if sent == firstPart+len(chunk) {
				// Hold the rest until the origin has the first part: a
				// proxy that buffered the whole body would never get here.
				select {
				case <-reached:
				case <-time.After(10 * time.Second):
					pw.CloseWithError(fmt.Errorf("the origin got %d bytes while the client held the rest: not streamed", received.Load()))
					return
				}
			}
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	for sent := 0; sent < size; sent += len(chunk) {
		want.Write(chunk)
	}
	req, err := http.NewRequest(http.MethodPost, p.URL+"/upload", pr)
	require.NoError(t, err)
	req.ContentLength = size
	got := p.do(req)
	require.Equal(t, http.StatusOK, got.Status, got.Body)
	assert.Equal(t, fmt.Sprintf("%d %x", size, want.Sum(nil)), got.Body, "the origin got the whole body")
	assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
	hits := o.hits.Load()
	after := p.get("/upload")
	assert.Equal(t, "MISS", after.Header.Get("X-Cache"), "a POST never stores")
	assert.Equal(t, "<p>get</p>", after.Body)
	assert.Equal(t, hits+1, o.hits.Load())
}

// A response body larger than MAX_OBJECT_BYTES, with or without
// Content-Length, is streamed through whole and never stored.
func TestBodyLargerThanMaxObjectIsStreamedWholeAndNotStored(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"sized and chunked", largerThanMaxObjectIsStreamedWholeAndNotStored},
		{"huge, under concurrency", hugeResponseIsStreamedWholeNotStored},
	} {
		t.Run(tc.name, tc.run)
	}
}

// A response larger than MAX_OBJECT_BYTES, with or without Content-Length,
// reaches every client whole and is never stored.
func hugeResponseIsStreamedWholeNotStored(t *testing.T) {
	const size = 3 << 20
	body := make([]byte, size)
	rnd := mrand.New(mrand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rnd.Uint32())
	}
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		// Written in pieces, flushed: no Content-Length unless set above.
		for off := 0; off < size; off += 256 << 10 {
			w.Write(body[off : off+256<<10])
			w.(http.Flusher).Flush()
		}
	})
	p := startProxy(t, o.URL, map[string]string{"MAX_OBJECT_BYTES": "1MiB"})
	for _, path := range []string{"/sized", "/chunked"} {
		for i := range 3 {
			hits := o.hits.Load()
			got := p.get(path)
			require.Equal(t, http.StatusOK, got.Status, path)
			assert.Len(t, got.Body, size, "%s #%d", path, i)
			assert.Equal(t, want, fmt.Sprintf("%x", sha256.Sum256([]byte(got.Body))), "%s #%d: the body arrived whole", path, i)
			assert.NotEqual(t, "HIT", got.Header.Get("X-Cache"), "%s #%d was stored", path, i)
			assert.Greater(t, o.hits.Load(), hits, "%s #%d: every answer comes from the origin", path, i)
		}
	}
}

// MAX_OBJECT_BYTES: a larger body is streamed through whole and not stored.
func largerThanMaxObjectIsStreamedWholeAndNotStored(t *testing.T) {
	big := make([]byte, 200<<10)
	rand.Read(big)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Path == "/chunked" {
			for chunk := range slices.Chunk(big, 16<<10) {
				w.Write(chunk)
				w.(http.Flusher).Flush() // no Content-Length: the size shows only as it comes
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		w.Write(big)
	})
	p := startProxy(t, o.URL, map[string]string{"MAX_OBJECT_BYTES": "64KiB"})
	for _, path := range []string{"/sized", "/chunked"} {
		first := p.get(path)
		assert.Equal(t, http.StatusOK, first.Status, path)
		assert.Equal(t, len(big), len(first.Body), path)
		assert.True(t, first.Body == string(big), "%s: the body must arrive whole and intact", path)
		again := assertNotStored(t, p, o, path)
		assert.True(t, again.Body == string(big), "%s: the body must arrive whole and intact", path)
	}
	assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
}

// CACHE_MAX_BYTES holds under a flood of distinct pages.
func TestCacheMaxBytesHoldsUnderFlood(t *testing.T) {
	filler := make([]byte, 4096)
	rand.Read(filler) // incompressible, and not a COMPRESS_TYPES type anyway
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		b := bytes.Clone(filler)
		copy(b, r.URL.Path)
		w.Write(b)
	})
	p := startProxy(t, o.URL, map[string]string{"CACHE_MAX_BYTES": "1MiB", "MAX_OBJECT_BYTES": "64KiB"})

	const pages, workers = 2000, 16
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > pages {
					return
				}
				resp, err := p.client.Get(fmt.Sprintf("%s/flood/%d", p.URL, i))
				if !assert.NoError(t, err) {
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.EqualValues(t, len(filler), n)
			}
		}()
	}
	waitAll(t, &wg)
	stored := metric(t, p, "isrproxy_cache_bytes")
	assert.LessOrEqual(t, stored, float64(1<<20), "stored bytes over CACHE_MAX_BYTES")
	assert.Positive(t, stored)
	assert.Less(t, metric(t, p, "isrproxy_cache_entries"), float64(pages))
}

// Memory stays bounded under Vary: visitors cannot grow stored pages beyond
// CACHE_MAX_BYTES by sending distinct values of a header the origin varies
// on (each new variant makes an existing key's entry larger).
func TestVaryVariantsStayWithinCacheMaxBytes(t *testing.T) {
	filler := make([]byte, 4<<10)
	rand.Read(filler)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Vary", "Accept-Language")
		w.Write(filler)
	})
	p := startProxy(t, o.URL, map[string]string{"CACHE_MAX_BYTES": "1MiB", "MAX_OBJECT_BYTES": "64KiB"})
	const keys, variants = 200, 8
	for v := range variants {
		for k := range keys {
			got := p.get(fmt.Sprintf("/v/%d", k), "Accept-Language", fmt.Sprintf("x-%d", v))
			require.Equal(t, http.StatusOK, got.Status)
		}
	}
	stored := metric(t, p, "isrproxy_cache_bytes")
	assert.LessOrEqual(t, stored, float64(1<<20), "stored bytes over CACHE_MAX_BYTES (%.1f times)", stored/(1<<20))
}
