package main

// Nothing personal is ever shared: answers with Set-Cookie, no-store or
// private are never stored, requests with credentials or a bypass cookie
// pass through, and a fill carries nothing of the visitor that could make
// the page theirs.

import (
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

// Web cache deception: a page the origin personalises from the visitor's
// cookie, requested under a static-looking URL, is stored as the anonymous
// render (the fill carries no Cookie), and each spelling is its own key.
func TestCacheDeceptionStoresOnlyTheAnonymousRender(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		who := "anonymous"
		if c, err := r.Cookie("session"); err == nil {
			who = c.Value
		}
		fmt.Fprintf(w, "<p>account of %s at %s</p>", who, r.RequestURI)
	})
	p := startProxy(t, o.URL, nil)
	for _, path := range []string{
		"/account.php/x.css", "/account.php/nonexistent.js", "/account.php;x.css",
		"/account.php%3Bx.css", "/account.php%23x.css", "/account.php%3fx.css",
		"/account.php/..%2fx.css", "/account.php/%2e%2e/x.png", "/static/..%2faccount.php",
	} {
		victim := p.get(path, "Cookie", "session=victim-secret-42")
		assert.NotContains(t, victim.Body, "victim-secret", path)
		attacker := p.get(path)
		assert.Equal(t, "HIT", attacker.Header.Get("X-Cache"), path)
		assert.Equal(t, "<p>account of anonymous at "+path+"</p>", attacker.Body, path)
	}
	// A bypass cookie passes through and never fills.
	hits := o.hits.Load()
	editor := p.get("/account.php/editor.css", "Cookie", "SESSabc=editor-secret; session=editor-secret")
	assert.Equal(t, "BYPASS", editor.Header.Get("X-Cache"))
	assert.Contains(t, editor.Body, "editor-secret", "a bypass request keeps its cookies")
	after := p.get("/account.php/editor.css")
	assert.Equal(t, "MISS", after.Header.Get("X-Cache"))
	assert.NotContains(t, after.Body, "editor-secret")
	assert.Equal(t, hits+2, o.hits.Load())
}

// Under 100 concurrent cold requests for one key, a response with
// Set-Cookie is shown only to the visitor it was made for: each visitor
// sees no Set-Cookie or the one the origin made for its own request.
func TestSetCookieIsNeverSharedUnderConcurrency(t *testing.T) {
	const n = 100
	release := make(chan struct{})
	var arrived atomic.Int64
	var mode atomic.Int64 // 0: every response sets a cookie; 1: odd tags only
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == 1 {
			<-release // hold the first fill until every visitor queues behind it
		}
		tag := r.Header.Get("X-Visitor")
		num, _ := strconv.Atoi(tag)
		w.Header().Set("Content-Type", "text/html")
		if mode.Load() == 0 || num%2 == 1 {
			w.Header().Set("Set-Cookie", "session="+tag+"; Path=/; HttpOnly")
		}
		fmt.Fprintf(w, "<p>made for %s</p>", tag)
	})
	p := startProxy(t, o.URL, nil)
	for round, path := range []string{"/cookie/all", "/cookie/some"} {
		mode.Store(int64(round))
		arrived.Store(0)
		release = make(chan struct{})
		answers := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, err := http.NewRequest(http.MethodGet, p.URL+path, nil)
				if !assert.NoError(t, err) {
					return
				}
				req.Header.Set("X-Visitor", strconv.Itoa(i))
				resp, err := p.client.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				assert.NoError(t, err)
				answers[i] = answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
			})
		}
		waitForRequests(t, p, n)
		close(release)
		wg.Wait()
		for i, a := range answers {
			require.Equal(t, http.StatusOK, a.Status, "visitor %d", i)
			cookies := a.Header.Values("Set-Cookie")
			if len(cookies) == 0 {
				continue
			}
			assert.Equal(t, []string{"session=" + strconv.Itoa(i) + "; Path=/; HttpOnly"}, cookies,
				"round %d: visitor %d got another visitor's cookie", round, i)
			assert.Equal(t, fmt.Sprintf("<p>made for %d</p>", i), a.Body, "round %d: visitor %d", round, i)
			assert.NotEqual(t, "HIT", a.Header.Get("X-Cache"))
		}
		// Later visitors never get a stored Set-Cookie either.
		later := p.get(path, "X-Visitor", "1001")
		if c := later.Header.Values("Set-Cookie"); len(c) > 0 {
			assert.Equal(t, []string{"session=1001; Path=/; HttpOnly"}, c)
		}
	}
}

// A response that turns out not to be storable is given only to
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
	waitForRequests(t, p, n) // the fetcher on its way to the origin, n-1 waiting on it
	// The fill runs on a goroutine of its own: it may reach the origin a
	// moment after every visitor is in.
	require.Eventually(t, func() bool { return o.hits.Load() >= 1 }, 10*time.Second, 5*time.Millisecond)
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

// A response whose Cache-Control holds no-store or private, in any spelling
// and on any line, is never stored; directives that only govern freshness
// do not prevent storage.
func TestNoStoreOrPrivateResponseIsNeverStored(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"common spellings, none stored", privateOrNoStoreIsNeverStored},
		{"every spelling, and freshness directives", noStoreAndPrivateInEverySpellingAreNeverStored},
	} {
		t.Run(tc.name, tc.run)
	}
}

func privateOrNoStoreIsNeverStored(t *testing.T) {
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

// A response whose Cache-Control holds no-store or private, in any
// spelling, is never stored; standard directives that only govern
// freshness do not prevent storage: a page lives until it is revalidated.
func noStoreAndPrivateInEverySpellingAreNeverStored(t *testing.T) {
	refused := [][]string{
		{"no-store"}, {"No-Store"}, {"NO-STORE"}, {"nO-sToRe"},
		{"private"}, {"Private"}, {"PRIVATE"}, {"pRiVaTe"},
		{`"no-store"`}, {`"private"`},
		{"public, no-store"}, {"max-age=60,no-store"}, {"no-store,max-age=60"},
		{"max-age=60 ,  private  , must-revalidate"}, {"public,\tprivate"}, {"public ,no-store ,"},
		{", , private"}, {"no-cache, no-store, must-revalidate"}, {"s-maxage=0, No-Store"},
		{`private="Set-Cookie"`}, {`Private="Set-Cookie, X-Session"`}, {"private=Set-Cookie"},
		{`no-cache="Set-Cookie", private`}, {`no-cache="Set-Cookie, Authorization", no-store`},
		{"no-store=1"}, {"private, private"}, {"no-store, no-store"},
		{"public", "no-store"}, {"max-age=60", "Private"}, {"", "no-store"}, {"public", "max-age=60", "PRIVATE"},
		{"no-store", "public"}, {"public, max-age=60", "s-maxage=60, private=\"X-A\""},
	}
	stored := [][]string{
		{"public"}, {"max-age=60"}, {"public, max-age=60, s-maxage=120"}, {"no-cache"}, {"must-revalidate"},
		{"proxy-revalidate"}, {"immutable"}, {"stale-while-revalidate=30"}, {"max-age=0"}, {"public", "max-age=60"},
	}
	var ccs [][]string
	ccs = append(ccs, refused...)
	ccs = append(ccs, stored...)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/cc/"))
		w.Header()["Cache-Control"] = ccs[i]
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<p>cc %d</p>", i)
	})
	p := startProxy(t, o.URL, nil)
	for i, cc := range ccs {
		path := fmt.Sprintf("/cc/%d", i)
		first := p.get(path)
		require.Equal(t, http.StatusOK, first.Status)
		assert.Equal(t, fmt.Sprintf("<p>cc %d</p>", i), first.Body)
		if i < len(refused) {
			assert.Equal(t, "isrproxy; fwd=miss", first.Header.Get("Cache-Status"), "Cache-Control %q was stored", cc)
			assertNotStored(t, p, o, path)
			assertNotStored(t, p, o, path, "Accept-Encoding", "gzip")
			res := p.revalidate("path=" + path)
			assert.NotEqual(t, http.StatusOK, res.Status, "Cache-Control %q: a refetch stored it", cc)
			assertNotStored(t, p, o, path)
		} else {
			assert.Equal(t, "isrproxy; fwd=miss; stored", first.Header.Get("Cache-Status"), "Cache-Control %q was not stored", cc)
			assertStored(t, p, o, path)
		}
	}
}

// A request with Authorization passes through with its
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

// The default BYPASS_COOKIES patterns make a request pass
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

// A Range request of a page not stored passes through and never fills,
// even when the origin's 206 would be storable (range_test.go has the
// ranges of a stored page).
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
}

// A fill carries no Cookie, no Authorization, no Range,
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

// BYPASS_PATHS, the CMS's back office: a request for one always passes
// through (BYPASS), cookies intact, and is never stored nor filled, even
// though the origin's answer could be stored. WordPress's admin-ajax.php
// answers its heartbeats "no-cache", which isrproxy otherwise ignores.
// Other spellings of such a path (a "//", a "/./") pass through too.
func TestBypassPathsAlwaysPassThroughAndAreNeverStored(t *testing.T) {
	var beat atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache, must-revalidate, max-age=0")
		fmt.Fprintf(w, "beat %d cookie=%q", beat.Add(1), r.Header.Get("Cookie"))
	})
	bypassed := func(t *testing.T, p *instance, path string) {
		t.Helper()
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodGet} {
			before := o.hits.Load()
			got := p.request(method, path, nil, "Cookie", "theme=dark")
			assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"), "%s %s", method, path)
			assert.Equal(t, "isrproxy; fwd=bypass", got.Header.Get("Cache-Status"), "%s %s", method, path)
			assert.Equal(t, before+1, o.hits.Load(), "%s %s goes to the origin", method, path)
			if method == http.MethodGet {
				assert.Contains(t, got.Body, `cookie="theme=dark"`, "cookies pass intact")
			}
		}
	}
	stored := func(t *testing.T, p *instance, path string) {
		t.Helper()
		got := p.get(path)
		assert.Equal(t, "MISS", got.Header.Get("X-Cache"), path)
		assertStored(t, p, o, path)
	}

	t.Run("default list", func(t *testing.T) {
		p := startProxy(t, o.URL, nil)
		for _, path := range []string{
			"/wp-admin/admin-ajax.php", "/wp-admin/admin-ajax.php?action=heartbeat", "/wp-admin/",
			"/wp-login.php", "/wp-login.php?action=lostpassword", "/wp-cron.php?doing_wp_cron=1",
			"/xmlrpc.php", "/user/login", "/admin/config",
			"//wp-admin/admin-ajax.php", "/wp-admin/./admin-ajax.php", "/x/../wp-login.php",
		} {
			bypassed(t, p, path)
		}
		for _, path := range []string{"/wp-login.php/x", "/wp-adminx", "/blog/wp-admin/", "/users/1", "/?p=1"} {
			stored(t, p, path)
		}
	})
	t.Run("custom list", func(t *testing.T) {
		p := startProxy(t, o.URL, map[string]string{"BYPASS_PATHS": "/account/*,/cart"})
		bypassed(t, p, "/account/orders")
		bypassed(t, p, "/cart")
		stored(t, p, "/cart/x")
		stored(t, p, "/wp-admin/admin-ajax.php")
	})
	t.Run("off", func(t *testing.T) {
		p := startProxy(t, o.URL, map[string]string{"BYPASS_PATHS": "off"})
		stored(t, p, "/wp-admin/admin-ajax.php")
		stored(t, p, "/wp-login.php")
	})
}
