package main

// Drop-in for the CMS purge plugins (README.md#cms-plugins): the PURGE and
// BAN requests that WordPress's Proxy Cache Purge, Drupal's Varnish purger
// and Magento 2 send to Varnish are replayed here byte for byte, and
// isrproxy answers them itself, with the revalidate API's read-your-writes
// refetch: nothing reaches the origin but the refetches.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cmsOrigin is a CMS: every page shows the current version, tagged as the
// test says; it records the methods it receives.
type cmsOrigin struct {
	*testOrigin
	version atomic.Int64
	mu      sync.Mutex
	methods []string
}

func newCMSOrigin(t *testing.T, tags func(path string) string, header string) *cmsOrigin {
	c := &cmsOrigin{}
	c.version.Store(1)
	c.testOrigin = newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.methods = append(c.methods, r.Method)
		c.mu.Unlock()
		if tags != nil {
			if tg := tags(r.URL.Path); tg != "" {
				w.Header().Set(header, tg)
				// Cache-Tag is always read; the CMS's own header is read
				// once TAG_HEADERS names it.
				w.Header().Set("Cache-Tag", strings.NewReplacer(" ", ",").Replace(tg))
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		fmt.Fprintf(w, "<p>%s version %d</p>", r.URL.RequestURI(), c.version.Load())
	})
	return c
}

// onlyGETs checks that the origin never received a PURGE or BAN.
func (c *cmsOrigin) onlyGETs(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.methods {
		assert.Equal(t, http.MethodGet, m, "the origin must see refetches only")
	}
}

func (c *cmsOrigin) body(path string, version int64) string {
	return fmt.Sprintf("<p>%s version %d</p>", path, version)
}

// warmPages stores paths for host and checks they are hits.
func warmPages(t *testing.T, p *instance, o *cmsOrigin, host string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		p.get(path, "Host", host)
		assertStored(t, p, o.testOrigin, path, "Host", host)
	}
}

// apiResults maps each result's path to its outcome.
func apiResults(t *testing.T, body string) map[string]string {
	t.Helper()
	got := decodeAPI(t, answer{Body: body, Header: http.Header{"Cache-Control": {"no-store"}}})
	out := map[string]string{}
	for _, r := range got.Results {
		out[r.Path] = r.Outcome
	}
	return out
}

// WordPress, Proxy Cache Purge 5.2 (varnish-http-purge.php, purge_url):
// "Purge Cache" in the toolbar, and every update of the front page, send
// PURGE to the home URL's path plus ".*", with X-Purge-Method: regex and
// the site's Host, through wp_remote_request.
func TestWordPressProxyCachePurgeFlushAll(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, nil)
	warmPages(t, p, o, "blog.example.com", "/", "/2024/05/hello-world/", "/category/news/?paged=2")
	warmPages(t, p, o, "other.example.com", "/")
	o.version.Store(2)

	res := mustRaw(t, p, "PURGE", "PURGE /.* HTTP/1.1\r\n"+
		"Host: blog.example.com\r\n"+
		"User-Agent: WordPress/6.5.3; http://blog.example.com\r\n"+
		"Accept: */*\r\n"+
		"Accept-Encoding: deflate, gzip, br, zstd\r\n"+
		"X-Purge-Method: regex\r\n"+
		"Connection: close\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
	assert.Equal(t, map[string]string{"/": "replaced", "/2024/05/hello-world/": "replaced", "/category/news/?paged=2": "replaced"},
		apiResults(t, res.Body))
	// Read-your-writes, from memory.
	for _, path := range []string{"/", "/2024/05/hello-world/", "/category/news/?paged=2"} {
		got := assertStored(t, p, o.testOrigin, path, "Host", "blog.example.com")
		assert.Equal(t, o.body(path, 2), got.Body)
	}
	// Another host's pages are not its.
	assert.Equal(t, o.body("/", 1), assertStored(t, p, o.testOrigin, "/", "Host", "other.example.com").Body)
	o.onlyGETs(t)
}

// wp varnish purge http://blog.example.com/2024/ --wildcard: the path plus
// ".*", a prefix.
func TestWordPressProxyCachePurgeWildcardIsAPrefix(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, nil)
	warmPages(t, p, o, "blog.example.com", "/", "/2024/05/hello-world/", "/2023/old/")
	o.version.Store(2)

	res := mustRaw(t, p, "PURGE", "PURGE /2024/.* HTTP/1.1\r\nHost: blog.example.com\r\nX-Purge-Method: regex\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, map[string]string{"/2024/05/hello-world/": "replaced"}, apiResults(t, res.Body))
	assert.Equal(t, o.body("/2023/old/", 1), p.get("/2023/old/", "Host", "blog.example.com").Body)
}

// Saving a post: one PURGE per URL of the post (its permalink, archives,
// feeds), X-Purge-Method: default, the URL's path as the request target.
func TestWordPressProxyCachePurgeOneURL(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, nil)
	warmPages(t, p, o, "blog.example.com", "/2024/05/hello-world/", "/about/")
	o.version.Store(2)

	res := mustRaw(t, p, "PURGE", "PURGE /2024/05/hello-world/ HTTP/1.1\r\n"+
		"Host: blog.example.com\r\n"+
		"User-Agent: WordPress/6.5.3; http://blog.example.com\r\n"+
		"X-Purge-Method: default\r\n"+
		"Connection: close\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, map[string]string{"/2024/05/hello-world/": "replaced"}, apiResults(t, res.Body))
	assert.Equal(t, o.body("/2024/05/hello-world/", 2), assertStored(t, p, o.testOrigin, "/2024/05/hello-world/", "Host", "blog.example.com").Body)
	assert.Equal(t, o.body("/about/", 1), p.get("/about/", "Host", "blog.example.com").Body)
	o.onlyGETs(t)
}

// Drupal's purge module with the Varnish purger (Tags type): BAN to the
// configured host and path "/", header Cache-Tags set to
// [invalidation:expression] (one tag a request), or to
// [invalidations:separated_pipe] with the bundled purger. Drupal's Guzzle
// sends the purger's hostname as Host: with ALLOWED_HOSTS naming the one
// site, its pages are the ones named.
func TestDrupalVarnishPurgerBanByCacheTags(t *testing.T) {
	tags := func(path string) string {
		switch path {
		case "/node/1":
			return "node:1 node_list config:system.site"
		case "/node":
			return "node_list config:system.site"
		case "/node/2":
			return "node:2 config:system.site"
		}
		return ""
	}
	o := newCMSOrigin(t, tags, "Cache-Tags")
	p := startProxy(t, o.URL, map[string]string{"ALLOWED_HOSTS": "www.example.org"})
	warmPages(t, p, o, "www.example.org", "/node/1", "/node", "/node/2")
	o.version.Store(2)

	res := mustRaw(t, p, "BAN", "BAN / HTTP/1.1\r\n"+
		"Host: "+hostPort(p.URL)+"\r\n"+
		"User-Agent: GuzzleHttp/7\r\n"+
		"Cache-Tags: node:1\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, map[string]string{"/node/1": "replaced"}, apiResults(t, res.Body))

	o.version.Store(3)
	res = mustRaw(t, p, "BAN", "BAN / HTTP/1.1\r\n"+
		"Host: "+hostPort(p.URL)+"\r\n"+
		"User-Agent: GuzzleHttp/7\r\n"+
		"Cache-Tags: node:2|node_list\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, map[string]string{"/node/1": "replaced", "/node": "replaced", "/node/2": "replaced"}, apiResults(t, res.Body))
	assert.Equal(t, o.body("/node", 3), assertStored(t, p, o.testOrigin, "/node", "Host", "www.example.org").Body)
	o.onlyGETs(t)
}

// Magento 2 (CacheInvalidate\Model\PurgeCache): PURGE / to each of
// http-cache-hosts, Host set to that host, and X-Magento-Tags-Pattern an
// alternation of ((^|,)TAG(,|$)); ".*" flushes everything.
func TestMagentoPurgeByTagsPattern(t *testing.T) {
	tags := func(path string) string {
		switch path {
		case "/shoe.html":
			return "cat_p,cat_p_1,store"
		case "/shoes.html":
			return "cat_c,cat_c_2,cat_c_p_2,store"
		case "/about-us":
			return "cms_p,cms_p_5,store"
		}
		return ""
	}
	o := newCMSOrigin(t, tags, "X-Magento-Tags")
	p := startProxy(t, o.URL, map[string]string{"ALLOWED_HOSTS": "shop.example.com"})
	warmPages(t, p, o, "shop.example.com", "/shoe.html", "/shoes.html", "/about-us")
	o.version.Store(2)

	res := mustRaw(t, p, "PURGE", "PURGE / HTTP/1.1\r\n"+
		"Host: 127.0.0.1\r\n"+
		"X-Magento-Tags-Pattern: ((^|,)cat_p_1(,|$))|((^|,)cat_c_2(,|$))\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, map[string]string{"/shoe.html": "replaced", "/shoes.html": "replaced"}, apiResults(t, res.Body))

	res = mustRaw(t, p, "PURGE", "PURGE / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Magento-Tags-Pattern: .*\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Len(t, apiResults(t, res.Body), 3)

	res = mustRaw(t, p, "PURGE", "PURGE / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Magento-Tags-Pattern: cat_p_[0-9]+\r\n\r\n")
	assert.Equal(t, http.StatusBadRequest, res.Status)
	assert.Contains(t, res.Body, "cat_p_[0-9]+")
	o.onlyGETs(t)
}

// X-Purge-Mode and PURGE_MODE choose the mode; the answer is the API's.
func TestPurgeModeHeaderAndDefault(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, map[string]string{"PURGE_MODE": "purge"})
	warmPages(t, p, o, "example.com", "/a", "/b")

	res := mustRaw(t, p, "PURGE", "PURGE /a HTTP/1.1\r\nHost: example.com\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, map[string]string{"/a": "purged"}, apiResults(t, res.Body))
	assertNotStored(t, p, o.testOrigin, "/a", "Host", "example.com")

	res = mustRaw(t, p, "PURGE", "PURGE /b HTTP/1.1\r\nHost: example.com\r\nX-Purge-Mode: soft\r\n\r\n")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, map[string]string{"/b": "marked"}, apiResults(t, res.Body))
	assert.Equal(t, "STALE", p.get("/b", "Host", "example.com").Header.Get("X-Cache"))

	res = mustRaw(t, p, "PURGE", "PURGE /b HTTP/1.1\r\nHost: example.com\r\nX-Purge-Mode: ban\r\n\r\n")
	assert.Equal(t, http.StatusBadRequest, res.Status)
}

// A refetch that fails keeps the page and answers 502, as the API does.
func TestPurgeFailureIsTheAPIs502(t *testing.T) {
	var fail atomic.Bool
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<p>good</p>")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/a")
	fail.Store(true)
	res := mustRaw(t, p, "PURGE", "PURGE /a HTTP/1.1\r\nHost: "+hostPort(p.URL)+"\r\n\r\n")
	require.Equal(t, http.StatusBadGateway, res.Status)
	got := decodeAPI(t, answer{Body: res.Body, Header: res.Header})
	assert.False(t, got.Revalidated)
	require.Len(t, got.Results, 1)
	assert.Equal(t, "origin answered 503; previous version kept", got.Results[0].Error)
	assert.Equal(t, "<p>good</p>", p.get("/a").Body)
}

// Outside PURGE_ALLOW, the secret is needed; a wrong one counts towards the
// API's lockout.
func TestPurgeNeedsAllowedPeerOrSecret(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, map[string]string{"PURGE_ALLOW": "off"})
	warmPages(t, p, o, "example.com", "/a")

	res := mustRaw(t, p, "PURGE", "PURGE /a HTTP/1.1\r\nHost: example.com\r\n\r\n")
	assert.Equal(t, http.StatusForbidden, res.Status)
	var m struct{ Message string }
	require.NoError(t, json.Unmarshal([]byte(res.Body), &m), res.Body)
	assert.Contains(t, m.Message, "PURGE_ALLOW")

	res = mustRaw(t, p, "PURGE", "PURGE /a HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer "+apiSecret+"\r\n\r\n")
	assert.Equal(t, http.StatusOK, res.Status, res.Body)

	for range 11 {
		res = mustRaw(t, p, "BAN", "BAN / HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer wrong-secret-000000\r\nCache-Tags: x\r\n\r\n")
		assert.Equal(t, http.StatusForbidden, res.Status)
	}
	// The 11th failure locked the address out of the API and of PURGE.
	assert.Equal(t, http.StatusTooManyRequests, p.revalidate("path=/a").Status)
	res = mustRaw(t, p, "PURGE", "PURGE /a HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer "+apiSecret+"\r\n\r\n")
	assert.Equal(t, http.StatusTooManyRequests, res.Status)
	o.onlyGETs(t)
}

// The default PURGE_ALLOW lets loopback in; an address outside it (a
// trusted proxy vouching for a visitor) is refused.
func TestPurgeAllowIsTheClientAfterTrustedProxies(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, map[string]string{"TRUSTED_PROXIES": "127.0.0.1"})
	warmPages(t, p, o, "example.com", "/a")
	res := mustRaw(t, p, "PURGE", "PURGE /a HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n")
	assert.Equal(t, http.StatusForbidden, res.Status, res.Body)
	res = mustRaw(t, p, "PURGE", "PURGE /a HTTP/1.1\r\nHost: example.com\r\n\r\n")
	assert.Equal(t, http.StatusOK, res.Status, res.Body)
}

// A pattern that is not RE2 is a 400 naming it; a BAN without tags too.
func TestPurgeBadInput(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, nil)
	res := mustRaw(t, p, "PURGE", "PURGE /blog/(.* HTTP/1.1\r\nHost: example.com\r\nX-Purge-Method: regex\r\n\r\n")
	assert.Equal(t, http.StatusBadRequest, res.Status)
	assert.Contains(t, res.Body, `/blog/(.*`)
	res = mustRaw(t, p, "BAN", "BAN / HTTP/1.1\r\nHost: example.com\r\n\r\n")
	assert.Equal(t, http.StatusBadRequest, res.Status)
	assert.Contains(t, res.Body, "Cache-Tags")
	assert.Zero(t, o.hits.Load())
}

// A pattern over more than 100 stored pages is a job, as tags are.
func TestPurgeRegexOverManyPagesIsAJob(t *testing.T) {
	o := newCMSOrigin(t, nil, "")
	p := startProxy(t, o.URL, quietLogs)
	for i := range 101 {
		p.get(fmt.Sprintf("/p/%d", i), "Host", "example.com")
	}
	res := mustRaw(t, p, "PURGE", "PURGE /.* HTTP/1.1\r\nHost: example.com\r\nX-Purge-Method: regex\r\nX-Purge-Mode: purge\r\n\r\n")
	require.Equal(t, http.StatusAccepted, res.Status, res.Body)
	var job struct{ Job string }
	require.NoError(t, json.Unmarshal([]byte(res.Body), &job))
	require.NotEmpty(t, job.Job)
	require.Eventually(t, func() bool {
		got := p.get("/api/revalidate/jobs/"+job.Job, "Authorization", "Bearer "+apiSecret)
		return strings.Contains(got.Body, `"done":true`) && strings.Contains(got.Body, `"completed":101`)
	}, 10*time.Second, 20*time.Millisecond)
}
