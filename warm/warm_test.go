package warm

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/proxy"
)

// origin is a scripted origin that records what it was asked.
type origin struct {
	*httptest.Server
	mu    sync.Mutex
	got   []string // "host path"
	times []time.Time
	files map[string]func(w http.ResponseWriter, r *http.Request)
}

func newOrigin(t *testing.T) *origin {
	o := &origin{files: map[string]func(http.ResponseWriter, *http.Request){}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.got = append(o.got, r.Host+" "+r.URL.RequestURI())
		o.times = append(o.times, time.Now())
		h := o.files[r.URL.Path]
		o.mu.Unlock()
		if h == nil {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<p>%s %s</p>", r.Host, r.URL.RequestURI())
			return
		}
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) serve(path string, h func(http.ResponseWriter, *http.Request)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[path] = h
}

func (o *origin) xml(path, body string) {
	o.serve(path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		io.WriteString(w, body)
	})
}

func (o *origin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := append([]string(nil), o.got...)
	sort.Strings(got)
	return got
}

// pages is the page handler in front of o.
func pages(t *testing.T, o *origin) (*proxy.Handler, *cache.Store) {
	t.Helper()
	store, err := cache.New(cache.Config{MaxBytes: 64 << 20})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	u, _ := url.Parse(o.URL)
	h, err := proxy.New(proxy.Options{Origin: u, Store: store, CacheStatuses: []int{200, 404}, OriginTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(h.Close)
	return h, store
}

func storedKeys(s *cache.Store) []string {
	var keys []string
	s.Each(func(p *cache.Page) bool {
		k := p.Key.String()
		if p.HTTPS {
			k = "https " + k
		}
		keys = append(keys, k)
		return true
	})
	sort.Strings(keys)
	return keys
}

func gz(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, s)
	zw.Close()
	return b.Bytes()
}

const (
	urlsetOpen = `<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`
	indexOpen  = `<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`
)

// The sitemap's URLs on the hosts and schemes served are filled, indexes
// and .xml.gz sitemaps followed; every other URL is skipped, and no
// request ever reaches another server than the origin.
func TestSitemapFillsOnlyWhatIsServed(t *testing.T) {
	o := newOrigin(t)
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere++ }))
	defer other.Close()
	otherHost := strings.TrimPrefix(other.URL, "http://")

	o.xml("/sitemap.xml", indexOpen+
		`<sitemap><loc>http://www.example.com/sitemap-posts.xml.gz</loc></sitemap>`+
		`<sitemap><loc>http://www.example.com/sitemap-pages.xml</loc></sitemap>`+
		`<sitemap><loc>`+other.URL+`/sitemap-evil.xml</loc></sitemap>`+
		`</sitemapindex>`)
	o.serve("/sitemap-posts.xml.gz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-gzip")
		w.Write(gz(urlsetOpen +
			`<url><loc>http://www.example.com/post/1</loc></url>` +
			`<url><loc>http://WWW.Example.com:80/post/2?p=2#comments</loc></url>` +
			`</urlset>`))
	})
	o.xml("/sitemap-pages.xml", urlsetOpen+
		`<url><loc> http://www.example.com/about </loc><lastmod>2026-01-01</lastmod></url>`+
		`<url><loc>http://example.com/also-served</loc></url>`+
		`<url><loc>http://evil.example/x</loc></url>`+
		`<url><loc>`+other.URL+`/steal</loc></url>`+
		`<url><loc>https://www.example.com/tls-not-served</loc></url>`+
		`<url><loc>ftp://www.example.com/file</loc></url>`+
		`<url><loc>http://user:pass@www.example.com/creds</loc></url>`+
		`<url><loc>http://www.example.com:8081/other-port</loc></url>`+
		`<url><loc>javascript:alert(1)</loc></url>`+
		`</urlset>`)

	h, store := pages(t, o)
	res := Run(context.Background(), Options{Pages: h, Hosts: []string{"www.example.com", "example.com"},
		HTTP: true, Sitemap: "/sitemap.xml", Rate: 1000})

	assert.Zero(t, elsewhere, "nothing reaches another server")
	for _, r := range o.requests() {
		assert.NotContains(t, r, otherHost)
	}
	assert.Equal(t, []string{
		"example.com/also-served",
		"example.com/sitemap.xml",
		"www.example.com/about",
		"www.example.com/post/1",
		"www.example.com/post/2?p=2",
		"www.example.com/sitemap-pages.xml",
		"www.example.com/sitemap-posts.xml.gz",
		"www.example.com/sitemap.xml",
	}, storedKeys(store), "sitemaps are pages too: stored as a visitor's GET would store them")
	assert.Equal(t, 4, res.Filled)
	assert.Equal(t, 9, res.Skipped, "7 URLs, and the foreign sitemap in each host's index")
	assert.Zero(t, res.Failed)
}

// With https served, an https URL fills the https variant of its page.
func TestSitemapHTTPSURLFillsTheHTTPSVariant(t *testing.T) {
	o := newOrigin(t)
	o.xml("/sitemap.xml", urlsetOpen+`<url><loc>https://www.example.com/a</loc></url><url><loc>http://www.example.com/b</loc></url></urlset>`)
	h, store := pages(t, o)
	Run(context.Background(), Options{Pages: h, Hosts: []string{"www.example.com"}, HTTPS: true, Sitemap: "/sitemap.xml", Rate: 1000})
	assert.Equal(t, []string{"https www.example.com/a", "https www.example.com/sitemap.xml"}, storedKeys(store))
}

func TestPathsFileFillsEachPathForEachHost(t *testing.T) {
	o := newOrigin(t)
	file := filepath.Join(t.TempDir(), "paths.txt")
	require.NoError(t, os.WriteFile(file, []byte("# the home page\n/\n\n  /blog/?page=2  \n/a%20b\nhttp://evil.example/x\n//evil.example/y\nnot-a-path\n/#frag\n"), 0o600))
	h, store := pages(t, o)
	res := Run(context.Background(), Options{Pages: h, Hosts: []string{"a.example", "b.example"}, PathsFile: file, Rate: 1000})
	assert.Equal(t, []string{
		"a.example /", "a.example /a%20b", "a.example /blog/?page=2",
		"b.example /", "b.example /a%20b", "b.example /blog/?page=2",
	}, o.requests())
	assert.Len(t, storedKeys(store), 6)
	assert.Equal(t, 4, res.BadLines)
	assert.Equal(t, 6, res.Filled)
}

// A page already stored (loaded from the snapshot) is not fetched again,
// not even when it is marked stale.
func TestStoredPagesAreNotFetchedAgain(t *testing.T) {
	o := newOrigin(t)
	file := filepath.Join(t.TempDir(), "paths.txt")
	require.NoError(t, os.WriteFile(file, []byte("/loaded\n/stale\n/new\n"), 0o600))
	h, store := pages(t, o)
	for _, path := range []string{"/loaded", "/stale"} {
		p := &cache.Page{Key: cache.Key{Host: "www.example.com", Path: path}, Status: 200, Body: []byte("saved"),
			StoredAt: time.Now(), Gen: 7}
		if path == "/stale" {
			p.MarkStale()
		}
		require.Equal(t, cache.Stored, store.Restore(p))
	}
	res := Run(context.Background(), Options{Pages: h, Hosts: []string{"www.example.com"}, PathsFile: file, Rate: 1000})
	time.Sleep(50 * time.Millisecond) // a background refresh, had one started, would have reached the origin
	assert.Equal(t, []string{"www.example.com /new"}, o.requests())
	assert.Equal(t, 2, res.Stored)
	assert.Equal(t, 1, res.Filled)
}

// At most Rate fills start per second.
func TestFillsAreStartedAtRate(t *testing.T) {
	o := newOrigin(t)
	var lines strings.Builder
	for i := range 6 {
		fmt.Fprintf(&lines, "/p/%d\n", i)
	}
	file := filepath.Join(t.TempDir(), "paths.txt")
	require.NoError(t, os.WriteFile(file, []byte(lines.String()), 0o600))
	h, _ := pages(t, o)
	res := Run(context.Background(), Options{Pages: h, Hosts: []string{"www.example.com"}, PathsFile: file, Rate: 20})
	assert.GreaterOrEqual(t, res.Took, 240*time.Millisecond, "6 fills at 20/s: 5 intervals of 50 ms")
	o.mu.Lock()
	defer o.mu.Unlock()
	require.Len(t, o.times, 6)
	// The starts are 50 ms apart; a request may take a moment more to
	// reach the origin than the next one does, so the span is what counts.
	assert.GreaterOrEqual(t, o.times[5].Sub(o.times[0]), 200*time.Millisecond)
}

// A sitemap that answers 5xx, is malformed, too large, not a sitemap, or
// nests too deep is logged, and warm-up goes on with what it has.
func TestBadSitemapsAreLoggedAndWarmUpGoesOn(t *testing.T) {
	o := newOrigin(t)
	o.xml("/sitemap.xml", indexOpen+
		`<sitemap><loc>http://www.example.com/down.xml</loc></sitemap>`+
		`<sitemap><loc>http://www.example.com/broken.xml</loc></sitemap>`+
		`<sitemap><loc>http://www.example.com/huge.xml</loc></sitemap>`+
		`<sitemap><loc>http://www.example.com/html.xml</loc></sitemap>`+
		`<sitemap><loc>http://www.example.com/deep1.xml</loc></sitemap>`+
		`<sitemap><loc>http://www.example.com/bomb.xml.gz</loc></sitemap>`+
		`</sitemapindex>`)
	o.serve("/down.xml", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	o.xml("/broken.xml", urlsetOpen+`<url><loc>http://www.example.com/before-the-break</loc></url><url><loc>http://www.exa`)
	o.xml("/huge.xml", urlsetOpen+strings.Repeat(`<url><loc>http://www.example.com/huge</loc></url>`, 2000)+`</urlset>`)
	o.xml("/html.xml", `<html><body><a href="/x">x</a></body></html>`)
	o.xml("/deep1.xml", indexOpen+`<sitemap><loc>http://www.example.com/deep2.xml</loc></sitemap></sitemapindex>`)
	o.xml("/deep2.xml", indexOpen+`<sitemap><loc>http://www.example.com/deep3.xml</loc></sitemap></sitemapindex>`)
	o.xml("/deep3.xml", urlsetOpen+`<url><loc>http://www.example.com/too-deep</loc></url></urlset>`)
	o.serve("/bomb.xml.gz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/gzip")
		w.Write(gz(urlsetOpen + strings.Repeat(" ", 200<<10) + `</urlset>`))
	})
	file := filepath.Join(t.TempDir(), "paths.txt")
	require.NoError(t, os.WriteFile(file, []byte("/from-the-file\n"), 0o600))

	var logs bytes.Buffer
	h, store := pages(t, o)
	res := Run(context.Background(), Options{Pages: h, Hosts: []string{"www.example.com"}, Sitemap: "/sitemap.xml",
		PathsFile: file, Rate: 1000, MaxSitemapBytes: 64 << 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	keys := storedKeys(store)
	assert.Contains(t, keys, "www.example.com/from-the-file")
	assert.Contains(t, keys, "www.example.com/before-the-break")
	assert.NotContains(t, keys, "www.example.com/huge")
	assert.NotContains(t, keys, "www.example.com/too-deep")
	assert.Equal(t, 2, res.Filled)
	for _, want := range []string{"answered 503", "malformed sitemap", "larger than 0 MiB", "not a sitemap", "too deep", "once decompressed"} {
		assert.Contains(t, logs.String(), want)
	}
}

// A revalidation that arrives while warm-up fills its page wins: the
// warm-up fill started before it, so its older answer is never stored
// over the revalidated page.
func TestRevalidationDuringWarmUpIsNotUndone(t *testing.T) {
	o := newOrigin(t)
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	var mu sync.Mutex
	version := "old"
	o.serve("/slow", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v := version
		mu.Unlock()
		if v == "old" {
			arrived <- struct{}{}
			<-release // the warm-up fill read the old page and is still in flight
		}
		io.WriteString(w, v)
	})
	file := filepath.Join(t.TempDir(), "paths.txt")
	require.NoError(t, os.WriteFile(file, []byte("/slow\n"), 0o600))
	h, store := pages(t, o)
	done := make(chan Result, 1)
	go func() {
		done <- Run(context.Background(), Options{Pages: h, Hosts: []string{"www.example.com"}, PathsFile: file, Rate: 1000})
	}()
	<-arrived
	mu.Lock()
	version = "new" // the editor saves, and the CMS revalidates
	mu.Unlock()
	key := cache.Key{Host: "www.example.com", Path: "/slow"}
	results := h.Refetch(context.Background(), key)
	require.Len(t, results, 1)
	assert.Equal(t, "new", string(store.Get(key).Variants[0].Body))
	close(release)
	<-done
	assert.Equal(t, "new", string(store.Get(key).Variants[0].Body), "the warm-up fill never undoes the revalidation")
}
