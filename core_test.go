package main

// End-to-end tests of SPEC.md §1 promises 1, 6, 7, 8, 9 and 10 and of §3
// and §4, over real TCP against scripted httptest origins. Helpers of this
// file are prefixed "core" so that they do not collide with other test files
// of package main.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------- helpers

// ---------------------------------------------------------------- promise 7

// Promise 7: a response that turns out not to be storable is given only to
// the visitor whose request fetched it; the waiters are MISS and go to the
// origin themselves, and never see the fetcher's Set-Cookie.
func TestUnstorableResponseGoesOnlyToItsFetcher(t *testing.T) {
	gate := newGate()
	var seq atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		i := seq.Add(1)
		if i == 1 {
			if !gate.wait(r) {
				return
			}
			w.Header().Set("Set-Cookie", "sid=visitor-1; HttpOnly")
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "page of origin request %d", i)
	})
	p := startProxy(t, o.URL, nil)
	gate.openAtCleanup(t)

	const n = 8
	wait := launchGets(t, p, "/account", n)
	waitForRequests(t, p, n) // the fetcher at the origin, n-1 waiting on it
	require.EqualValues(t, 1, o.hits.Load(), "the waiters must queue behind one fetch")
	gate.open()
	answers := wait()

	assert.EqualValues(t, n, o.hits.Load(), "each waiter goes to the origin itself")
	withCookie := 0
	bodies := map[string]bool{}
	for _, a := range answers {
		assert.Equal(t, http.StatusOK, a.Status)
		assert.Equal(t, "MISS", a.Header.Get("X-Cache"))
		assert.Equal(t, "isrproxy; fwd=miss", a.Header.Get("Cache-Status"))
		assert.False(t, bodies[a.Body], "two visitors got the same response %q", a.Body)
		bodies[a.Body] = true
		if a.Header.Get("Set-Cookie") != "" {
			withCookie++
			assert.Equal(t, "sid=visitor-1; HttpOnly", a.Header.Get("Set-Cookie"))
			assert.Equal(t, "page of origin request 1", a.Body, "Set-Cookie only with its own response")
		} else {
			assert.NotEqual(t, "page of origin request 1", a.Body, "a waiter got the fetcher's response")
		}
	}
	assert.Equal(t, 1, withCookie, "only the fetcher gets the Set-Cookie")
}

// Promise 7: a key whose response was not storable passes straight through
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

// Promise 4 counts an origin 5xx as a failed fetch, and a failed fetch
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

// Promise 7: the pass-through mark ends after PASS_TTL; the key fills and is
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

// ---------------------------------------------------------------- promise 6

func TestSetCookieResponseIsNeverStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Set-Cookie", "sid=abc")
		io.WriteString(w, "<p>welcome back</p>")
	})
	p := startProxy(t, o.URL, nil)

	first := p.get("/login")
	assert.Equal(t, "MISS", first.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=miss", first.Header.Get("Cache-Status"))
	assert.Equal(t, "sid=abc", first.Header.Get("Set-Cookie"), "the fetcher gets its own cookie")
	assertNotStored(t, p, o, "/login")
	assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
}

func TestPrivateOrNoStoreResponseIsNeverStored(t *testing.T) {
	spellings := [][]string{
		{"private"},
		{"no-store"},
		{"Private"},
		{"NO-STORE"},
		{"public, max-age=60, private"},
		{"max-age=0,no-store"},
		{`private="Set-Cookie"`},
		{"  no-store  "},
		{"max-age=60", "no-store"}, // two lines
		{"s-maxage=60", "PRIVATE"}, // two lines
	}
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/cc/"))
		for _, v := range spellings[i] {
			w.Header().Add("Cache-Control", v)
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<p>your account</p>")
	})
	p := startProxy(t, o.URL, nil)
	for i, cc := range spellings {
		path := fmt.Sprintf("/cc/%d", i)
		first := p.get(path)
		assert.Equal(t, "isrproxy; fwd=miss", first.Header.Get("Cache-Status"), "Cache-Control %q", cc)
		assert.Equal(t, "<p>your account</p>", first.Body)
		assertNotStored(t, p, o, path)
	}
	assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
}

// Promise 6: a request with Authorization passes through with its
// credentials, even when the page is stored, and never fills.
func TestAuthorizationRequestBypassesAndIsNeverStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "for %q", r.Header.Get("Authorization"))
	})
	p := startProxy(t, o.URL, nil)

	alice := p.get("/me", "Authorization", "Bearer alice")
	assert.Equal(t, "BYPASS", alice.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=bypass", alice.Header.Get("Cache-Status"))
	assert.Equal(t, `for "Bearer alice"`, alice.Body)
	assert.Equal(t, "Bearer alice", o.lastRequest().Header.Get("Authorization"))

	anon := assertNotStored(t, p, o, "/me") // alice's answer was not stored
	assert.Equal(t, `for ""`, anon.Body)
	assertStored(t, p, o, "/me")

	bob := p.get("/me", "Authorization", "Bearer bob") // stored, but credentials bypass
	assert.Equal(t, "BYPASS", bob.Header.Get("X-Cache"))
	assert.Equal(t, `for "Bearer bob"`, bob.Body)
	assert.EqualValues(t, 3, o.hits.Load())
}

// Promise 6: the default BYPASS_COOKIES patterns make a request pass
// through with its cookies intact, stored or not, and it never fills.
func TestBypassCookieRequestPassesThroughAndIsNeverStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "cookie=%q", r.Header.Get("Cookie"))
	})
	p := startProxy(t, o.URL, nil)
	for i, name := range []string{"wordpress_logged_in_abc", "wp-postpass_123", "SESSabc", "SSESS9f"} {
		cookie := "_ga=GA1.1; " + name + "=editor"
		fresh := fmt.Sprintf("/fresh/%d", i)
		got := p.get(fresh, "Cookie", cookie)
		assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"), name)
		assert.Equal(t, "isrproxy; fwd=bypass", got.Header.Get("Cache-Status"), name)
		assert.Equal(t, fmt.Sprintf("cookie=%q", cookie), got.Body, "cookies pass intact")
		assertNotStored(t, p, o, fresh) // the editor's answer was not stored

		stored := fmt.Sprintf("/stored/%d", i)
		p.get(stored)
		got = p.get(stored, "Cookie", cookie)
		assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"), "%s on a stored page", name)
		assert.Equal(t, fmt.Sprintf("cookie=%q", cookie), got.Body)
		assert.Equal(t, `cookie=""`, assertStored(t, p, o, stored).Body)
	}
}

// A cookie that matches no BYPASS_COOKIES pattern is ignored: the page is
// served from memory and the fill does not carry it.
func TestOtherCookiesAreIgnored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "cookie=%q", r.Header.Get("Cookie"))
	})
	p := startProxy(t, o.URL, nil)
	first := p.get("/a", "Cookie", "_ga=GA1.1; theme=dark; wordpress_test_cookie=1")
	assert.Equal(t, "isrproxy; fwd=miss; stored", first.Header.Get("Cache-Status"))
	assert.Equal(t, `cookie=""`, first.Body)
	assertStored(t, p, o, "/a", "Cookie", "theme=light")
}

// A Range request passes through, stored page or not, and never fills.
func TestRangeRequestBypassesAndIsNeverStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if rg := r.Header.Get("Range"); rg != "" {
			w.Header().Set("Content-Range", "bytes 0-1/10")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "01")
			return
		}
		io.WriteString(w, "0123456789")
	})
	p := startProxy(t, o.URL, map[string]string{"CACHE_STATUSES": "200,206"})

	got := p.get("/file", "Range", "bytes=0-1")
	assert.Equal(t, http.StatusPartialContent, got.Status)
	assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
	assert.Equal(t, "01", got.Body)
	assert.Equal(t, "bytes=0-1", o.lastRequest().Header.Get("Range"))
	assert.Equal(t, "0123456789", assertNotStored(t, p, o, "/file").Body)

	got = p.get("/file", "Range", "bytes=0-1") // now stored
	assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
	assert.Equal(t, "01", got.Body)
	assert.Equal(t, "0123456789", assertStored(t, p, o, "/file").Body)
}

// Promise 6 and §3: a fill carries no Cookie, no Authorization, no Range,
// no conditional header and no override header, and asks for gzip only.
func TestFillRequestIsAnonymousAndAsksForGzipOnly(t *testing.T) {
	o := newTestOrigin(t, page("<p>hello</p>"))
	p := startProxy(t, o.URL, nil)
	got := p.get("/f",
		"Cookie", "_ga=GA1.1; theme=dark",
		"Accept-Encoding", "br, deflate, zstd",
		"If-None-Match", `"abc"`,
		"If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT",
		"If-Match", `"x"`,
		"If-Unmodified-Since", "Mon, 01 Jan 2024 00:00:00 GMT",
		"Proxy-Authorization", "Basic eDp5",
		"X-Custom", "kept",
	)
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
	r := o.lastRequest()
	require.NotNil(t, r)
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Equal(t, "gzip", r.Header.Get("Accept-Encoding"))
	for _, name := range []string{"Cookie", "Authorization", "Proxy-Authorization", "Range",
		"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		assert.Empty(t, r.Header.Values(name), "fill must not carry %s", name)
	}
}

// A fill carries the visitor's User-Agent, and none when the visitor sent
// none: not Go's own, which would tell the origin nothing true.
func TestFillRequestCarriesTheVisitorsUserAgentOnly(t *testing.T) {
	o := newTestOrigin(t, page("<p>ua</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/ua-none", "User-Agent", "") // Go's client then sends no User-Agent
	assert.Empty(t, o.lastRequest().Header.Values("User-Agent"))
	p.get("/ua-set", "User-Agent", "Mozilla/5.0 (test)")
	assert.Equal(t, "Mozilla/5.0 (test)", o.lastRequest().Header.Get("User-Agent"))
}

// ---------------------------------------------------------------- compression

// An origin that sends gzip itself: its bytes are stored as they are, handed
// to a gzip client, and decompressed for a client without gzip.
func TestOriginGzipIsDecompressedForClientWithoutGzip(t *testing.T) {
	plain := strings.Repeat("<p>already compressed by the origin</p>", 50)
	zipped := gzipped(plain)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			h.Set("Vary", "Accept-Encoding")
			w.Write(zipped)
			return
		}
		io.WriteString(w, plain)
	})
	p := startProxy(t, o.URL, nil)

	miss := p.get("/z") // the filling MISS, without gzip
	assert.Equal(t, "isrproxy; fwd=miss; stored", miss.Header.Get("Cache-Status"))
	assert.Empty(t, miss.Header.Get("Content-Encoding"))
	assert.Equal(t, plain, miss.Body)

	for _, ae := range []string{"", "identity", "gzip;q=0", "br", "deflate, gzip;q=0.0"} {
		got := assertStored(t, p, o, "/z", "Accept-Encoding", ae)
		assert.Empty(t, got.Header.Get("Content-Encoding"), "Accept-Encoding %q", ae)
		assert.Equal(t, plain, got.Body, "Accept-Encoding %q", ae)
		assert.Equal(t, strconv.Itoa(len(plain)), got.Header.Get("Content-Length"), "Accept-Encoding %q", ae)
	}
	for _, ae := range []string{"gzip", "br, gzip;q=0.5", "GZIP"} {
		got := assertStored(t, p, o, "/z", "Accept-Encoding", ae)
		assert.Equal(t, "gzip", got.Header.Get("Content-Encoding"), "Accept-Encoding %q", ae)
		assert.Equal(t, string(zipped), got.Body, "the origin's gzip bytes as they are")
		assert.Contains(t, got.Header.Get("Vary"), "Accept-Encoding")
	}
}

// A text body stored compressed: its strong ETag becomes weak, and Vary
// names Accept-Encoding merged into the origin's own Vary.
func TestCompressedStoredPageHasWeakETagAndVary(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, strings.Repeat("<p>text</p>", 100))
	})
	p := startProxy(t, o.URL, nil)
	p.get("/t")
	for _, ae := range []string{"gzip", ""} {
		got := assertStored(t, p, o, "/t", "Accept-Encoding", ae)
		assert.Equal(t, `W/"v1"`, got.Header.Get("ETag"), "Accept-Encoding %q", ae)
		vary := strings.Join(got.Header.Values("Vary"), ",")
		assert.Contains(t, vary, "Accept-Language")
		assert.Contains(t, vary, "Accept-Encoding")
	}
}

// A body stored as received (a type outside COMPRESS_TYPES) keeps the
// origin's headers exactly: a strong ETag, no added Vary.
func TestPageStoredAsReceivedKeepsOriginHeaders(t *testing.T) {
	body := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 200)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("ETag", `"img1"`)
		w.Header().Set("X-Origin-Header", "kept")
		w.Write(body)
	})
	p := startProxy(t, o.URL, nil)
	p.get("/i.png")
	got := assertStored(t, p, o, "/i.png", "Accept-Encoding", "gzip")
	assert.Equal(t, string(body), got.Body)
	assert.Equal(t, `"img1"`, got.Header.Get("ETag"))
	assert.Equal(t, "kept", got.Header.Get("X-Origin-Header"))
	assert.Empty(t, got.Header.Get("Vary"))
	assert.Empty(t, got.Header.Get("Content-Encoding"))
	assert.Equal(t, strconv.Itoa(len(body)), got.Header.Get("Content-Length"))
}

// Hop-by-hop response headers, and those the origin names in Connection,
// are not stored.
func TestHopByHopResponseHeadersAreNotStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Hop-Secret")
		w.Header().Set("X-Hop-Secret", "per-connection")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-End-To-End", "kept")
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/h")
	got := assertStored(t, p, o, "/h")
	assert.Empty(t, got.Header.Get("X-Hop-Secret"))
	assert.Empty(t, got.Header.Get("Keep-Alive"))
	assert.Equal(t, "kept", got.Header.Get("X-End-To-End"))
}

// ---------------------------------------------------------------- failures

// A body cut short (Content-Length larger than sent, or a chunked body
// without its last chunk) is never stored and answers 502.
func TestTruncatedOriginBodyIsNeverStoredAndAnswers502(t *testing.T) {
	for name, raw := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n<p>partial page",
		"chunked":        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n<p>partial page \r\n",
	} {
		t.Run(name, func(t *testing.T) {
			o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if !assert.NoError(t, err) {
					return
				}
				buf.WriteString(raw)
				buf.Flush()
				conn.Close()
			})
			p := startProxy(t, o.URL, nil)
			for i := range 2 {
				got := p.get("/cut")
				assert.Equal(t, http.StatusBadGateway, got.Status)
				assert.NotContains(t, got.Body, "partial page")
				assert.EqualValues(t, i+1, o.hits.Load(), "never stored: each request tries the origin")
			}
			assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
		})
	}
}

// Promise 7: only a complete, unstorable response marks a key pass-through;
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

// §3: an origin that cannot be reached answers 502 on a miss.
func TestOriginDownAnswers502OnMiss(t *testing.T) {
	o := newTestOrigin(t, page("never"))
	o.Close() // nothing listens on ORIGIN_URL any more
	p := startProxy(t, o.URL, nil)
	got := p.get("/down")
	assert.Equal(t, http.StatusBadGateway, got.Status)
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"), "a failed fill is a miss")
	assert.Equal(t, "isrproxy; fwd=miss", got.Header.Get("Cache-Status"))
	bypass := p.get("/down", "Authorization", "Bearer x")
	assert.Equal(t, http.StatusBadGateway, bypass.Status, "bypass too")
	assert.Equal(t, "BYPASS", bypass.Header.Get("X-Cache"))
}

// §3: an origin slower than ORIGIN_TIMEOUT answers 504, on a fill and on a
// pass-through; the failure stores nothing and marks nothing.
func TestOriginTimeoutAnswers504(t *testing.T) {
	gate := newGate()
	var slow atomic.Bool
	slow.Store(true)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() && !gate.wait(r) {
			return
		}
		io.WriteString(w, "late page")
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_TIMEOUT": "200ms"})
	gate.openAtCleanup(t)

	got := p.get("/slow")
	assert.Equal(t, http.StatusGatewayTimeout, got.Status)
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	got = p.get("/slow", "Authorization", "Bearer x")
	assert.Equal(t, http.StatusGatewayTimeout, got.Status, "pass-through")

	slow.Store(false)
	got = p.get("/slow")
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"), "a timeout marks no pass-through")
}

// ---------------------------------------------------------------- promise 9

// A client's X-Forwarded-* and Forwarded never reach the origin as sent:
// they are set afresh, on fills and pass-throughs, and a Connection header
// naming them cannot strip them.
func TestClientForwardedHeadersNeverReachOrigin(t *testing.T) {
	o := newTestOrigin(t, page("<p>page</p>"))
	p := startProxy(t, o.URL, nil)
	spoof := []string{
		"Host", "www.example.com",
		"X-Forwarded-Host", "evil.example",
		"X-Forwarded-For", "6.6.6.6",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Port", "444",
		"Forwarded", "for=6.6.6.6;host=evil.example;proto=https",
		"Connection", "X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto",
	}
	for _, tc := range []struct {
		name, method string
		extra        []string
	}{
		{"fill", http.MethodGet, nil},
		{"bypass", http.MethodGet, []string{"Authorization", "Bearer x"}},
		{"post", http.MethodPost, nil},
	} {
		p.request(tc.method, "/fwd-"+tc.name, nil, append(append([]string{}, spoof...), tc.extra...)...)
		r := o.lastRequest()
		require.NotNil(t, r)
		assert.Equal(t, "/fwd-"+tc.name, r.URL.Path)
		assert.Equal(t, []string{"www.example.com"}, r.Header.Values("X-Forwarded-Host"), tc.name)
		assert.Equal(t, []string{"127.0.0.1"}, r.Header.Values("X-Forwarded-For"), tc.name)
		assert.Equal(t, []string{"http"}, r.Header.Values("X-Forwarded-Proto"), tc.name)
		assert.Empty(t, r.Header.Values("X-Forwarded-Port"), tc.name)
		assert.Empty(t, r.Header.Values("Forwarded"), tc.name)
	}
}

// An origin that builds absolute links from X-Forwarded-Host cannot be made
// to store a page pointing elsewhere.
func TestForwardedHostCannotPoisonPage(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		host := r.Header.Get("X-Forwarded-Host")
		if host == "" {
			host = r.Host
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<script src="https://%s/app.js"></script>`, host)
	})
	p := startProxy(t, o.URL, nil)
	attack := p.get("/home", "Host", "www.example.com", "X-Forwarded-Host", "evil.example",
		"Forwarded", "host=evil.example")
	assert.NotContains(t, attack.Body, "evil")
	victim := assertStored(t, p, o, "/home", "Host", "www.example.com")
	assert.Equal(t, `<script src="https://www.example.com/app.js"></script>`, victim.Body)
}

// Promise 9: a path beginning with "//" is a path, not an authority: the
// origin receives it as it is and no other host is contacted.
func TestDoubleSlashPathNeverReachesAnotherHost(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	o := newTestOrigin(t, page("origin"))
	p := startProxy(t, o.URL, nil)
	eh := hostPort(evil.URL)
	for _, target := range []string{"//" + eh + "/x", "///" + eh + "/x", "//evil.example/x", "//" + eh + "/x?y=1"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			got := mustRaw(t, p, method, method+" "+target+" HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			assert.Equal(t, http.StatusOK, got.Status, "%s %s", method, target)
			assert.Equal(t, "origin", got.Body, "%s %s", method, target)
			r := o.lastRequest()
			require.NotNil(t, r)
			assert.Equal(t, target, r.RequestURI, "%s %s", method, target)
			assert.Equal(t, "www.example.com", r.Host)
		}
	}
	assert.EqualValues(t, 0, evil.hits.Load(), "nothing may reach another host")
}

// Promise 9: an absolute-form request target names the key's host, never
// the host contacted: the request goes to ORIGIN_URL.
func TestAbsoluteFormTargetNeverReachesAnotherHost(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	o := newTestOrigin(t, page("origin"))
	p := startProxy(t, o.URL, nil)
	eh := hostPort(evil.URL)
	for _, tc := range []struct{ method, target, host string }{
		{"GET", "http://" + eh + "/x", eh},
		{"GET", "http://" + eh + "/x", "www.example.com"},
		{"GET", "https://" + eh + "/x?a=1", eh},
		{"POST", "http://" + eh + "/x", eh},
		{"HEAD", "http://" + eh + "/h", eh},
	} {
		raw := tc.method + " " + tc.target + " HTTP/1.1\r\nHost: " + tc.host + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
		got := mustRaw(t, p, tc.method, raw)
		assert.Equal(t, http.StatusOK, got.Status, "%s %s", tc.method, tc.target)
		if tc.method != http.MethodHead {
			assert.Equal(t, "origin", got.Body)
		}
		r := o.lastRequest()
		require.NotNil(t, r)
		assert.NotContains(t, r.RequestURI, "://", "the origin gets an origin-form target")
		assert.True(t, strings.HasPrefix(r.RequestURI, "/"), r.RequestURI)
	}
	assert.EqualValues(t, 0, evil.hits.Load(), "nothing may reach another host")
}

// Promise 9 and §3: override headers never make the origin serve another
// URL or method on a fill, and never reach another host.
func TestOverrideHeadersNeverReachAnotherHost(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	o := newTestOrigin(t, page("origin"))
	p := startProxy(t, o.URL, nil)
	eh := hostPort(evil.URL)
	overrides := []string{
		"X-Original-URL", "http://" + eh + "/admin",
		"X-Rewrite-URL", "//" + eh + "/admin",
		"X-HTTP-Method-Override", "DELETE",
	}
	got := p.get("/page", overrides...)
	assert.Equal(t, "origin", got.Body)
	r := o.lastRequest()
	require.NotNil(t, r)
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Equal(t, "/page", r.RequestURI)
	for _, name := range []string{"X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override"} {
		assert.Empty(t, r.Header.Values(name), "a fill must not carry %s", name)
	}

	// Pass-through requests may carry them, but still only to the origin.
	p.request(http.MethodPost, "/page", strings.NewReader("x"), overrides...)
	assert.Equal(t, "/page", o.lastRequest().RequestURI)
	p.get("/page", append([]string{"Authorization", "Bearer x"}, overrides...)...)
	assert.Equal(t, "/page", o.lastRequest().RequestURI)
	assert.EqualValues(t, 0, evil.hits.Load(), "nothing may reach another host")
}

// ---------------------------------------------------------------- §3 refusals

// The refusals of §3 answer 400 before anything reaches the origin, and
// change nothing that is stored.
func TestMalformedRequestsAreRefusedBeforeOrigin(t *testing.T) {
	o := newTestOrigin(t, page("<p>stored</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/a") // a stored page that no refusal may change
	const host = "Host: www.example.com\r\n"
	cases := map[string]string{
		"GET with a body":            "GET /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello",
		"HEAD with a body":           "HEAD /a HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabc",
		"GET with a chunked body":    "GET /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"Connection: Host":           "GET /a HTTP/1.1\r\n" + host + "Connection: Host\r\n\r\n",
		"Connection: content-length": "GET /a HTTP/1.1\r\n" + host + "Connection: content-length\r\n\r\n",
		"Connection: TE list":        "GET /a HTTP/1.1\r\n" + host + "Connection: keep-alive, Transfer-Encoding\r\n\r\n",
		"Connection: cookie":         "GET /a HTTP/1.1\r\n" + host + "Cookie: a=1\r\nConnection: cookie\r\n\r\n",
		"Connection: Authorization":  "GET /a HTTP/1.1\r\n" + host + "Connection: Authorization\r\n\r\n",
		"Connection on a POST":       "POST /a HTTP/1.1\r\n" + host + "Content-Length: 0\r\nConnection: Cookie\r\n\r\n",
		"Upgrade: h2c":               "GET /a HTTP/1.1\r\n" + host + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"Upgrade list with h2c":      "GET /a HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket, H2C\r\n\r\n",
		"path %00":                   "GET /a%00b HTTP/1.1\r\n" + host + "\r\n",
		"path %1f":                   "GET /a%1fb HTTP/1.1\r\n" + host + "\r\n",
		"path %1F":                   "GET /a%1Fb HTTP/1.1\r\n" + host + "\r\n",
		"path %0d%0a":                "GET /a%0d%0aSet-Cookie:x=1 HTTP/1.1\r\n" + host + "\r\n",
		"path %7f":                   "GET /a%7fb HTTP/1.1\r\n" + host + "\r\n",
		"path %7F":                   "GET /a%7F HTTP/1.1\r\n" + host + "\r\n",
		"path raw control":           "GET /a\x01b HTTP/1.1\r\n" + host + "\r\n",
		"path raw DEL":               "GET /a\x7fb HTTP/1.1\r\n" + host + "\r\n",
		"path bad escape":            "GET /a%zz HTTP/1.1\r\n" + host + "\r\n",
		"query bad escape":           "GET /a?x=%zz HTTP/1.1\r\n" + host + "\r\n",
		"query short escape":         "GET /a?x=%2 HTTP/1.1\r\n" + host + "\r\n",
		"query bad escape in name":   "GET /a?%g1=1 HTTP/1.1\r\n" + host + "\r\n",
		"ignored param bad escape":   "GET /a?utm_source=%zz HTTP/1.1\r\n" + host + "\r\n",
		"ignored gclid bad escape":   "GET /a?id=1&gclid=%G0 HTTP/1.1\r\n" + host + "\r\n",
		"HEAD query bad escape":      "HEAD /a?x=%% HTTP/1.1\r\n" + host + "\r\n",
	}
	for name, raw := range cases {
		method, _, _ := strings.Cut(raw, " ")
		got := mustRaw(t, p, method, raw)
		assert.Equal(t, http.StatusBadRequest, got.Status, name)
		assert.EqualValues(t, 1, o.hits.Load(), "%s reached the origin", name)
	}
	got := assertStored(t, p, o, "/a")
	assert.Equal(t, "<p>stored</p>", got.Body)
}

// §3: "Content-Length: 0 is no body": such a GET is served normally.
func TestGetWithZeroContentLengthIsServed(t *testing.T) {
	o := newTestOrigin(t, page("<p>ok</p>"))
	p := startProxy(t, o.URL, nil)
	got := mustRaw(t, p, "GET", "GET /z HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "<p>ok</p>", got.Body)
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
}

// §3: WebSocket upgrades pass through to the origin.
func TestWebSocketUpgradePassesThrough(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if !assert.Equal(t, "websocket", strings.ToLower(r.Header.Get("Upgrade"))) {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		buf.Flush()
		line, err := buf.ReadString('\n')
		if err == nil {
			buf.WriteString("echo " + line)
			buf.Flush()
		}
	})
	p := startProxy(t, o.URL, nil)
	conn, err := net.Dial("tcp", hostPort(p.URL))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: www.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	_, err = io.WriteString(conn, "ping\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "echo ping\n", line)
}

// ---------------------------------------------------------------- Vary

// Vary: a stored variant is only served to requests whose Vary header
// values match the request that produced it.
func TestVaryVariantsNeverCross(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(w, "lang=%q", r.Header.Get("Accept-Language"))
	})
	p := startProxy(t, o.URL, nil)
	langs := []string{"en", "de", "fr-CH, fr;q=0.9", ""}
	for _, l := range langs {
		got := p.get("/v", "Accept-Language", l)
		assert.Equal(t, fmt.Sprintf("lang=%q", l), got.Body)
		assert.Equal(t, "MISS", got.Header.Get("X-Cache"), "first request for %q", l)
	}
	for range 2 {
		for _, l := range langs {
			got := assertStored(t, p, o, "/v", "Accept-Language", l)
			assert.Equal(t, fmt.Sprintf("lang=%q", l), got.Body, "Accept-Language %q", l)
		}
	}
	assert.EqualValues(t, len(langs), o.hits.Load())
}

// Vary: concurrent misses for different variants of one key each get their
// own variant, even when they first queue behind one fetch.
func TestVaryVariantsNeverCrossWhileCoalesced(t *testing.T) {
	gate := newGate()
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Language") == "en" && !gate.wait(r) {
			return
		}
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(w, "lang=%s", r.Header.Get("Accept-Language"))
	})
	p := startProxy(t, o.URL, nil)
	gate.openAtCleanup(t)

	waitEn := launchGets(t, p, "/cv", 3, "Accept-Language", "en")
	waitForRequests(t, p, 3)
	waitDe := launchGets(t, p, "/cv", 3, "Accept-Language", "de")
	waitForRequests(t, p, 6)
	gate.open()
	en, de := waitEn(), waitDe()
	for _, a := range en {
		assert.Equal(t, "lang=en", a.Body)
	}
	for _, a := range de {
		assert.Equal(t, "lang=de", a.Body)
	}
	assert.Equal(t, "lang=en", assertStored(t, p, o, "/cv", "Accept-Language", "en").Body)
	assert.Equal(t, "lang=de", assertStored(t, p, o, "/cv", "Accept-Language", "de").Body)
}

// Vary: * is never stored.
func TestVaryStarIsNeverStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "*")
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)
	assert.Equal(t, "isrproxy; fwd=miss", p.get("/star").Header.Get("Cache-Status"))
	assertNotStored(t, p, o, "/star")
}

// An answer that is not stored reaches its visitor as the origin sent it:
// not gzipped on the way, its Vary intact ("Vary: *" above all, which tells
// every cache downstream not to reuse it).
func TestUnstoredAnswerIsNotRecompressed(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/star":
			w.Header().Set("Vary", "*")
		case "/cookie":
			w.Header().Set("Set-Cookie", "s=1")
		}
		io.WriteString(w, strings.Repeat("<p>unstored</p>", 50))
	})
	p := startProxy(t, o.URL, nil)
	for _, path := range []string{"/star", "/cookie"} {
		for _, ae := range []string{"", "gzip"} {
			got := p.get(path+"?ae="+ae, "Accept-Encoding", ae) // a fill each time
			assert.Equal(t, "MISS", got.Header.Get("X-Cache"), path)
			assert.Empty(t, got.Header.Get("Content-Encoding"), "%s gzipped for %q", path, ae)
			assert.Equal(t, strings.Repeat("<p>unstored</p>", 50), got.Body)
		}
	}
	first := p.get("/star?fresh=1", "Accept-Encoding", "gzip")
	assert.Equal(t, "*", first.Header.Get("Vary"), "the filling answer keeps Vary: *")
}

// ---------------------------------------------------------------- §4

// §4: conditional requests are answered 304 from memory.
func TestConditionalRequestsAreAnsweredFromMemory(t *testing.T) {
	const lastMod = "Mon, 01 Jan 2024 10:00:00 GMT"
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", lastMod)
		io.WriteString(w, "<p>page</p>")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/c")
	gate := newGate()
	gate.openAtCleanup(t)
	o.set(func(w http.ResponseWriter, r *http.Request) { gate.wait(r) }) // the origin answers nothing now

	for _, tc := range []struct {
		header []string
		want   int
	}{
		{[]string{"If-None-Match", `"v1"`}, http.StatusNotModified},
		{[]string{"If-None-Match", `W/"v1"`}, http.StatusNotModified},
		{[]string{"If-None-Match", `"x", W/"v1"`}, http.StatusNotModified},
		{[]string{"If-None-Match", `*`}, http.StatusNotModified},
		{[]string{"If-None-Match", `"v1"`, "Accept-Encoding", "gzip"}, http.StatusNotModified},
		{[]string{"If-None-Match", `"v2"`}, http.StatusOK},
		{[]string{"If-Modified-Since", lastMod}, http.StatusNotModified},
		{[]string{"If-Modified-Since", "Tue, 02 Jan 2024 10:00:00 GMT"}, http.StatusNotModified},
		{[]string{"If-Modified-Since", "Sun, 31 Dec 2023 10:00:00 GMT"}, http.StatusOK},
		{[]string{"If-None-Match", `"v2"`, "If-Modified-Since", lastMod}, http.StatusOK}, // If-None-Match decides
	} {
		got := assertStored(t, p, o, "/c", tc.header...)
		assert.Equal(t, tc.want, got.Status, "%q", tc.header)
		if tc.want == http.StatusNotModified {
			assert.Empty(t, got.Body)
			assert.NotEmpty(t, got.Header.Get("ETag"))
		} else {
			assert.NotEmpty(t, got.Body)
		}
	}
	assert.EqualValues(t, 1, o.hits.Load())
}

// §3: HEAD is answered from the GET entry.
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

// §3: a HEAD miss fills with GET, so the following GET is a HIT.
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

// §4: Age and Cache-Status on each kind of answer.
func TestAgeAndCacheStatusHeaders(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/aged" {
			w.Header().Set("Age", "100")
		}
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)

	start := time.Now()
	miss := p.get("/fresh")
	assert.Equal(t, "MISS", miss.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=miss; stored", miss.Header.Get("Cache-Status"))
	assert.Empty(t, miss.Header.Values("Age"), "a MISS of a page without Age carries none")
	hit := p.get("/fresh")
	assert.Equal(t, "HIT", hit.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; hit", hit.Header.Get("Cache-Status"))
	age, err := strconv.Atoi(hit.Header.Get("Age"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, age, 0)
	assert.LessOrEqual(t, age, int(time.Since(start)/time.Second))

	bypass := p.get("/fresh", "Authorization", "Bearer x")
	assert.Equal(t, "BYPASS", bypass.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=bypass", bypass.Header.Get("Cache-Status"))
	post := p.request(http.MethodPost, "/fresh", nil)
	assert.Equal(t, "BYPASS", post.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=bypass", post.Header.Get("Cache-Status"))

	// The origin's own Age plus whole seconds since stored.
	start = time.Now()
	p.get("/aged")
	hit = p.get("/aged")
	age, err = strconv.Atoi(hit.Header.Get("Age"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, age, 100)
	assert.LessOrEqual(t, age, 100+int(time.Since(start)/time.Second))
	require.Eventually(t, func() bool {
		resp, err := p.client.Get(p.URL + "/aged")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.Header.Get("Age") == "101"
	}, 5*time.Second, 50*time.Millisecond, "Age grows by the seconds since stored")
}

// §2 REVALIDATE_AFTER and §4: a page older than REVALIDATE_AFTER is served
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

// ---------------------------------------------------------------- the key

// IGNORE_QUERY_PARAMS are removed from the origin request and from the key.
func TestIgnoredQueryParamsLeaveKeyAndOriginRequest(t *testing.T) {
	o := newTestOrigin(t, page("<p>q</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/p?utm_source=news&id=1&utm_medium=mail")
	assert.Equal(t, "/p?id=1", o.lastRequest().RequestURI)
	assertStored(t, p, o, "/p?id=1")
	assertStored(t, p, o, "/p?gclid=abc&id=1&fbclid=xyz")
	assertStored(t, p, o, "/p?id=1&utm_campaign=x")

	p.get("/only?utm_source=x&gclid=y")
	assert.Equal(t, "/only", o.lastRequest().RequestURI)
	assertStored(t, p, o, "/only")
}

// IGNORE_QUERY_PARAMS takes its own list, and "off" keeps every parameter.
func TestIgnoreQueryParamsIsConfigurable(t *testing.T) {
	o := newTestOrigin(t, page("<p>q</p>"))
	p := startProxy(t, o.URL, map[string]string{"IGNORE_QUERY_PARAMS": "ref,trk_*"})
	p.get("/p?ref=home&utm_source=x&trk_id=1")
	assert.Equal(t, "/p?utm_source=x", o.lastRequest().RequestURI)

	off := startProxy(t, o.URL, map[string]string{"IGNORE_QUERY_PARAMS": "off"})
	off.get("/p?utm_source=x&gclid=y")
	assert.Equal(t, "/p?gclid=y&utm_source=x", o.lastRequest().RequestURI)
	assertNotStored(t, off, o, "/p?gclid=z&utm_source=x")
}

// The query is normalised: pairs sorted by name in byte order (repeated
// names keep their order), each kept as written; the origin receives that.
func TestQueryOrderIsNormalised(t *testing.T) {
	o := newTestOrigin(t, page("<p>q</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/a?b=2&a=1")
	assert.Equal(t, "/a?a=1&b=2", o.lastRequest().RequestURI)
	assertStored(t, p, o, "/a?a=1&b=2")

	p.get("/r?x=2&a=1&x=1&B=0")
	assert.Equal(t, "/r?B=0&a=1&x=2&x=1", o.lastRequest().RequestURI)
	assertNotStored(t, p, o, "/r?a=1&x=1&x=2&B=0") // another order of x: another page

	p.get("/e?q=a%20b&p=a+b&%C3%A9=1")
	assert.Equal(t, "/e?%C3%A9=1&p=a+b&q=a%20b", o.lastRequest().RequestURI, "pairs kept as written")
	assertNotStored(t, p, o, "/e?p=a%20b&q=a%20b") // not decoded: another key
}

// The escaped path reaches the origin exactly as keyed: no decoding, no
// cleaning.
func TestPathReachesOriginAsWritten(t *testing.T) {
	o := newTestOrigin(t, page("<p>path</p>"))
	p := startProxy(t, o.URL, nil)
	for _, target := range []string{"/a/../b", "/a/./b", "/a%2Fb", "/caf%C3%A9", "/a%2e%2e/b", "/x//y"} {
		got := mustRaw(t, p, "GET", "GET "+target+" HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
		assert.Equal(t, http.StatusOK, got.Status, target)
		assert.Equal(t, target, o.lastRequest().RequestURI)
	}
}

// ALLOWED_HOSTS: a page request for another host gets 421 and reaches
// nothing; hosts compare after the key's normalisation.
func TestDisallowedHostGets421(t *testing.T) {
	o := newTestOrigin(t, page("<p>ok</p>"))
	p := startProxy(t, o.URL, map[string]string{"ALLOWED_HOSTS": "example.com,www.example.com"})
	for _, host := range []string{"evil.example", "example.com.evil.example", "example.com:8080", "localhost"} {
		got := p.get("/x", "Host", host)
		assert.Equal(t, http.StatusMisdirectedRequest, got.Status, host)
		got = p.request(http.MethodPost, "/x", nil, "Host", host)
		assert.Equal(t, http.StatusMisdirectedRequest, got.Status, "POST %s", host)
	}
	got := mustRaw(t, p, "GET", "GET http://evil.example/x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusMisdirectedRequest, got.Status, "absolute form names the host")
	assert.EqualValues(t, 0, o.hits.Load())

	for _, host := range []string{"example.com", "EXAMPLE.com:80", "example.com."} {
		got := p.get("/x", "Host", host)
		assert.Equal(t, http.StatusOK, got.Status, host)
	}
	assert.EqualValues(t, 1, o.hits.Load(), "the allowed spellings share one key")
}

// ORIGIN_HOST is the Host the origin sees; the key's host stays the
// visitor's.
func TestOriginHostSetsHostOriginSees(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xfh=%s", r.Header.Get("X-Forwarded-Host"))
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_HOST": "backend.internal"})
	a := p.get("/o", "Host", "www.example.com")
	assert.Equal(t, "backend.internal", o.lastRequest().Host)
	assert.Equal(t, "xfh=www.example.com", a.Body)
	b := assertNotStored(t, p, o, "/o", "Host", "shop.example.com") // another visitor host: another key
	assert.Equal(t, "backend.internal", o.lastRequest().Host)
	assert.Equal(t, "xfh=shop.example.com", b.Body)
	assert.Equal(t, "xfh=www.example.com", assertStored(t, p, o, "/o", "Host", "www.example.com").Body)
	p.request(http.MethodPost, "/o", nil, "Host", "www.example.com")
	assert.Equal(t, "backend.internal", o.lastRequest().Host, "pass-through too")
}

// Without ORIGIN_HOST the origin sees the visitor's Host, on fills and
// pass-throughs.
func TestOriginSeesVisitorHostByDefault(t *testing.T) {
	o := newTestOrigin(t, page("<p>h</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/o", "Host", "www.example.com")
	assert.Equal(t, "www.example.com", o.lastRequest().Host)
	p.get("/o", "Host", "www.example.com", "Authorization", "Bearer x")
	assert.Equal(t, "www.example.com", o.lastRequest().Host)
}

// ---------------------------------------------------------------- promise 8

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

// MAX_OBJECT_BYTES: a larger body is streamed through whole and not stored.
func TestLargerThanMaxObjectIsStreamedWholeAndNotStored(t *testing.T) {
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

// ---------------------------------------------------------------- statuses

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

func TestNotFoundIsStored(t *testing.T) {
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

// ---------------------------------------------------------------- RFC 9111 §4.4

// A 2xx answer to POST invalidates the stored page of its URL.
func TestPostToStoredURLInvalidatesIt(t *testing.T) {
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
	p := startProxy(t, o.URL, nil)
	p.get("/doc?id=7")
	assert.Equal(t, "version 1", assertStored(t, p, o, "/doc?id=7").Body)

	post := p.request(http.MethodPost, "/doc?id=7&utm_source=x", strings.NewReader("edit"))
	assert.Equal(t, http.StatusNoContent, post.Status)
	assert.Equal(t, "BYPASS", post.Header.Get("X-Cache"))
	got := assertNotStored(t, p, o, "/doc?id=7")
	assert.Equal(t, "version 2", got.Body)
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
}

// RFC 9111 §4.4: the Location of a successful unsafe request is invalidated
// too, every variant of it.
func TestUnsafeMethodInvalidatesItsLocation(t *testing.T) {
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
	p := startProxy(t, o.URL, nil)
	p.get("/article", "Accept-Language", "en")
	p.get("/article", "Accept-Language", "de")
	assertStored(t, p, o, "/article", "Accept-Language", "en")

	p.request(http.MethodPut, "/edit", strings.NewReader("x"))
	assert.Equal(t, "version 2 en", assertNotStored(t, p, o, "/article", "Accept-Language", "en").Body)
	assert.Equal(t, "version 2 de", assertNotStored(t, p, o, "/article", "Accept-Language", "de").Body)
}

// A failed unsafe request, and a safe one, change nothing stored.
func TestFailedOrSafeMethodKeepsStoredPage(t *testing.T) {
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

// ---------------------------------------------------------------- more §3

// "Cookie" and "Authorization" in Vary are satisfied by construction: such a
// page is stored and served to every anonymous visitor.
func TestVaryCookieIsSatisfiedByConstruction(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Cookie, Authorization")
		io.WriteString(w, "anonymous render")
	})
	p := startProxy(t, o.URL, nil)
	assert.Equal(t, "isrproxy; fwd=miss; stored", p.get("/vc", "Cookie", "theme=dark").Header.Get("Cache-Status"))
	assertStored(t, p, o, "/vc")
	assertStored(t, p, o, "/vc", "Cookie", "_ga=1")
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

// Promise 1: a browser reload (request Cache-Control: no-cache) is still
// answered from memory.
func TestClientNoCacheIsServedFromMemory(t *testing.T) {
	o := newTestOrigin(t, page("<p>p</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/nc")
	assertStored(t, p, o, "/nc", "Cache-Control", "no-cache", "Pragma", "no-cache")
	assertStored(t, p, o, "/nc", "Cache-Control", "max-age=0")
}

// The origin's own X-Cache, Cache-Status and Age never mislabel an answer:
// isrproxy's replace them, on stored and pass-through answers.
func TestOriginCacheHeadersAreReplaced(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cache", "HIT from upstream")
		w.Header().Set("Cache-Status", "upstream; hit")
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/oc")
	hit := p.get("/oc")
	assert.Equal(t, []string{"HIT"}, hit.Header.Values("X-Cache"))
	assert.Equal(t, []string{"isrproxy; hit"}, hit.Header.Values("Cache-Status"))
	bypass := p.get("/oc", "Authorization", "Bearer x")
	assert.Equal(t, []string{"BYPASS"}, bypass.Header.Values("X-Cache"))
	assert.Equal(t, []string{"isrproxy; fwd=bypass"}, bypass.Header.Values("Cache-Status"))
}

// Stored headers are the origin's, Date included.
func TestStoredPageKeepsOriginDate(t *testing.T) {
	const date = "Mon, 01 Jan 2024 10:00:00 GMT"
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", date)
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/d")
	assert.Equal(t, date, assertStored(t, p, o, "/d").Header.Get("Date"))
}

// The key's host is lower-cased, without the default port or a trailing
// dot; another port is another host.
func TestHostIsNormalisedInKey(t *testing.T) {
	o := newTestOrigin(t, page("<p>h</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/k", "Host", "www.example.com")
	for _, host := range []string{"WWW.Example.COM", "www.example.com:80", "www.example.com."} {
		assertStored(t, p, o, "/k", "Host", host)
	}
	assertNotStored(t, p, o, "/k", "Host", "www.example.com:8080")
	assertNotStored(t, p, o, "/k", "Host", "example.com")
}

// BYPASS_COOKIES takes exact names and prefixes; "off" ignores every cookie.
func TestBypassCookiesIsConfigurable(t *testing.T) {
	o := newTestOrigin(t, page("<p>c</p>"))
	p := startProxy(t, o.URL, map[string]string{"BYPASS_COOKIES": "session,admin_*"})
	assert.Equal(t, "BYPASS", p.get("/c1", "Cookie", "session=1").Header.Get("X-Cache"))
	assert.Equal(t, "BYPASS", p.get("/c1", "Cookie", "a=1; admin_x=1").Header.Get("X-Cache"))
	assert.Equal(t, "MISS", p.get("/c1", "Cookie", "sessionid=1; wordpress_logged_in_x=1").Header.Get("X-Cache"),
		"an exact name is no prefix, and the defaults are replaced")

	off := startProxy(t, o.URL, map[string]string{"BYPASS_COOKIES": "off"})
	off.get("/c2", "Cookie", "wordpress_logged_in_x=1")
	assertStored(t, off, o, "/c2", "Cookie", "wordpress_logged_in_x=1")
}

// A bypass cookie is found whatever the Cookie line it is on.
func TestBypassCookieOnSecondCookieLine(t *testing.T) {
	o := newTestOrigin(t, page("<p>c</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/two")
	got := mustRaw(t, p, "GET", "GET /two HTTP/1.1\r\nHost: "+hostPort(p.URL)+"\r\nCookie: a=1\r\nCookie: wordpress_logged_in_abc=editor\r\nConnection: close\r\n\r\n")
	assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
	assert.Equal(t, "BYPASS", p.get("/two", "Cookie", " SESS1 = x ").Header.Get("X-Cache"), "spaces around the name")
}

// ---------------------------------------------------------------- promise 7 and leaving visitors

// A visitor who hangs up does not stop the fill: it completes and stores
// the page for the next visitor.
func TestFillContinuesWhenVisitorLeaves(t *testing.T) {
	gate := newGate()
	arrived := make(chan struct{}, 10)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		gate.wait(r)
		io.WriteString(w, "filled")
	})
	p := startProxy(t, o.URL, nil)
	gate.openAtCleanup(t)

	req, err := http.NewRequest(http.MethodGet, p.URL+"/leave", nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		resp, err := p.client.Do(req.WithContext(ctx))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	assert.Error(t, <-errc)
	waitForRequests(t, p, 0)
	gate.open()
	require.Eventually(t, func() bool {
		return p.get("/leave").Header.Get("X-Cache") == "HIT"
	}, 5*time.Second, 10*time.Millisecond)
	assert.EqualValues(t, 1, o.hits.Load())
}

// The visitor whose request started a fill hanging up does not fail the
// visitors waiting on it.
func TestFetcherLeavingDoesNotFailWaiters(t *testing.T) {
	gate := newGate()
	arrived := make(chan struct{}, 10)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		gate.wait(r)
		io.WriteString(w, "shared")
	})
	p := startProxy(t, o.URL, nil)
	gate.openAtCleanup(t)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/lead", nil)
		resp, err := p.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	wait := launchGets(t, p, "/lead", 3)
	waitForRequests(t, p, 4)
	cancel()
	assert.Error(t, <-errc)
	waitForRequests(t, p, 3)
	gate.open()
	for _, a := range wait() {
		assert.Equal(t, http.StatusOK, a.Status)
		assert.Equal(t, "shared", a.Body)
	}
	assert.EqualValues(t, 1, o.hits.Load())
}

// ORIGIN_MAX_CONCURRENCY: at most that many origin requests are in flight;
// the others wait their turn and are then answered.
func TestOriginMaxConcurrencyLimitsOriginRequests(t *testing.T) {
	gate := newGate()
	var now, peak atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		gate.wait(r)
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_MAX_CONCURRENCY": "2"})
	gate.openAtCleanup(t)

	var waits []func() []answer
	for i := range 3 {
		waits = append(waits, launchGets(t, p, fmt.Sprintf("/m/%d", i), 1))
	}
	waits = append(waits, launchGets(t, p, "/m/x", 2, "Authorization", "Bearer x")) // pass-through counts too
	waitForRequests(t, p, 5)
	require.Eventually(t, func() bool { return o.hits.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
	assert.Never(t, func() bool { return o.hits.Load() > 2 }, 300*time.Millisecond, 10*time.Millisecond,
		"more origin requests than ORIGIN_MAX_CONCURRENCY")
	gate.open()
	for _, w := range waits {
		for _, a := range w() {
			assert.Equal(t, http.StatusOK, a.Status)
		}
	}
	assert.EqualValues(t, 2, peak.Load())
	assert.EqualValues(t, 5, o.hits.Load())
}

// ---------------------------------------------------------------- §6 and §7

func TestHealthzAnswers200(t *testing.T) {
	p := startProxy(t, newTestOrigin(t, page("x")).URL, nil)
	resp, err := http.Get(p.Admin + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// §6: requests by cache status and origin requests by reason and status.
func TestMetricsCountRequestsAndOriginFetches(t *testing.T) {
	o := newTestOrigin(t, page("<p>m</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/m")
	p.get("/m")
	p.get("/m")
	p.get("/m", "Authorization", "Bearer x")
	assert.EqualValues(t, 2, metric(t, p, `isrproxy_requests_total{cache="HIT"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_requests_total{cache="MISS"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_requests_total{cache="BYPASS"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_origin_requests_total{reason="fill",status="200"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_origin_requests_total{reason="bypass",status="200"}`))
	assert.EqualValues(t, 1, metric(t, p, "isrproxy_cache_entries"))
	assert.Positive(t, metric(t, p, "isrproxy_cache_bytes"))
}

// §7: one access-log line per request, with method, path, status, cache
// status, duration and bytes.
func TestAccessLogLinePerRequest(t *testing.T) {
	o := newTestOrigin(t, page("<p>logged</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/logged?a=1")
	p.get("/logged?a=1")
	lines := p.accessLog()
	require.Len(t, lines, 2, "one line per request:\n%s", p.logs.String())
	for i, want := range []string{"MISS", "HIT"} {
		l := lines[i]
		assert.Equal(t, "GET", l["method"])
		assert.Equal(t, "/logged?a=1", l["path"])
		assert.EqualValues(t, 200, l["status"])
		assert.Equal(t, want, l["cache"])
		assert.Contains(t, l, "duration")
		assert.EqualValues(t, len("<p>logged</p>"), l["bytes"])
	}
}

// §5 and §7: the secret never appears in a log line, however the query
// spells its parameter name.
func TestAccessLogNeverShowsTheSecret(t *testing.T) {
	o := newTestOrigin(t, page("<p>s</p>"))
	p := startProxy(t, o.URL, map[string]string{"LOG_LEVEL": "debug"})
	p.get("/s")
	for _, q := range []string{"secret=" + apiSecret, "%73ecret=" + apiSecret, "se%63ret=" + apiSecret, "path=/s&secret=" + apiSecret} {
		// Accepted or not, the secret must not be logged.
		p.request(http.MethodPost, "/api/revalidate?"+q+"&path=/s", nil)
	}
	p.request(http.MethodPost, "/api/revalidate?path=/s", nil, "Authorization", "Bearer "+apiSecret)
	p.get("/s?secret=" + apiSecret)
	// Where no parameter is named secret: in a page path, in the value of
	// a target, percent-encoded.
	p.get("/api/revalidate;secret=" + apiSecret)
	p.revalidate("path=/x%3Fsecret%3D" + apiSecret)
	p.revalidate("path=/x%3Fa%3D%74" + apiSecret[1:]) // %74 is the secret's first letter, t
	p.accessLog()                                     // every request's line is written
	for line := range strings.SplitSeq(p.logs.String(), "\n") {
		assert.NotContains(t, line, apiSecret, "the secret is in a log line")
	}
}

// The origin receives the same normalised query on a fill and on a
// pass-through GET: ignored parameters removed, pairs sorted, each as
// written (a ";" included).
func TestQueryReachesOriginAsKeyedOnFillAndBypass(t *testing.T) {
	o := newTestOrigin(t, page("<p>q</p>"))
	p := startProxy(t, o.URL, nil)
	const target = "/q?z=1;x&utm_source=n&a=%41+b"
	p.get(target)
	fill := o.lastRequest().RequestURI
	assert.Equal(t, "/q?a=%41+b&z=1;x", fill)
	p.get(target, "Authorization", "Bearer x")
	assert.Equal(t, fill, o.lastRequest().RequestURI, "a pass-through GET gets the keyed target too")
	assertStored(t, p, o, "/q?a=%41+b&z=1;x")
}

// An absolute-form target without a path asks the origin for "/".
func TestAbsoluteFormWithoutPathAsksForRoot(t *testing.T) {
	o := newTestOrigin(t, page("<p>root</p>"))
	p := startProxy(t, o.URL, nil)
	got := mustRaw(t, p, "GET", "GET http://www.example.com HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "<p>root</p>", got.Body)
	assert.Equal(t, "/", o.lastRequest().RequestURI)
	assert.Equal(t, "www.example.com", o.lastRequest().Host)
	assertStored(t, p, o, "/", "Host", "www.example.com")
}

// ORIGIN_TIMEOUT bounds the whole fill, body included: an origin that
// stalls mid-body answers 504 and stores nothing.
func TestOriginStallingMidBodyTimesOut(t *testing.T) {
	gate := newGate()
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "<p>the first part")
		w.(http.Flusher).Flush()
		gate.wait(r)
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_TIMEOUT": "200ms"})
	gate.openAtCleanup(t)
	got := p.get("/stall")
	assert.Equal(t, http.StatusGatewayTimeout, got.Status)
	assert.NotContains(t, got.Body, "the first part")
	assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
}

// Many visitors reading one stored page at once, with and without gzip,
// GET and HEAD: each gets a whole, correct answer (and -race sees no data
// race on the shared page).
func TestConcurrentHitsAreIndependent(t *testing.T) {
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

// Promise 8 under Vary: visitors cannot grow stored pages beyond
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
