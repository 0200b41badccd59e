package main

// Read-your-writes: once the revalidate API answers 200, the next request
// gets the new page; by path, tag or prefix, hard or soft, on demand or
// after REVALIDATE_AFTER.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A page older than REVALIDATE_AFTER is served
// STALE, from memory, while one background refetch runs.
func TestPageOlderThanRevalidateAfterIsServedStale(t *testing.T) {
	gate := newGate()
	var version atomic.Int64
	version.Store(1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if version.Load() > 1 && !gate.wait(r) {
			return
		}
		fmt.Fprintf(w, "version %d", version.Load())
	})
	p := startProxy(t, o.URL, map[string]string{"REVALIDATE_AFTER": "50ms"})
	gate.openAtCleanup(t)

	assert.Equal(t, "version 1", p.get("/s").Body)
	version.Store(2) // the origin now blocks until the gate opens
	var stale answer
	require.Eventually(t, func() bool {
		resp, err := p.client.Get(p.URL + "/s")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		stale = answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
		return resp.Header.Get("X-Cache") == "STALE"
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "isrproxy; hit; fwd=stale", stale.Header.Get("Cache-Status"))
	assert.Equal(t, "version 1", stale.Body)
	assert.NotEmpty(t, stale.Header.Get("Age"))
	require.Eventually(t, func() bool { return o.hits.Load() >= 2 }, 5*time.Second, time.Millisecond,
		"the background refetch reaches the origin")
	for range 3 {
		got := p.get("/s") // the refetch is blocked: still answered at once
		assert.Equal(t, "STALE", got.Header.Get("X-Cache"))
		assert.Equal(t, "version 1", got.Body)
	}
	assert.EqualValues(t, 2, o.hits.Load(), "one background refetch")
	gate.open()
	require.Eventually(t, func() bool { return p.get("/s").Body == "version 2" }, 5*time.Second, 10*time.Millisecond)
}

// versioned is an origin whose pages carry a version the test bumps.
type versioned struct {
	version atomic.Int64
}

func (v *versioned) handler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Cache-Tag", "all, path:"+r.URL.Path)
	fmt.Fprintf(w, "<p>%s version %d</p>", r.URL.Path, v.version.Load())
}

// Once revalidate answers 200, the next request gets the new page.
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
func TestReadersAndRevalidationsUnderStress(t *testing.T) {
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
