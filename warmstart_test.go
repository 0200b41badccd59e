package main

// Warm start (docs/behaviour.md#restarts-and-deploys): the snapshot written
// on SIGTERM and every SNAPSHOT_INTERVAL, loaded by the next process before
// it listens; a SIGKILL mid-write leaves the previous snapshot whole; the
// warm-up of WARM_PATHS_FILE and WARM_SITEMAP, /readyz, and a revalidation
// during the warm-up.

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/snapshot"
)

// childGet fetches path from a child process's public listener.
func childGet(t *testing.T, listen, path string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+listen+path, nil)
	require.NoError(t, err)
	req.Host = "www.example.com" // the same key whatever port the process listens on
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return childDo(t, req)
}

func childDo(t *testing.T, req *http.Request) answer {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

func childRevalidate(t *testing.T, listen, query string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+listen+"/api/revalidate?"+query, nil)
	require.NoError(t, err)
	req.Host = "www.example.com"
	req.Header.Set("Authorization", "Bearer "+apiSecret)
	return childDo(t, req)
}

func childEnviron(originURL string, env map[string]string) map[string]string {
	environ := map[string]string{
		"ORIGIN_URL":        originURL,
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"LOG_FORMAT":        "json",
		"LOG_LEVEL":         "info",
		"SHUTDOWN_TIMEOUT":  "5s",
		"GOMEMLIMIT":        "off",
	}
	for k, v := range env {
		environ[k] = v
	}
	return environ
}

// A restart by SIGTERM loses nothing: the next process loads the
// snapshot before it listens, and answers the same requests HIT with no
// origin request; Age goes on from the first fetch, tags still revalidate,
// a soft mark is still there, and a revalidation after the restart
// replaces what was loaded (its generation is above every loaded one).
func TestRestartServesTheSnapshotFromMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	var version atomic.Int64
	version.Store(1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/tagged":
			w.Header().Set("Cache-Tag", "post-1")
			w.Header().Set("Age", "100")
		case "/lang":
			w.Header().Set("Vary", "Accept-Language")
			fmt.Fprintf(w, "lang %s ", r.Header.Get("Accept-Language"))
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/listing":
			fmt.Fprint(w, `<a href="/tagged">the tagged page</a> `)
		}
		fmt.Fprintf(w, "%s v%d %s", r.URL.Path, version.Load(), strings.Repeat("x", 2000))
	})
	path := filepath.Join(t.TempDir(), "isrproxy.snapshot")
	environ := childEnviron(o.URL, map[string]string{"SNAPSHOT_PATH": path, "SNAPSHOT_INTERVAL": "0"})

	first := startExitChild(t, environ)
	serving := first.waitLog(t, "isrproxy serving")
	listen := serving["listen"].(string)
	requests := [][]string{
		{"/tagged"}, {"/plain?b=2&a=1"}, {"/lang", "Accept-Language", "fr"}, {"/lang", "Accept-Language", "de"},
		{"/missing"}, {"/soft"},
		{"/gz", "Accept-Encoding", "gzip"}, {"/listing"},
	}
	want := map[string]answer{}
	for _, rq := range requests {
		a := childGet(t, listen, rq[0], rq[1:]...)
		require.Equal(t, "MISS", a.Header.Get("X-Cache"), rq)
		want[strings.Join(rq, " ")] = a
	}
	assert.Equal(t, 200, childRevalidate(t, listen, "path=/soft&mode=soft").Status)
	fetchedAt := time.Now()
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGTERM))
	written := first.waitLog(t, "snapshot written")
	assert.EqualValues(t, 8, written["pages"], "every page and variant")
	require.Equal(t, 0, first.exitCode(t), first.stderr.String())

	before := o.hits.Load()
	second := startExitChild(t, environ)
	loaded := second.waitLog(t, "snapshot loaded")
	assert.EqualValues(t, 8, loaded["pages"])
	assert.Equal(t, true, loaded["complete"])
	serving = second.waitLog(t, "isrproxy serving")
	listen = serving["listen"].(string)
	time.Sleep(1100 * time.Millisecond) // so that Age shows it went on

	for _, rq := range requests {
		if rq[0] == "/soft" {
			continue
		}
		a := childGet(t, listen, rq[0], rq[1:]...)
		w := want[strings.Join(rq, " ")]
		assert.Equal(t, "HIT", a.Header.Get("X-Cache"), rq)
		assert.Equal(t, w.Status, a.Status, rq)
		assert.Equal(t, w.Body, a.Body, rq)
		assert.Equal(t, w.Header.Get("Content-Type"), a.Header.Get("Content-Type"), rq)
		assert.Equal(t, w.Header.Get("Content-Encoding"), a.Header.Get("Content-Encoding"), rq)
		assert.Equal(t, w.Header.Get("Etag"), a.Header.Get("Etag"), rq)
		age, err := strconv.Atoi(a.Header.Get("Age"))
		require.NoError(t, err, rq)
		wantAge := int(time.Since(fetchedAt) / time.Second)
		if rq[0] == "/tagged" {
			wantAge += 100 // the origin's own Age goes on too
		}
		assert.GreaterOrEqual(t, age, wantAge, rq)
	}
	assert.Equal(t, before, o.hits.Load(), "no origin request for a page loaded from the snapshot")

	// The soft mark was kept: STALE, and one background refetch.
	a := childGet(t, listen, "/soft")
	assert.Equal(t, "STALE", a.Header.Get("X-Cache"))

	// Tags and links were kept, and the revalidation's fetch, which
	// started after the restart, replaces the loaded page.
	version.Store(2)
	r := childRevalidate(t, listen, "tag=post-1")
	require.Equal(t, 200, r.Status, r.Body)
	assert.Contains(t, r.Body, `"path":"/tagged"`)
	r = childRevalidate(t, listen, "path=/tagged&linked=1")
	require.Equal(t, 200, r.Status, r.Body)
	assert.Contains(t, r.Body, `"path":"/listing"`, "the page that links to it, from the snapshot's links")
	a = childGet(t, listen, "/tagged")
	assert.Equal(t, "HIT", a.Header.Get("X-Cache"))
	assert.Contains(t, a.Body, "/tagged v2")

	require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, second.exitCode(t), second.stderr.String())
}

// A SIGKILL while the snapshot is being written leaves the previous
// snapshot whole: the next process loads every page of it. The kill is
// tried at several moments of a write large enough to be caught mid-way.
func TestSIGKILLMidWriteLeavesThePreviousSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const pages, size = 96, 1 << 20 // 96 MiB of snapshot: a write takes a while
	bodies := make([][]byte, 8)
	for i := range bodies {
		bodies[i] = make([]byte, size)
		rand.Read(bodies[i])
	}
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		w.Header().Set("Content-Type", "application/octet-stream") // not compressed
		w.Write(bodies[n%len(bodies)])
	})
	dir := t.TempDir()
	path := filepath.Join(dir, "isrproxy.snapshot")
	environ := childEnviron(o.URL, map[string]string{
		"SNAPSHOT_PATH": path, "SNAPSHOT_INTERVAL": "100ms", "CACHE_MAX_BYTES": "1GiB", "MAX_OBJECT_BYTES": "2MiB",
	})

	caught := 0
	for round, delay := range []time.Duration{0, 20 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond} {
		c := startExitChild(t, environ)
		listen := c.waitLog(t, "isrproxy serving")["listen"].(string)
		if round == 0 {
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < pages; i += 4 {
						req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/p/"+strconv.Itoa(i), nil)
						req.Host = "www.example.com"
						resp, err := http.DefaultClient.Do(req)
						if assert.NoError(t, err) {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}
				}()
			}
			wg.Wait()
		}
		// A whole snapshot of every page, then the kill during the next.
		for {
			m := c.waitLog(t, "snapshot written")
			if m["pages"] == float64(pages) {
				break
			}
		}
		c.waitLog(t, "writing snapshot")
		time.Sleep(delay)
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
		c.exitCode(t)
		tmp, _ := filepath.Glob(path + ".tmp-*")
		if len(tmp) > 0 {
			caught++
		}
		t.Logf("round %d: killed %v into a write, mid-write: %v", round, delay, len(tmp) > 0)

		s, err := cache.New(cache.Config{MaxBytes: 1 << 30})
		require.NoError(t, err)
		res := snapshot.Load(path, s, snapshot.Options{})
		s.Close()
		assert.True(t, res.Complete, "round %d (kill %v into a write): %v", round, delay, res.Problems)
		assert.Equal(t, pages, res.Pages, "round %d", round)
		assert.Zero(t, res.Corrupt, "round %d", round)
	}
	assert.Positive(t, caught, "at least one kill came mid-write (it left a temporary file)")

	// The real binary loads it, removes what the killed write left, and
	// serves its pages from memory.
	before := o.hits.Load()
	environ["SNAPSHOT_INTERVAL"] = "0"
	c := startExitChild(t, environ)
	loaded := c.waitLog(t, "snapshot loaded")
	assert.EqualValues(t, pages, loaded["pages"])
	listen := c.waitLog(t, "isrproxy serving")["listen"].(string)
	a := childGet(t, listen, "/p/3")
	assert.Equal(t, "HIT", a.Header.Get("X-Cache"))
	assert.Equal(t, string(bodies[3]), a.Body)
	assert.Equal(t, before, o.hits.Load())
	tmp, _ := filepath.Glob(path + ".tmp-*")
	assert.Empty(t, tmp, "the unfinished write is removed at start")
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	c.exitCode(t)
}

// readyz returns the admin listener's /readyz status.
func readyz(t *testing.T, in *instance) int {
	t.Helper()
	resp, err := http.Get(in.Admin + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Without a snapshot or warm-up, /readyz is 200 as soon as isrproxy serves.
func TestReadyzWithNothingToWarm(t *testing.T) {
	o := newTestOrigin(t, page("<p>p</p>"))
	in := startProxy(t, o.URL, nil)
	assert.Equal(t, http.StatusOK, readyz(t, in))
}

// Warm-up fills the paths file for each allowed host, and the sitemap's
// URLs on the served hosts; /readyz is 503 until every one was tried. A
// sitemap URL naming another server is skipped: that server gets nothing.
// A revalidation that arrives during the warm-up is applied, and not undone
// by the warm-up fill that was in flight.
func TestWarmUpFillsPathsAndSitemapAndYieldsToRevalidations(t *testing.T) {
	var elsewhere atomic.Int64
	other := newTestOrigin(t, func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) })
	gate := newCoreGate()
	t.Cleanup(gate.open)
	arrived := make(chan struct{}, 1)
	var version atomic.Int64
	version.Store(1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sitemap.xml":
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprintf(w, `<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`+
				`<url><loc>http://www.example.com/from-sitemap</loc></url>`+
				`<url><loc>%s/steal</loc></url>`+
				`<url><loc>http://evil.example/x</loc></url></urlset>`, other.URL)
			return
		case "/slow":
			if version.Load() == 1 {
				arrived <- struct{}{}
				gate.wait(r) // the warm-up fill read v1 and is still in flight
			}
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "%s %s v%d", r.Host, r.URL.Path, version.Load())
	})
	paths := filepath.Join(t.TempDir(), "paths.txt")
	require.NoError(t, os.WriteFile(paths, []byte("# warmed first\n/slow\n/about\n"), 0o600))
	in := startProxy(t, o.URL, map[string]string{
		"ALLOWED_HOSTS":   "www.example.com,example.com",
		"WARM_PATHS_FILE": paths,
		"WARM_SITEMAP":    "/sitemap.xml",
		"WARM_RATE":       "50",
	})
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "warm-up did not start")
	}
	assert.Equal(t, http.StatusServiceUnavailable, readyz(t, in), "warming up")

	version.Store(2) // the editor saves; the CMS revalidates
	r := in.request(http.MethodPost, "/api/revalidate?path=/slow", nil, "Authorization", "Bearer "+apiSecret, "Host", "www.example.com")
	require.Equal(t, 200, r.Status, r.Body)
	gate.open()
	require.Eventually(t, func() bool { return readyz(t, in) == http.StatusOK }, 10*time.Second, 10*time.Millisecond)

	a := in.get("/slow", "Host", "www.example.com")
	assert.Equal(t, "HIT", a.Header.Get("X-Cache"))
	assert.Equal(t, "www.example.com /slow v2", a.Body, "the warm-up fill never undoes the revalidation")
	hits := o.hits.Load()
	for _, host := range []string{"www.example.com", "example.com"} {
		a = in.get("/about", "Host", host)
		assert.Equal(t, "HIT", a.Header.Get("X-Cache"), host)
		assert.Equal(t, host+" /about v2", a.Body)
	}
	a = in.get("/from-sitemap", "Host", "www.example.com")
	assert.Equal(t, "HIT", a.Header.Get("X-Cache"))
	assert.Equal(t, hits, o.hits.Load(), "warmed pages are served from memory")
	assert.Zero(t, elsewhere.Load(), "no request reaches another server")
	assert.Contains(t, in.logs.String(), `"msg":"warm-up done"`)
}

// Warm-up after a restart fetches only what the snapshot did not hold.
func TestWarmUpSkipsPagesLoadedFromTheSnapshot(t *testing.T) {
	o := newTestOrigin(t, page("<p>page</p>"))
	dir := t.TempDir()
	snap := filepath.Join(dir, "isrproxy.snapshot")
	in := startProxy(t, o.URL, map[string]string{"SNAPSHOT_PATH": snap, "ALLOWED_HOSTS": "www.example.com"})
	in.get("/old", "Host", "www.example.com")
	require.NoError(t, in.stop())

	paths := filepath.Join(dir, "paths.txt")
	require.NoError(t, os.WriteFile(paths, []byte("/old\n/new\n"), 0o600))
	before := o.hits.Load()
	in = startProxy(t, o.URL, map[string]string{"SNAPSHOT_PATH": snap, "ALLOWED_HOSTS": "www.example.com",
		"WARM_PATHS_FILE": paths, "WARM_RATE": "100"})
	require.Eventually(t, func() bool { return readyz(t, in) == http.StatusOK }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, before+1, o.hits.Load(), "only /new is fetched")
	assert.Equal(t, "/new", o.lastRequest().URL.Path)
}

// Warm-up without ALLOWED_HOSTS is a configuration error: exit 2, one
// line naming the variable.
func TestWarmUpWithoutAllowedHostsExits2(t *testing.T) {
	environ := exitValidEnviron()
	environ["WARM_SITEMAP"] = "/sitemap.xml"
	code, _, stderr := exitCLI(t, environ)
	assert.Equal(t, 2, code)
	assert.Equal(t, []string{"isrproxy: config: WARM_SITEMAP: needs ALLOWED_HOSTS: warm-up fills the pages of the hosts served, and any host is served when ALLOWED_HOSTS is empty"}, exitLines(stderr))

	environ = exitValidEnviron()
	environ["SNAPSHOT_PATH"] = filepath.Join(t.TempDir(), "missing", "isrproxy.snapshot")
	code, _, stderr = exitCLI(t, environ)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "SNAPSHOT_PATH: ")
}
