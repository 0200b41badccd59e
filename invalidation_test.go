package main

// Unsafe methods pass through with their bodies and are never stored; a
// successful one invalidates the stored page of its URL and of its
// Location, as UNSAFE_INVALIDATION says: marked stale (soft, the default),
// removed (strict), or left alone (off).

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// strictInvalidation is the env of an instance that removes what an unsafe
// request invalidates, as RFC 9111 §4.4 says.
var strictInvalidation = map[string]string{"UNSAFE_INVALIDATION": "strict"}

// UNSAFE_INVALIDATION=strict: a 2xx or 3xx answer to an unsafe method
// (POST, PUT, DELETE, PATCH) removes every variant of the stored page of
// its URL; a failed unsafe request, and a safe one, change nothing stored.
func TestSuccessfulUnsafeRequestInvalidatesThePage(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a POST to a stored URL", postToStoredURLInvalidatesIt},
		{"a failed or safe method keeps the page", failedOrSafeMethodKeepsStoredPage},
		{"every unsafe method and status", unsafeMethodInvalidatesStoredPage},
	} {
		t.Run(tc.name, tc.run)
	}
}

// A 2xx answer to POST invalidates the stored page of its URL.
func postToStoredURLInvalidatesIt(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			version.Add(1)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, "version %d", version.Load())
	})
	p := startProxy(t, o.URL, strictInvalidation)
	p.get("/doc?id=7")
	assert.Equal(t, "version 1", assertStored(t, p, o, "/doc?id=7").Body)

	post := p.request(http.MethodPost, "/doc?id=7&utm_source=x", strings.NewReader("edit"))
	assert.Equal(t, http.StatusNoContent, post.Status)
	assert.Equal(t, "BYPASS", post.Header.Get("X-Cache"))
	got := assertNotStored(t, p, o, "/doc?id=7")
	assert.Equal(t, "version 2", got.Body)
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
}

// A failed unsafe request, and a safe one, change nothing stored.
func failedOrSafeMethodKeepsStoredPage(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusInternalServerError)
		case http.MethodOptions:
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, "page")
		}
	})
	p := startProxy(t, o.URL, nil)
	p.get("/k")
	assert.Equal(t, http.StatusInternalServerError, p.request(http.MethodPost, "/k", nil).Status)
	assert.Equal(t, http.StatusNoContent, p.request(http.MethodOptions, "/k", nil).Status)
	assertStored(t, p, o, "/k")
}

// RFC 9111 §4.4: a 2xx or 3xx answer to POST, PUT, DELETE or PATCH
// invalidates every variant of the stored page of its URL, the query
// normalised as for the key; a 4xx or 5xx answer, and a safe method,
// change nothing.
func unsafeMethodInvalidatesStoredPage(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, editableOrigin(&version))
	p := startProxy(t, o.URL, strictInvalidation)
	const host = "www.example.com"
	store := func(path string) {
		t.Helper()
		for _, lang := range []string{"en", "de"} {
			p.get(path, "Host", host, "X-Lang", lang)
			assertStored(t, p, o, path, "Host", host, "X-Lang", lang)
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		for _, status := range []int{200, 201, 202, 204, 301, 303, 307} {
			path := fmt.Sprintf("/inv/%s/%d?b=2&a=1", strings.ToLower(method), status)
			store(path)
			got := p.request(method, path+"&utm_source=newsletter", strings.NewReader("edit"),
				"Host", host, "X-Answer-Status", strconv.Itoa(status))
			require.Equal(t, status, got.Status)
			for _, lang := range []string{"en", "de"} {
				after := assertNotStored(t, p, o, path, "Host", host, "X-Lang", lang)
				assert.Contains(t, after.Body, fmt.Sprintf(" %s version %d<", lang, version.Load()), "%s answered %d", method, status)
			}
		}
		for _, status := range []int{400, 403, 404, 409, 500, 503} {
			path := fmt.Sprintf("/keep/%s/%d", strings.ToLower(method), status)
			store(path)
			got := p.request(method, path, strings.NewReader("edit"), "Host", host, "X-Answer-Status", strconv.Itoa(status))
			require.Equal(t, status, got.Status)
			assertStored(t, p, o, path, "Host", host, "X-Lang", "en")
		}
	}
	for _, method := range []string{http.MethodOptions, "TRACE"} {
		store("/safe")
		p.request(method, "/safe", nil, "Host", host)
		assertStored(t, p, o, "/safe", "Host", host, "X-Lang", "de")
	}
	// Another host's page of the same path is another key: untouched.
	store("/inv/hosts")
	p.get("/inv/hosts", "Host", "other.example", "X-Lang", "en")
	p.request(http.MethodPost, "/inv/hosts", nil, "Host", "other.example")
	assertStored(t, p, o, "/inv/hosts", "Host", host, "X-Lang", "en")
	assertNotStored(t, p, o, "/inv/hosts", "Host", "other.example", "X-Lang", "en")
}

// UNSAFE_INVALIDATION=strict: the Location and Content-Location of a
// successful unsafe answer are removed too, every variant, when they name
// the same host, and never when they name another.
func TestSuccessfulUnsafeRequestInvalidatesItsLocationOnTheSameHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Location, every variant", unsafeMethodInvalidatesItsLocation},
		{"same host only", unsafeMethodInvalidatesLocationOnSameHostOnly},
	} {
		t.Run(tc.name, tc.run)
	}
}

// RFC 9111 §4.4: the Location of a successful unsafe request is invalidated
// too, every variant of it.
func unsafeMethodInvalidatesItsLocation(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			version.Add(1)
			w.Header().Set("Location", "/article")
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(w, "version %d %s", version.Load(), r.Header.Get("Accept-Language"))
	})
	p := startProxy(t, o.URL, strictInvalidation)
	p.get("/article", "Accept-Language", "en")
	p.get("/article", "Accept-Language", "de")
	assertStored(t, p, o, "/article", "Accept-Language", "en")

	p.request(http.MethodPut, "/edit", strings.NewReader("x"))
	assert.Equal(t, "version 2 en", assertNotStored(t, p, o, "/article", "Accept-Language", "en").Body)
	assert.Equal(t, "version 2 de", assertNotStored(t, p, o, "/article", "Accept-Language", "de").Body)
}

// RFC 9111 §4.4: the Location and Content-Location of a successful unsafe
// answer are invalidated too when they name the same host, and never when
// they name another.
func unsafeMethodInvalidatesLocationOnSameHostOnly(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, editableOrigin(&version))
	p := startProxy(t, o.URL, strictInvalidation)
	const host = "www.example.com"
	for _, tc := range []struct {
		name, header, location, stored string
		invalidated                    bool
	}{
		{"relative Location", "X-Answer-Location", "/loc/a", "/loc/a", true},
		{"dot-relative Location", "X-Answer-Location", "../loc/b?x=1", "/loc/b?x=1", true},
		{"absolute Location", "X-Answer-Location", "http://www.example.com/loc/c", "/loc/c", true},
		{"absolute Location, upper case and default port", "X-Answer-Location", "http://WWW.EXAMPLE.COM:80/loc/d", "/loc/d", true},
		{"Content-Location", "X-Answer-Content-Location", "/loc/e", "/loc/e", true},
		{"absolute Location with no path", "X-Answer-Location", "http://www.example.com", "/", true},
		{"absolute Location with no path, a query", "X-Answer-Location", "http://www.example.com?x=1", "/?x=1", true},
		{"absolute Content-Location", "X-Answer-Content-Location", "http://www.example.com/loc/f", "/loc/f", true},
		{"Location on another host", "X-Answer-Location", "http://other.example/loc/g", "/loc/g", false},
		{"scheme-relative Location on another host", "X-Answer-Location", "//other.example/loc/h", "/loc/h", false},
		{"Location on another port", "X-Answer-Location", "http://www.example.com:8081/loc/i", "/loc/i", false},
		{"Content-Location on another host", "X-Answer-Content-Location", "https://other.example/loc/j", "/loc/j", false},
		{"Location on a subdomain", "X-Answer-Location", "http://sub.www.example.com/loc/k", "/loc/k", false},
		{"Location with userinfo naming the host", "X-Answer-Location", "http://www.example.com@other.example/loc/l", "/loc/l", false},
	} {
		p.get(tc.stored, "Host", host, "X-Lang", "en")
		assertStored(t, p, o, tc.stored, "Host", host, "X-Lang", "en")
		got := p.request(http.MethodPost, "/loc/form", strings.NewReader("x"),
			"Host", host, "X-Answer-Status", "303", tc.header, tc.location)
		require.Equal(t, http.StatusSeeOther, got.Status, tc.name)
		if tc.invalidated {
			assertNotStored(t, p, o, tc.stored, "Host", host, "X-Lang", "en")
		} else {
			assertStored(t, p, o, tc.stored, "Host", host, "X-Lang", "en")
		}
	}
}

// Other methods pass through with their bodies intact and are never stored.
func TestPostPassesThroughWithBodyAndIsNeverStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d %x", r.Method, len(b), b[:min(len(b), 8)])
	})
	p := startProxy(t, o.URL, nil)
	payload := bytes.Repeat([]byte("form=data&"), 10_000)
	for range 2 {
		got := p.request(http.MethodPost, "/submit", bytes.NewReader(payload), "Content-Type", "application/x-www-form-urlencoded")
		assert.Equal(t, fmt.Sprintf("POST %d %x", len(payload), payload[:8]), got.Body)
		assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		got := p.request(m, "/submit", nil)
		assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"), m)
		assert.True(t, strings.HasPrefix(got.Body, m+" "), m)
	}
	assert.EqualValues(t, 6, o.hits.Load())
}

// UNSAFE_INVALIDATION=soft, the default: a successful unsafe request marks
// every variant of the stored page of its URL, and of its Location on the
// same host, stale. The next visitor gets the stored page as STALE, at
// once, and one background refetch replaces it; a failed unsafe request
// marks nothing.
func TestSoftInvalidationServesStaleWhileOneRefetchReplaces(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, editableOrigin(&version))
	p := startProxy(t, o.URL, nil)
	const host = "www.example.com"
	paths := []string{"/doc?id=7", "/article"}
	for _, path := range paths {
		for _, lang := range []string{"en", "de"} {
			p.get(path, "Host", host, "X-Lang", lang)
			assertStored(t, p, o, path, "Host", host, "X-Lang", lang)
		}
	}

	failed := p.request(http.MethodPost, "/doc?id=7", strings.NewReader("edit"),
		"Host", host, "X-Answer-Status", "500")
	require.Equal(t, http.StatusInternalServerError, failed.Status)
	assertStored(t, p, o, "/doc?id=7", "Host", host, "X-Lang", "en")

	post := p.request(http.MethodPost, "/doc?id=7&utm_source=x", strings.NewReader("edit"),
		"Host", host, "X-Answer-Status", "303", "X-Answer-Location", "/article")
	require.Equal(t, http.StatusSeeOther, post.Status)
	assert.Equal(t, "BYPASS", post.Header.Get("X-Cache"))
	edited := version.Load()
	for _, path := range paths {
		for _, lang := range []string{"en", "de"} {
			stale := p.get(path, "Host", host, "X-Lang", lang)
			assert.Equal(t, "STALE", stale.Header.Get("X-Cache"), "%s %s", path, lang)
			assert.Equal(t, "isrproxy; hit; fwd=stale", stale.Header.Get("Cache-Status"), "%s %s", path, lang)
			assert.Contains(t, stale.Body, fmt.Sprintf(" %s version %d<", lang, edited-2), "the stored page, at once")
			want := fmt.Sprintf(" %s version %d<", lang, edited)
			require.Eventually(t, func() bool {
				got := p.get(path, "Host", host, "X-Lang", lang)
				return got.Header.Get("X-Cache") == "HIT" && strings.Contains(got.Body, want)
			}, 5*time.Second, 5*time.Millisecond, "%s %s: one background refetch replaces it", path, lang)
		}
	}
	// Four fills, two POSTs, then one refetch per variant of each page.
	assert.EqualValues(t, 4+2+4, o.hits.Load())
}

// UNSAFE_INVALIDATION=soft: anyone may POST to a stored page as often as
// they like; no visitor waits for the origin, and the origin gets at most
// one refetch of the page at a time, whatever the rate of POSTs.
func TestSoftInvalidationNeverMakesVisitorsWaitNorFloodsTheOrigin(t *testing.T) {
	const originDelay = 500 * time.Millisecond
	var gets, inFlight, maxInFlight atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		gets.Add(1)
		time.Sleep(originDelay) // a slow CMS
		fmt.Fprintf(w, "<p>page %d</p>", gets.Load())
	})
	p := startProxy(t, o.URL, quietLogs)
	p.get("/")
	assertStored(t, p, o, "/")

	start := time.Now()
	var posts, visitors sync.WaitGroup
	var stop atomic.Bool
	var misses, slow, answered atomic.Int64
	for range 10 {
		posts.Go(func() {
			for range 10 {
				req, _ := http.NewRequest(http.MethodPost, p.URL+"/", strings.NewReader("comment=spam"))
				if resp, err := p.client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		})
	}
	for range 4 {
		visitors.Go(func() {
			for !stop.Load() {
				began := time.Now()
				got, err := fetch(p.client, p.URL+"/")
				if err != nil || (got.Header.Get("X-Cache") != "HIT" && got.Header.Get("X-Cache") != "STALE") {
					misses.Add(1)
				}
				if time.Since(began) >= originDelay {
					slow.Add(1)
				}
				answered.Add(1)
			}
		})
	}
	waitAll(t, &posts)
	elapsed := time.Since(start)
	stop.Store(true)
	waitAll(t, &visitors)
	require.Eventually(t, func() bool { return inFlight.Load() == 0 && p.get("/").Header.Get("X-Cache") == "HIT" },
		5*time.Second, 10*time.Millisecond)

	assert.Positive(t, answered.Load())
	assert.Zero(t, misses.Load(), "every visitor is answered from memory, HIT or STALE")
	assert.Zero(t, slow.Load(), "no visitor waits for the origin")
	assert.EqualValues(t, 1, maxInFlight.Load(), "one refetch at a time")
	refetches := gets.Load() - 1
	assert.LessOrEqual(t, refetches, 3+int64(elapsed/originDelay),
		"100 POSTs in %s: one refetch at a time, each %s", elapsed, originDelay)
	t.Logf("100 POSTs in %s: %d refetches, %d visitor answers", elapsed, refetches, answered.Load())
}

// UNSAFE_INVALIDATION=off: a successful unsafe request changes nothing
// stored, neither its URL nor its Location.
func TestUnsafeInvalidationOffKeepsThePages(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, editableOrigin(&version))
	p := startProxy(t, o.URL, map[string]string{"UNSAFE_INVALIDATION": "off"})
	for _, path := range []string{"/doc", "/article"} {
		p.get(path, "X-Lang", "en")
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		got := p.request(method, "/doc", strings.NewReader("edit"), "X-Answer-Status", "303", "X-Answer-Location", "/article")
		require.Equal(t, http.StatusSeeOther, got.Status, method)
		assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"), method)
	}
	for _, path := range []string{"/doc", "/article"} {
		got := assertStored(t, p, o, path, "X-Lang", "en")
		assert.Contains(t, got.Body, " en version 0<", path)
	}
}
