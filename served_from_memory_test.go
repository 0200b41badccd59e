package main

// A stored page is answered from memory, whatever the visitor's own
// Cache-Control says and whatever freshness the origin declared: GET and
// HEAD, one visitor or many, and while a refetch runs.

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HEAD is answered from the GET entry.
func TestHeadIsAnsweredFromGetEntry(t *testing.T) {
	body := strings.Repeat("<p>head</p>", 40)
	o := newTestOrigin(t, page(body))
	p := startProxy(t, o.URL, nil)
	get := p.get("/h")
	head := p.request(http.MethodHead, "/h", nil)
	assert.Equal(t, "HIT", head.Header.Get("X-Cache"))
	assert.Empty(t, head.Body)
	assert.Equal(t, get.Header.Get("Content-Length"), head.Header.Get("Content-Length"))
	assert.Equal(t, get.Header.Get("Content-Type"), head.Header.Get("Content-Type"))
	assert.EqualValues(t, 1, o.hits.Load())
}

// A HEAD miss fills with GET, so the following GET is a HIT.
func TestHeadMissFillsWithGet(t *testing.T) {
	body := strings.Repeat("<p>head</p>", 40)
	o := newTestOrigin(t, page(body))
	p := startProxy(t, o.URL, nil)
	head := p.request(http.MethodHead, "/hm", nil)
	assert.Equal(t, http.StatusOK, head.Status)
	assert.Empty(t, head.Body)
	assert.Equal(t, "MISS", head.Header.Get("X-Cache"))
	require.NotNil(t, o.lastRequest())
	assert.Equal(t, http.MethodGet, o.lastRequest().Method, "the origin sees GET")
	got := assertStored(t, p, o, "/hm")
	assert.Equal(t, body, got.Body)
	assert.Equal(t, strconv.Itoa(len(body)), head.Header.Get("Content-Length"))
}

// Freshness headers do not limit storage: a page lives until revalidated,
// purged or evicted.
func TestFreshnessHeadersDoNotLimitStorage(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache, max-age=0, s-maxage=0, must-revalidate")
		w.Header().Set("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")
		w.Header().Set("Pragma", "no-cache")
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)
	assert.Equal(t, "isrproxy; fwd=miss; stored", p.get("/fr").Header.Get("Cache-Status"))
	got := assertStored(t, p, o, "/fr")
	assert.Equal(t, "no-cache, max-age=0, s-maxage=0, must-revalidate", got.Header.Get("Cache-Control"), "stored headers are the origin's")
}

// A browser reload (request Cache-Control: no-cache) is still
// answered from memory.
func TestClientNoCacheIsServedFromMemory(t *testing.T) {
	o := newTestOrigin(t, page("<p>p</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/nc")
	assertStored(t, p, o, "/nc", "Cache-Control", "no-cache", "Pragma", "no-cache")
	assertStored(t, p, o, "/nc", "Cache-Control", "max-age=0")
}

// Many visitors reading one stored page at once, with and without gzip,
// GET and HEAD: each gets a whole, correct answer (and -race sees no data
// race on the shared page).
func TestConcurrentHitsEachGetTheWholePage(t *testing.T) {
	body := strings.Repeat("<p>concurrent</p>", 200)
	o := newTestOrigin(t, page(body))
	p := startProxy(t, o.URL, nil)
	p.get("/hot")
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				method := http.MethodGet
				if (g+i)%5 == 0 {
					method = http.MethodHead
				}
				req, _ := http.NewRequest(method, p.URL+"/hot", nil)
				gz := (g+i)%2 == 0
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				resp, err := p.client.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, "HIT", resp.Header.Get("X-Cache"))
				if method == http.MethodHead {
					assert.Empty(t, b)
					continue
				}
				if gz {
					assert.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
					zr, err := gzip.NewReader(bytes.NewReader(b))
					if assert.NoError(t, err) {
						plain, _ := io.ReadAll(zr)
						assert.True(t, string(plain) == body, "gzip body intact")
					}
				} else {
					assert.True(t, string(b) == body, "plain body intact")
					assert.Equal(t, strconv.Itoa(len(body)), resp.Header.Get("Content-Length"))
				}
			}
		}()
	}
	waitAll(t, &wg)
	assert.EqualValues(t, 1, o.hits.Load())
}

// While a refetch runs, visitors get the stored page at once.
func TestVisitorsGetTheStoredPageAtOnceDuringARefetch(t *testing.T) {
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
