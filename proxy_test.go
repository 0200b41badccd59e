package main

// The core promises end to end: a stored page is answered from memory even
// while the origin is blocked, concurrent misses share one fetch, the
// answer's encoding follows Accept-Encoding, and the revalidate API is
// reached however a CMS spells its path.

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Once stored, a page is answered from memory, even while the
// origin cannot answer at all.
func TestStoredPageIsServedWhileOriginIsBlocked(t *testing.T) {
	o := newTestOrigin(t, page("<h1>hello</h1>"))
	p := startProxy(t, o.URL, nil)

	first := p.get("/hello")
	assert.Equal(t, "MISS", first.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=miss; stored", first.Header.Get("Cache-Status"))
	assert.Equal(t, "<h1>hello</h1>", first.Body)

	block := make(chan struct{})
	defer close(block)
	o.set(func(w http.ResponseWriter, r *http.Request) { <-block })
	for range 5 {
		got := p.get("/hello")
		assert.Equal(t, http.StatusOK, got.Status)
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
		assert.Equal(t, "isrproxy; hit", got.Header.Get("Cache-Status"))
		assert.Equal(t, "<h1>hello</h1>", got.Body)
		assert.Equal(t, "0", got.Header.Get("Age"))
	}
	assert.EqualValues(t, 1, o.hits.Load())
}

// Concurrent misses for one key cause one origin request.
func TestConcurrentMissesShareOneFetch(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "shared")
	})
	p := startProxy(t, o.URL, nil)

	const n = 20
	var wg sync.WaitGroup
	answers := make([]answer, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.client.Get(p.URL + "/cold")
			if !assert.NoError(t, err) {
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
		}()
	}
	<-arrived // the one fill is at the origin; let the others queue behind it
	waitForRequests(t, p, n)
	close(release)
	wg.Wait()
	assert.EqualValues(t, 1, o.hits.Load())
	for _, a := range answers {
		assert.Equal(t, "shared", a.Body)
		assert.Equal(t, "MISS", a.Header.Get("X-Cache"))
	}
}

// A client without gzip gets the stored gzip bytes decompressed; one with
// gzip gets them as stored.
func TestCompressionFollowsAcceptEncoding(t *testing.T) {
	body := strings.Repeat("<p>compress me</p>", 100)
	o := newTestOrigin(t, page(body))
	p := startProxy(t, o.URL, nil)

	gz := p.get("/c", "Accept-Encoding", "gzip, deflate, br")
	assert.Equal(t, "gzip", gz.Header.Get("Content-Encoding"))
	assert.Contains(t, gz.Header.Get("Vary"), "Accept-Encoding")
	zr, err := gzip.NewReader(strings.NewReader(gz.Body))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, body, string(plain))

	for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
		got := p.get("/c", "Accept-Encoding", ae)
		assert.Empty(t, got.Header.Get("Content-Encoding"), "Accept-Encoding %q", ae)
		assert.Equal(t, body, got.Body, "Accept-Encoding %q", ae)
		assert.Equal(t, fmt.Sprint(len(body)), got.Header.Get("Content-Length"))
	}
	assert.EqualValues(t, 1, o.hits.Load())
	assert.Equal(t, "gzip", o.lastRequest().Header.Get("Accept-Encoding"), "fills ask for gzip only")
}

// A CMS whose base URL ends in a slash calls //api/revalidate; other
// spellings that clean to REVALIDATE_PATH are the API too (as nginx merges
// slashes and resolves dot segments): never a page request that would
// carry the secret to the origin and answer 200 without revalidating.
func TestRevalidatePathSpellingsReachTheAPI(t *testing.T) {
	o := newTestOrigin(t, page("<p>page</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/x")
	hits := o.hits.Load()
	for _, target := range []string{"//api/revalidate", "/api//revalidate", "/api/./revalidate", "/api/x/../revalidate", "/api/revalidate/"} {
		got := p.request(http.MethodPost, target+"?path=/x&mode=purge", nil, "Authorization", "Bearer "+apiSecret)
		assert.Equal(t, http.StatusOK, got.Status, "%s: %s", target, got.Body)
		assert.Contains(t, got.Body, `"outcome":"purged"`, target)
		assert.Equal(t, "no-store", got.Header.Get("Cache-Control"), target)
	}
	assert.Equal(t, hits, o.hits.Load(), "no spelling of the API reached the origin")
	jobs := p.request(http.MethodGet, "//api/revalidate/jobs/unknown", nil, "Authorization", "Bearer "+apiSecret)
	assert.Equal(t, http.StatusNotFound, jobs.Status)
	assert.Contains(t, jobs.Body, `"message"`)
}
