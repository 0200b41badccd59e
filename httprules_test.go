package main

// HTTP caching rules that still bind an indefinite cache (issue 4, section
// 5): RFC 9111 invalidation, hop-by-hop headers, no-store and private in
// every spelling, Vary, Age, and conditional requests.

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ------------------------------------------------ RFC 9111 §4.4 invalidation

// ruleEditableOrigin serves GETs with a version that every unsafe request
// bumps; an unsafe request is answered with the status, Location and
// Content-Location its X-Answer-* headers ask for.
func ruleEditableOrigin(version *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			io.Copy(io.Discard, r.Body)
			version.Add(1)
			if l := r.Header.Get("X-Answer-Location"); l != "" {
				w.Header().Set("Location", l)
			}
			if l := r.Header.Get("X-Answer-Content-Location"); l != "" {
				w.Header().Set("Content-Location", l)
			}
			status, _ := strconv.Atoi(r.Header.Get("X-Answer-Status"))
			w.WriteHeader(max(status, http.StatusOK))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Vary", "X-Lang")
		fmt.Fprintf(w, "<p>%s %s version %d</p>", r.URL.RequestURI(), r.Header.Get("X-Lang"), version.Load())
	}
}

// RFC 9111 §4.4: a 2xx or 3xx answer to POST, PUT, DELETE or PATCH
// invalidates every variant of the stored page of its URL, the query
// normalised as for the key; a 4xx or 5xx answer, and a safe method,
// change nothing.
func TestRuleUnsafeMethodInvalidatesStoredPage(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, ruleEditableOrigin(&version))
	p := startProxy(t, o.URL, nil)
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

// RFC 9111 §4.4: the Location and Content-Location of a successful unsafe
// answer are invalidated too when they name the same host, and never when
// they name another.
func TestRuleUnsafeMethodInvalidatesLocationOnSameHostOnly(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, ruleEditableOrigin(&version))
	p := startProxy(t, o.URL, nil)
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

// A fill that started before a successful unsafe request and finishes
// after it must not store what it read: the page it fetched is older than
// the change.
func TestRuleInvalidationWinsOverFillInFlight(t *testing.T) {
	var version atomic.Int64
	held := make(chan struct{})
	arrived := make(chan struct{}, 1)
	editable := ruleEditableOrigin(&version)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.Header.Get("X-Hold") != "" {
			v := version.Load()
			arrived <- struct{}{}
			<-held
			fmt.Fprintf(w, "<p>version %d</p>", v)
			return
		}
		editable(w, r)
	})
	p := startProxy(t, o.URL, nil)
	done := make(chan answer, 1)
	go func() {
		resp, err := p.client.Do(func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, p.URL+"/inflight", nil)
			req.Header.Set("X-Hold", "1")
			return req
		}())
		if !assert.NoError(t, err) {
			done <- answer{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- answer{Status: resp.StatusCode, Body: string(b)}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		close(held)
		t.Fatal("the fill never reached the origin")
	}
	post := p.request(http.MethodPost, "/inflight", strings.NewReader("x"))
	assert.Equal(t, http.StatusOK, post.Status)
	close(held)
	first := <-done
	assert.Equal(t, "<p>version 0</p>", first.Body)
	after := assertNotStored(t, p, o, "/inflight")
	assert.Contains(t, after.Body, "version 1", "the page read before the change was stored after it")
}

// ------------------------------------------------ Connection-named headers

// Response headers that are hop-by-hop, or named in the origin's
// Connection header (any case, any line), are never stored nor replayed:
// not on the filling answer, a HIT, a HEAD, a plain or gzip answer, a
// refetched page, nor a pass-through.
func TestRuleConnectionNamedResponseHeadersNeverStoredOrReplayed(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Connection"] = []string{"X-Secret, x-other", "X-THIRD"}
		if strings.HasSuffix(r.URL.Path, "/close") {
			// Go's client drops a Connection header holding "close",
			// with the names it listed: they must go all the same.
			h["Connection"] = []string{"X-Secret, close, x-other", "X-THIRD"}
		}
		h.Set("X-Secret", "s3cret")
		h.Set("X-Other", "other")
		h.Set("X-Third", "third")
		h.Set("Keep-Alive", "timeout=5, max=1000")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Proxy-Authenticate", "Basic realm=x")
		h.Set("Te", "trailers")
		h.Set("Upgrade", "websocket")
		h.Set("X-Kept", "kept")
		if strings.HasPrefix(r.URL.Path, "/conn/text") {
			h.Set("Content-Type", "text/html")
		} else {
			h.Set("Content-Type", "image/png")
		}
		io.WriteString(w, strings.Repeat("<p>connection-named</p>", 20))
	})
	p := startProxy(t, o.URL, nil)
	hop := []string{"Connection", "X-Secret", "X-Other", "X-Third", "Keep-Alive", "Proxy-Connection",
		"Proxy-Authenticate", "Te", "Upgrade"}
	check := func(what string, a answer) {
		t.Helper()
		assert.Equal(t, "kept", a.Header.Get("X-Kept"), what)
		for _, name := range hop {
			if name == "Connection" {
				for _, v := range a.Header.Values(name) {
					for tok := range strings.SplitSeq(v, ",") {
						tok = strings.TrimSpace(tok)
						assert.True(t, strings.EqualFold(tok, "close") || strings.EqualFold(tok, "keep-alive"),
							"%s: Connection %q replayed", what, v)
					}
				}
				continue
			}
			assert.Empty(t, a.Header.Values(name), "%s: %s replayed", what, name)
		}
		assert.NotContains(t, fmt.Sprint(a.Header), "s3cret", what)
	}
	for _, path := range []string{"/conn/text", "/conn/png", "/conn/text/close", "/conn/png/close"} {
		check(path+" MISS", p.get(path))
		check(path+" HIT", assertStored(t, p, o, path))
		check(path+" HIT gzip", assertStored(t, p, o, path, "Accept-Encoding", "gzip"))
		check(path+" HEAD", p.request(http.MethodHead, path, nil))
		check(path+" BYPASS", p.get(path, "Authorization", "Bearer x"))
		check(path+" POST", p.request(http.MethodPost, path, strings.NewReader("x")))
		res := p.revalidate("path=" + path)
		require.Equal(t, http.StatusOK, res.Status, res.Body)
		check(path+" refetched", assertStored(t, p, o, path))
	}
}

// ------------------------------------------------ no-store and private

// A response whose Cache-Control holds no-store or private, in any
// spelling, is never stored; standard directives that only govern
// freshness do not prevent storage (SPEC §3).
func TestRuleNoStoreAndPrivateInEverySpellingAreNeverStored(t *testing.T) {
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

// ------------------------------------------------------------------ Vary

// A response varying on several headers, named over several Vary lines in
// any case, is served only to requests whose values of all of them match
// the request that produced it; other headers do not matter.
func TestRuleVaryWithSeveralHeadersAndRepeatedLines(t *testing.T) {
	var n atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Vary"] = []string{"X-Lang, x-theme", "X-DEVICE", "x-lang"}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "lang=%q theme=%q device=%q #%d", r.Header.Values("X-Lang"), r.Header.Values("X-Theme"),
			r.Header.Values("X-Device"), n.Add(1))
	})
	p := startProxy(t, o.URL, nil)
	type combo struct{ lang, theme, device string }
	combos := []combo{
		{"en", "dark", "mobile"}, {"en", "dark", "desktop"}, {"en", "light", "mobile"}, {"fr", "dark", "mobile"},
		{"fr", "light", "desktop"}, {"en", "", "mobile"}, {"", "", ""}, {"EN", "dark", "mobile"},
	}
	header := func(c combo, extra ...string) []string {
		var h []string
		for _, kv := range [][2]string{{"X-Lang", c.lang}, {"X-Theme", c.theme}, {"X-Device", c.device}} {
			if kv[1] != "" {
				h = append(h, kv[0], kv[1])
			}
		}
		return append(h, extra...)
	}
	want := func(c combo) string {
		q := func(s string) string {
			if s == "" {
				return "[]"
			}
			return fmt.Sprintf("[%q]", s)
		}
		return fmt.Sprintf("lang=%s theme=%s device=%s #", q(c.lang), q(c.theme), q(c.device))
	}
	bodies := map[combo]string{}
	for _, c := range combos {
		got := assertNotStored(t, p, o, "/vary", header(c)...)
		assert.True(t, strings.HasPrefix(got.Body, want(c)), "%v answered %q", c, got.Body)
		bodies[c] = got.Body
	}
	for _, c := range combos {
		got := assertStored(t, p, o, "/vary", header(c, "X-Other", "irrelevant", "Accept-Encoding", "gzip, br")...)
		assert.Equal(t, "gzip", got.Header.Get("Content-Encoding"))
		plain := assertStored(t, p, o, "/vary", header(c)...)
		assert.Equal(t, bodies[c], plain.Body, "%v got another variant", c)
	}
	// A header sent on two lines is not the variant of its first line.
	two := p.request(http.MethodGet, "/vary", nil, "X-Lang", "en", "X-Lang", "fr", "X-Theme", "dark", "X-Device", "mobile")
	assert.Contains(t, two.Body, `lang=["en" "fr"]`, "a two-line X-Lang got a one-line variant's page")
}

// RFC 9111 §4.1: a header absent from a request only matches a stored
// response whose request also lacked it; an empty value is not absence.
func TestRuleVaryAbsentHeaderIsNotAnEmptyOne(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "X-Lang")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "lang=%q", r.Header.Values("X-Lang"))
	})
	p := startProxy(t, o.URL, nil)
	assert.Equal(t, `lang=[""]`, assertNotStored(t, p, o, "/absent", "X-Lang", "").Body)
	assert.Equal(t, `lang=[]`, p.get("/absent").Body, "a request without X-Lang got the empty X-Lang variant")
}

// ------------------------------------------------------------------ Age

// §4 and RFC 9111 §4.2.3: Age is the origin's own Age plus the whole
// seconds since the page was stored; a replacement starts again from its
// own fetch; an Age that is not a number counts as none, and one too large
// to represent as 2^31 (RFC 9111 §1.2.2).
func TestRuleAgeArithmetic(t *testing.T) {
	var originAge atomic.Pointer[string]
	setAge := func(s string) { originAge.Store(&s) }
	setAge("100")
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if a := *originAge.Load(); a != "-" {
			w.Header().Set("Age", a)
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<p>aged</p>")
	})
	p := startProxy(t, o.URL, nil)
	age := func(a answer) int64 {
		t.Helper()
		require.Len(t, a.Header.Values("Age"), 1, "one Age line")
		v, err := strconv.ParseInt(a.Header.Get("Age"), 10, 64)
		require.NoError(t, err, "Age %q", a.Header.Get("Age"))
		return v
	}
	inRange := func(what string, got, lo, hi int64) {
		t.Helper()
		assert.True(t, lo <= got && got <= hi, "%s: Age %d not in [%d, %d]", what, got, lo, hi)
	}

	start := time.Now()
	p.get("/age")
	inRange("HIT", age(assertStored(t, p, o, "/age")), 100, 101)
	inRange("HEAD", age(p.request(http.MethodHead, "/age", nil)), 100, 101)
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	inRange("HIT after a second", age(assertStored(t, p, o, "/age")), 101, 102)

	// A replacement starts again from its own fetch and its own Age.
	setAge("5")
	require.Equal(t, http.StatusOK, p.revalidate("path=/age").Status)
	inRange("replaced", age(assertStored(t, p, o, "/age")), 5, 6)
	setAge("-")
	require.Equal(t, http.StatusOK, p.revalidate("path=/age").Status)
	inRange("replaced without Age", age(assertStored(t, p, o, "/age")), 0, 1)

	for i, bad := range []string{"abc", "-5", "1.5", "", " ", "0x10", "1e3"} {
		setAge(bad)
		path := fmt.Sprintf("/age/bad/%d", i)
		p.get(path)
		inRange(fmt.Sprintf("origin Age %q", bad), age(assertStored(t, p, o, path)), 0, 1)
	}
	setAge("99999999999999999999")
	p.get("/age/huge")
	assert.GreaterOrEqual(t, age(assertStored(t, p, o, "/age/huge")), int64(2147483648), "an Age too large to represent counts as 2^31")
}

// -------------------------------------------------- conditional requests

// Conditional requests are answered from memory (SPEC §4, RFC 9110 §13):
// If-None-Match with weak comparison, in list and wildcard forms, takes
// precedence over If-Modified-Since, which compares with Last-Modified.
// Validators for an uncompressed body are kept strong; a body isrproxy
// compressed has a weak ETag, which weak comparison still matches.
func TestRuleConditionalAnswersForStrongAndWeakValidators(t *testing.T) {
	const lastMod = "Mon, 01 Jan 2024 10:00:00 GMT"
	const before = "Mon, 01 Jan 2024 09:59:59 GMT"
	const after = "Mon, 01 Jan 2024 10:00:01 GMT"
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
			assert.Empty(t, r.Header.Values(name), "a fill carried %s", name)
		}
		h := w.Header()
		h.Set("Last-Modified", lastMod)
		switch r.URL.Path {
		case "/cond/strong":
			h.Set("ETag", `"v1"`)
			h.Set("Content-Type", "application/octet-stream")
		case "/cond/weak":
			h.Set("ETag", `W/"v1"`)
			h.Set("Content-Type", "application/octet-stream")
		case "/cond/compressed":
			h.Set("ETag", `"v1"`)
			h.Set("Content-Type", "text/html")
		case "/cond/missing":
			h.Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, strings.Repeat("<p>conditional</p>", 10))
	})
	p := startProxy(t, o.URL, nil)

	// The fill never forwards the visitor's conditions; the visitor still
	// gets its 304, and the page is stored whole.
	fill := p.get("/cond/strong", "If-None-Match", `"v1"`, "If-Modified-Since", lastMod)
	assert.Equal(t, http.StatusNotModified, fill.Status)
	assert.Equal(t, "MISS", fill.Header.Get("X-Cache"))
	full := assertStored(t, p, o, "/cond/strong")
	assert.Equal(t, http.StatusOK, full.Status)
	assert.Equal(t, `"v1"`, full.Header.Get("ETag"), "an uncompressed body keeps its strong ETag")
	p.get("/cond/weak")
	p.get("/cond/compressed")
	p.get("/cond/missing")

	cases := []struct {
		header []string
		want   int
	}{
		{[]string{"If-None-Match", `"v1"`}, 304},
		{[]string{"If-None-Match", `W/"v1"`}, 304},
		{[]string{"If-None-Match", `"v0", "v1"`}, 304},
		{[]string{"If-None-Match", `"v0","v1"`}, 304},
		{[]string{"If-None-Match", `W/"v0", W/"v1", "v2"`}, 304},
		{[]string{"If-None-Match", `"v0"`, "If-None-Match", `"v1"`}, 304},
		{[]string{"If-None-Match", `*`}, 304},
		{[]string{"If-None-Match", `"v0"`}, 200},
		{[]string{"If-None-Match", `"V1"`}, 200},
		{[]string{"If-None-Match", `v1`}, 200},
		{[]string{"If-None-Match", `"v1`}, 200},
		{[]string{"If-None-Match", `W/"v0"`}, 200},
		{[]string{"If-None-Match", `"v0"`, "If-None-Match", `"v2"`}, 200},
		{[]string{"If-Modified-Since", lastMod}, 304},
		{[]string{"If-Modified-Since", after}, 304},
		{[]string{"If-Modified-Since", before}, 200},
		{[]string{"If-Modified-Since", "Sunday, 31-Dec-23 10:00:00 GMT"}, 200},
		{[]string{"If-Modified-Since", "Tue, 02 Jan 2024 10:00:00 GMT"}, 304},
		{[]string{"If-Modified-Since", "not a date"}, 200},
		{[]string{"If-None-Match", `"v0"`, "If-Modified-Since", after}, 200},
		{[]string{"If-None-Match", `"v1"`, "If-Modified-Since", before}, 304},
	}
	for _, path := range []string{"/cond/strong", "/cond/weak", "/cond/compressed"} {
		for _, ae := range []string{"", "gzip"} {
			for _, tc := range cases {
				header := append([]string{"Accept-Encoding", ae}, tc.header...)
				got := assertStored(t, p, o, path, header...)
				assert.Equal(t, tc.want, got.Status, "%s %q", path, header)
				if tc.want == http.StatusNotModified {
					assert.Empty(t, got.Body)
					assert.NotEmpty(t, got.Header.Get("ETag"), "a 304 carries the ETag")
				} else {
					assert.NotEmpty(t, got.Body)
				}
			}
			head := p.request(http.MethodHead, path, nil, "Accept-Encoding", ae, "If-None-Match", `"v1"`)
			assert.Equal(t, http.StatusNotModified, head.Status, "HEAD %s", path)
		}
	}
	compressed := assertStored(t, p, o, "/cond/compressed", "Accept-Encoding", "gzip")
	assert.Equal(t, `W/"v1"`, compressed.Header.Get("ETag"), "a compressed body's ETag is weak")
	notModified := assertStored(t, p, o, "/cond/compressed", "Accept-Encoding", "gzip", "If-None-Match", `"v1"`)
	assert.Contains(t, notModified.Header.Get("Vary"), "Accept-Encoding", "a 304 carries the Vary of its 200")

	// Only a 200 is answered 304; a stored 404 stays a 404.
	missing := assertStored(t, p, o, "/cond/missing", "If-None-Match", `"v1"`)
	assert.Equal(t, http.StatusNotFound, missing.Status)
}
