package main

// Adversarial tests (issue 4, section 1): each one attacks isrproxy the way
// a hostile visitor or a confused CMS would, and fails if the defence it
// checks is removed.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------- helpers

// advReflect answers every request with a text page that lists its method,
// request target, Host and every header, one "Name: value" a line: an
// origin that reflects whatever reaches it, the worst case for poisoning.
func advReflect(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "Method: %s\nRequestURI: %s\nHost: %s\n", r.Method, r.RequestURI, r.Host)
	for _, name := range slices.Sorted(maps.Keys(r.Header)) {
		for _, v := range r.Header[name] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, b.String())
}

// advSeen is what an origin received: one line per request.
type advSeen struct {
	Method, RequestURI, Host string
	Header                   http.Header
}

// advRecorder records every request an origin receives.
type advRecorder struct {
	mu   sync.Mutex
	seen []advSeen
}

func (rec *advRecorder) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, advSeen{r.Method, r.RequestURI, r.Host, r.Header.Clone()})
		rec.mu.Unlock()
		h(w, r)
	}
}

func (rec *advRecorder) all() []advSeen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.seen)
}

// ------------------------------------------------------ cache poisoning

// Unkeyed headers that an origin might trust never reach it on a fill, so
// a value injected on the filling request can never be stored: the stored
// page, fetched cleanly afterwards, holds no trace of it.
func TestPoisonUnkeyedHeadersNeverReachStoredPage(t *testing.T) {
	o := newTestOrigin(t, advReflect)
	p := startProxy(t, o.URL, nil)
	visitorHost := hostPort(p.URL)
	injected := []string{
		"X-Forwarded-Host", "X-Forwarded-Scheme", "X-Forwarded-Proto", "X-Forwarded-Port",
		"X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-For", "Forwarded",
		"X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
		// CGI and PHP read underscores as dashes; frameworks trust these too.
		"X_Original_URL", "X_Rewrite_URL", "X_HTTP_Method_Override",
		"X-Host", "X-Original-Host", "X-Forwarded", "Forwarded-For", "Front-End-Https", "X-Url-Scheme",
		"X-Real-IP", "True-Client-IP",
	}
	for i, name := range injected {
		for j, viaConnection := range []bool{false, true} {
			marker := fmt.Sprintf("mark%d-%d.evil.example", i, j)
			value := marker
			switch name {
			case "Forwarded":
				value = "for=6.6.6.6;host=" + marker + ";proto=https"
			case "X-Original-URL", "X-Rewrite-URL", "X_Original_URL", "X_Rewrite_URL":
				value = "/" + marker
			}
			path := fmt.Sprintf("/poison/%d/%d", i, j)
			header := []string{name, value}
			if viaConnection {
				// A Connection header naming a header isrproxy sets has no
				// effect on it (SPEC §3): the fresh value is still sent.
				header = append(header, "Connection", name)
			}
			hits := o.hits.Load()
			fill := p.get(path, header...)
			require.Equal(t, http.StatusOK, fill.Status, "%s: %s", name, fill.Body)
			assert.NotContains(t, fill.Body, marker, "%s reached the origin", name)
			assert.Equal(t, hits+1, o.hits.Load())

			r := o.lastRequest()
			require.NotNil(t, r)
			assert.Equal(t, http.MethodGet, r.Method, name)
			assert.Equal(t, path, r.RequestURI, name)
			assert.Equal(t, visitorHost, r.Host, name)
			assert.Equal(t, []string{visitorHost}, r.Header.Values("X-Forwarded-Host"), name)
			assert.Equal(t, []string{"http"}, r.Header.Values("X-Forwarded-Proto"), name)
			assert.Equal(t, []string{"127.0.0.1"}, r.Header.Values("X-Forwarded-For"), name)
			for _, dropped := range []string{
				"X-Forwarded-Scheme", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server",
				"Forwarded", "X-Original-Url", "X-Rewrite-Url",
				"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
			} {
				assert.Empty(t, r.Header.Values(dropped), "%s: the origin got %s", name, dropped)
			}

			clean := p.get(path)
			assert.Equal(t, "HIT", clean.Header.Get("X-Cache"), name)
			assert.NotContains(t, clean.Body, marker, "%s poisoned the stored page", name)
			assert.Equal(t, fill.Body, clean.Body)
			assert.Equal(t, hits+1, o.hits.Load(), "the clean visitor is answered from memory")
		}
	}

	// Everything at once, with a Host that differs from X-Forwarded-Host.
	all := []string{"Host", "www.example.com"}
	for i, name := range injected {
		all = append(all, name, fmt.Sprintf("/all%d.evil.example", i))
	}
	fill := p.get("/poison/all", all...)
	assert.NotContains(t, fill.Body, "evil.example")
	clean := p.get("/poison/all", "Host", "www.example.com")
	assert.Equal(t, "HIT", clean.Header.Get("X-Cache"))
	assert.NotContains(t, clean.Body, "evil.example")
	assert.Contains(t, clean.Body, "X-Forwarded-Host: www.example.com\n")
}

// ------------------------------------------- deception and path confusion

// Web cache deception: a page the origin personalises from the visitor's
// cookie, requested under a static-looking URL, is stored as the anonymous
// render (the fill carries no Cookie), and each spelling is its own key.
func TestAdversarialCacheDeceptionStoresOnlyAnonymousRender(t *testing.T) {
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

// Path confusion: every spelling reaches the origin exactly as it was
// sent and is stored under its own key, so no two spellings that differ
// on the wire share an entry, and nothing is cleaned on one side only.
func TestAdversarialPathConfusionOriginGetsExactlyTheKeyedPath(t *testing.T) {
	rec := &advRecorder{}
	o := newTestOrigin(t, rec.wrap(advReflect))
	p := startProxy(t, o.URL, nil)
	spellings := []string{
		"/account.php", "/account.php/", "/account.php/x.css", "/account.php/.css",
		"/account.php;x.css", "/account.php;jsessionid=1.css", "/account.php%3bx.css", "/account.php%3Bx.css",
		"/account.php%23x.css", "/account.php%3fx.css", "/account.php%3Fx.css",
		"/account.php%20x.css", "/account.php%2520x.css",
		"/static/%2e%2e/account.php", "/static/%2E%2E/account.php", "/static/%2e./account.php",
		"/static/..%2faccount.php", "/static/..%2Faccount.php", "/static/../account.php",
		"/static/./account.php", "/static/%2e/account.php",
		"/a/b", "/a%2fb", "/a%2Fb", "/a%252fb", "//a/b", "/a//b", "///a/b", "/%2F/a/b",
		"/%61ccount.php", "/ACCOUNT.PHP", "/account.php%2500x",
		"/x;/../account.php", "/x/;/account.php", "/x%3b/..%2faccount.php",
		"/x?", "/x?#", "/x?%23",
	}
	// The same spellings, each with the same query.
	for _, s := range spellings[:len(spellings)-3] {
		spellings = append(spellings, s+"?q=1")
	}
	seen := map[string]bool{}
	for _, s := range spellings {
		require.False(t, seen[s], "duplicate spelling %q", s)
		seen[s] = true
	}

	// A raw "#" cannot stand in a request target (RFC 9112 §3.2): it may be
	// refused, with nothing sent to the origin, or else passed as it is.
	mayRefuse := map[string]bool{"/x?#": true}
	refused := map[string]bool{}
	raw := func(target string) rawAnswer {
		return sendRaw(t, p, http.MethodGet, "GET "+target+" HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
	}
	for _, s := range spellings {
		before := len(rec.all())
		got := raw(s)
		require.NoError(t, got.Err, s)
		if mayRefuse[s] && got.Status == http.StatusBadRequest {
			assert.Len(t, rec.all(), before, "%s was refused but reached the origin", s)
			refused[s] = true
			continue
		}
		require.Equal(t, http.StatusOK, got.Status, "%s: %s", s, got.Body)
		all := rec.all()
		if !assert.Len(t, all, before+1, "%s: one origin request (a distinct key)", s) {
			continue
		}
		want := s
		if want == "/x?" {
			want = "/x" // an empty query is no query, on both sides
		}
		assert.Equal(t, want, all[before].RequestURI, "the origin receives the spelling as sent")
		assert.Contains(t, got.Body, "RequestURI: "+want+"\n")
	}
	// Every spelling is now stored under its own key: each answer is a HIT
	// that names its own spelling, so none shares another's entry.
	hits := o.hits.Load()
	for _, s := range spellings {
		if refused[s] {
			continue
		}
		got := raw(s)
		require.NoError(t, got.Err, s)
		want := s
		if want == "/x?" {
			want = "/x"
		}
		assert.Contains(t, got.Body, "RequestURI: "+want+"\n", "%s was answered with another spelling's page", s)
	}
	assert.Equal(t, hits, o.hits.Load(), "the second round is answered from memory")
}

// Bytes that cannot stand raw in an escaped path (non-ASCII, '|', '"', '\',
// '{', '^', '`') are escaped by Go's parser before the key is built. Two
// spellings may then share an entry, but only when the origin receives the
// same request target for both: the key is always what the origin got.
func TestAdversarialPathReencodingIsTheSameOnBothSides(t *testing.T) {
	rec := &advRecorder{}
	o := newTestOrigin(t, rec.wrap(advReflect))
	p := startProxy(t, o.URL, nil)
	pairs := [][2]string{
		{"/caf\xc3\xa9", "/caf%C3%A9"},
		{"/caf\xc3\xa9", "/caf%c3%a9"},
		{"/a|b", "/a%7Cb"},
		{"/a\"b", "/a%22b"},
		{`/a\b`, "/a%5Cb"},
		{`/\evil.example/x`, "/%5Cevil.example/x"},
		{"/a{b}", "/a%7Bb%7D"},
		{"/a^b", "/a%5Eb"},
		{"/a`b", "/a%60b"},
		{"/a<b>", "/a%3Cb%3E"},
	}
	fetch := func(host, target string) (uri, body string, hit bool) {
		before := len(rec.all())
		got := sendRaw(t, p, http.MethodGet, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		require.NoError(t, got.Err, target)
		require.Equal(t, http.StatusOK, got.Status, "%s: %s", target, got.Body)
		all := rec.all()
		if len(all) == before {
			return "", got.Body, true
		}
		return all[len(all)-1].RequestURI, got.Body, false
	}
	for i, pair := range pairs {
		// Each spelling alone, on its own host: what the origin receives.
		uriA, bodyA, _ := fetch(fmt.Sprintf("a%d.example", i), pair[0])
		uriB, bodyB, _ := fetch(fmt.Sprintf("b%d.example", i), pair[1])
		assert.Contains(t, bodyA, "RequestURI: "+uriA+"\n")
		assert.Contains(t, bodyB, "RequestURI: "+uriB+"\n")
		assert.True(t, strings.HasPrefix(uriA, "/") && !strings.HasPrefix(uriA, "//"), "%q reached the origin as %q", pair[0], uriA)
		// Both on one host: sharing an entry is allowed only when the origin
		// receives the same target for both.
		host := fmt.Sprintf("c%d.example", i)
		fetch(host, pair[0])
		_, body, hit := fetch(host, pair[1])
		if hit {
			assert.Equal(t, uriA, uriB, "%q and %q share an entry but reach the origin differently", pair[0], pair[1])
			assert.Contains(t, body, "RequestURI: "+uriB+"\n")
		}
	}
}

// ---------------------------------------------------- parameter cloaking

// Ignored parameters (utm_*, gclid, fbclid) are removed from what the origin
// receives, however they are spelled, so a reflected value never lands in a
// stored page that a clean URL is answered with.
func TestAdversarialParameterCloakingNeverPoisonsCleanURL(t *testing.T) {
	rec := &advRecorder{}
	o := newTestOrigin(t, rec.wrap(advReflect))
	p := startProxy(t, o.URL, nil)
	for i, tc := range []struct {
		query string // "MARK" is replaced by a unique marker
		want  string // the query the origin receives, and the clean URL's
	}{
		{"utm_source=MARK&id=1", "id=1"},
		{"id=1&utm_source=MARK", "id=1"},
		{"utm_source=MARK", ""},
		{"id=1&utm_source=x;evil=MARK", "id=1"},
		{"id=1&utm_source=x%26evil%3DMARK", "id=1"},
		{"id=1&utm_source%3Dx%26evil%3DMARK", "id=1"},
		{"%75tm_source=MARK&id=1", "id=1"},
		{"%75%74%6D_source=MARK&id=1", "id=1"},
		{"utm_%73ource=MARK&id=1", "id=1"},
		{"utm_source=MARK&utm_source=MARK2&id=1&utm_medium=MARK3", "id=1"},
		{"gclid=MARK&fbclid=MARK&id=1", "id=1"},
		{"utm_source=&id=1", "id=1"},
		{"utm_source&id=1", "id=1"},
		{"utm_=MARK&id=1", "id=1"},
		{"&&id=1&&utm_medium=MARK&", "id=1"},
		{"utm_source=MARK&&id=1&id=2", "id=1&id=2"},
		{"b=2&utm_source=MARK&a=1", "a=1&b=2"},
		{"utm_source=a+MARK+b&id=1", "id=1"},
	} {
		marker := fmt.Sprintf("cloak%dmark", i)
		path := fmt.Sprintf("/cloak/%d", i)
		query := strings.ReplaceAll(tc.query, "MARK", marker)
		clean := path
		if tc.want != "" {
			clean += "?" + tc.want
		}
		fill := p.get(path + "?" + query)
		require.Equal(t, http.StatusOK, fill.Status, "%s: %s", query, fill.Body)
		assert.NotContains(t, fill.Body, marker, "%s: the marker reached the origin", query)
		all := rec.all()
		require.NotEmpty(t, all)
		assert.Equal(t, clean, all[len(all)-1].RequestURI, "%s: what the origin received", query)

		hits := o.hits.Load()
		got := p.get(clean)
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"), "%s: the clean URL is the same key", query)
		assert.NotContains(t, got.Body, marker, "%s poisoned %s", query, clean)
		assert.Equal(t, hits, o.hits.Load())
	}

	// A ";" is not a separator: "id=1;utm_source=..." is one parameter named
	// "id", kept whole in the key and at the origin, so it never reaches the
	// page of "?id=1".
	p.get("/semi?id=1")
	got := p.get("/semi?id=1;utm_source=semimark")
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	assert.Contains(t, got.Body, "RequestURI: /semi?id=1;utm_source=semimark\n")
	clean := p.get("/semi?id=1")
	assert.Equal(t, "HIT", clean.Header.Get("X-Cache"))
	assert.NotContains(t, clean.Body, "semimark")

	// Pass-through GETs drop ignored parameters too.
	p.get("/cloak/bypass?utm_source=bypassmark&id=1", "Authorization", "Bearer x")
	all := rec.all()
	assert.Equal(t, "/cloak/bypass?id=1", all[len(all)-1].RequestURI)

	// A malformed escape in an ignored parameter is refused, not dropped.
	hits := o.hits.Load()
	bad := p.get("/cloak/bad?utm_source=%zz&id=1")
	assert.Equal(t, http.StatusBadRequest, bad.Status)
	assert.Equal(t, hits, o.hits.Load())
}

// ------------------------------------------------------ request smuggling

// advSmuggled is a request hidden in a body: if it is ever parsed as a
// request of its own, the origin sees "/smuggled" (advSmuggleCases makes
// the path unique per case, keeping its length).
const advSmuggled = "GET /smuggled HTTP/1.1\r\nHost: www.example.com\r\n\r\n"

// advSmuggleCase is one raw request. In raw, "/a " and "/smuggled" are
// made unique per case so that what reaches the origin names its case.
type advSmuggleCase struct{ name, raw string }

// advSmuggleResult is what one case got: its first answer, how many more
// answers the connection gave (a smuggled request answered), and what the
// origin received for it.
type advSmuggleResult struct {
	first  rawAnswer
	extra  int
	origin []string
}

// advSmuggleRun sends every case on its own connection, all at once, and
// reads every answer each connection gives until it closes or stays quiet.
func advSmuggleRun(t *testing.T, cases []advSmuggleCase) []advSmuggleResult {
	t.Helper()
	rec := &advRecorder{}
	o := newTestOrigin(t, rec.wrap(page("<p>origin</p>")))
	p := startProxy(t, o.URL, nil)
	results := make([]advSmuggleResult, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		raw := strings.ReplaceAll(tc.raw, "/a ", fmt.Sprintf("/a%02d ", i))
		raw = strings.ReplaceAll(raw, "/smuggled", fmt.Sprintf("/smuggl%02d", i))
		method, _, _ := strings.Cut(raw, " ")
		wg.Go(func() {
			conn, err := net.Dial("tcp", hostPort(p.URL))
			if !assert.NoError(t, err) {
				return
			}
			defer conn.Close()
			go io.WriteString(conn, raw) //nolint:errcheck // the server may close first
			br := bufio.NewReader(conn)
			for n := 0; ; n++ {
				conn.SetReadDeadline(time.Now().Add(map[bool]time.Duration{true: 10 * time.Second, false: 300 * time.Millisecond}[n == 0]))
				resp, err := http.ReadResponse(br, &http.Request{Method: method})
				if err != nil {
					if n == 0 {
						results[i].first = rawAnswer{Err: err}
					}
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if n == 0 {
					results[i].first = rawAnswer{Status: resp.StatusCode, Body: string(body)}
				} else {
					results[i].extra++
				}
				if resp.Close {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range rec.all() {
		i, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(s.RequestURI, "/smuggl"), "/a"))
		if err != nil || i < 0 || i >= len(cases) {
			assert.Failf(t, "an unexpected request reached the origin", "%s %s", s.Method, s.RequestURI)
			continue
		}
		results[i].origin = append(results[i].origin, s.Method+" "+s.RequestURI)
	}
	return results
}

// advSmuggleCases checks that every case is refused (a 4xx, or Go's own
// 501/505) and that nothing of it reaches the origin. It returns each
// case's first answer, by name.
func advSmuggleCases(t *testing.T, cases []advSmuggleCase) map[string]rawAnswer {
	t.Helper()
	first := make(map[string]rawAnswer, len(cases))
	for i, r := range advSmuggleRun(t, cases) {
		name := cases[i].name
		first[name] = r.first
		assert.True(t, refused(r.first), "%s: answered %d %q, want a 4xx", name, r.first.Status, r.first.Body)
		assert.Zero(t, r.extra, "%s: a smuggled request was answered", name)
		assert.Empty(t, r.origin, "%s reached the origin", name)
	}
	return first
}

// Framing attacks that a bodiless method or isrproxy's own refusals catch:
// each is refused with a 4xx (or Go's own 400/501) before anything reaches
// the origin.
func TestSmugglingFramingAttacksAreRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	sl := strconv.Itoa(len(advSmuggled))                     // the hidden request as a body
	hexLen := strconv.FormatInt(int64(len(advSmuggled)), 16) // ... and as one chunk
	whole := strconv.Itoa(len("0\r\n\r\n" + advSmuggled))    // a Content-Length that hides it, where chunked does not
	got := advSmuggleCases(t, []advSmuggleCase{
		{"GET CL+TE", "GET /a HTTP/1.1\r\n" + h + "Content-Length: " + whole + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"GET TE+CL", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: " + whole + "\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"HEAD CL+TE", "HEAD /a HTTP/1.1\r\n" + h + "Content-Length: " + whole + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"duplicate Content-Length", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: " + sl + "\r\n\r\nhello" + advSmuggled},
		{"duplicate Content-Length in one line", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 5, " + sl + "\r\n\r\nhello" + advSmuggled},
		{"GET duplicate Content-Length", "GET /a HTTP/1.1\r\n" + h + "Content-Length: 0\r\nContent-Length: " + sl + "\r\n\r\n" + advSmuggled},
		{"Content-Length +5", "POST /a HTTP/1.1\r\n" + h + "Content-Length: +5\r\n\r\nhello" + advSmuggled},
		{"Content-Length -1", "POST /a HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n" + advSmuggled},
		{"Content-Length 0x5", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 0x5\r\n\r\nhello" + advSmuggled},
		{"TE chunked, identity", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE identity, chunked", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE xchunked", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE chunked-false", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked-false\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE two lines", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE quoted", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE header name with space", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE header line folded first", "POST /a HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + h + "Content-Length: 5\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"TE with NUL", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\x00\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"GET TE tab", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding:\tchunked\r\nContent-Length: " + whole + "\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"GET TE space", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding:  chunked\r\nContent-Length: " + whole + "\r\n\r\n0\r\n\r\n" + advSmuggled},
		{"fat GET", "GET /a HTTP/1.1\r\n" + h + "Content-Length: " + sl + "\r\n\r\n" + advSmuggled},
		{"fat HEAD", "HEAD /a HTTP/1.1\r\n" + h + "Content-Length: " + sl + "\r\n\r\n" + advSmuggled},
		{"GET chunked body", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n" + hexLen + "\r\n" + advSmuggled + "\r\n0\r\n\r\n"},
		{"Connection: Content-Length", "GET /a HTTP/1.1\r\n" + h + "Content-Length: 0\r\nConnection: Content-Length\r\n\r\n"},
		{"Connection: content-length on POST", "POST /a HTTP/1.1\r\n" + h + "Content-Length: " + sl + "\r\nConnection: keep-alive, content-length\r\n\r\n" + advSmuggled},
		{"Connection: Host", "GET /a HTTP/1.1\r\n" + h + "Connection: close, Host\r\n\r\n"},
		{"Connection: Transfer-Encoding", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n0\r\n\r\n"},
		{"Connection: Cookie", "GET /a HTTP/1.1\r\n" + h + "Cookie: x=1\r\nConnection: Cookie\r\n\r\n"},
		{"Connection: Authorization", "GET /a HTTP/1.1\r\n" + h + "Authorization: Bearer x\r\nConnection: Authorization\r\n\r\n"},
		{"Connection: Host on a second line", "GET /a HTTP/1.1\r\n" + h + "Connection: keep-alive\r\nConnection: host\r\n\r\n"},
		{"Upgrade: h2c", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"},
		{"Upgrade: H2C on POST", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: H2C\r\n\r\n"},
		{"Upgrade list with h2c", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n"},
		{"Upgrade: h2c on a second line", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n"},
		{"two Host headers", "GET /a HTTP/1.1\r\n" + h + "Host: evil.example\r\n\r\n"},
		{"no Host on HTTP/1.1", "GET /a HTTP/1.1\r\n\r\n"},
		{"space in request target", "GET /a " + advSmuggled},
		{"HTTP/2.0 request line", "GET /a HTTP/2.0\r\n" + h + "\r\n"},
		{"NUL in request target", "GET /a\x00b HTTP/1.1\r\n" + h + "\r\n"},
		{"CR in header value", "GET /a HTTP/1.1\r\n" + h + "X-A: b\rTransfer-Encoding: chunked\r\n\r\n"},
	})
	// SPEC §3 names these refusals: 400, whoever answers.
	for _, name := range []string{
		"fat GET", "fat HEAD", "GET chunked body", "GET CL+TE", "Connection: Content-Length", "Connection: Host",
		"Connection: Transfer-Encoding", "Connection: Cookie", "Connection: Authorization", "Upgrade: h2c",
		"Upgrade: H2C on POST", "Upgrade list with h2c", "Upgrade: h2c on a second line", "duplicate Content-Length",
	} {
		assert.Equal(t, http.StatusBadRequest, got[name].Status, name)
	}
}

// After a request whose end the framing check does not follow itself (a
// chunked body, an Upgrade that is not switched), whoever answers it, the
// connection closes: a request hidden behind it is never read, so it can
// never bypass the check.
func TestSmugglingNothingIsReadAfterAnUnframedRequest(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	bareLF := strings.ReplaceAll(advSmuggled, "\r\n", "\n") // refused on a fresh connection
	chunk := "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	cases := []advSmuggleCase{
		{"Upgrade not switched, page", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: foo\r\n\r\n" + bareLF},
		{"Upgrade not switched, then a well-formed request", "GET /a HTTP/1.1\r\n" + h + "Upgrade: websocket\r\n\r\n" + advSmuggled},
		{"chunked POST to a page", "POST /a HTTP/1.1\r\n" + h + chunk + bareLF},
		{"chunked POST to the API", "POST /api/revalidate HTTP/1.1\r\n" + h + chunk + bareLF},
		{"chunked PUT to the API (405)", "PUT /api/revalidate HTTP/1.1\r\n" + h + chunk + bareLF},
		{"chunked OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + h + chunk + bareLF},
		{"Upgrade on OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + h + "Upgrade: foo\r\n\r\n" + bareLF},
		{"Upgrade on the API", "GET /api/revalidate/jobs/x HTTP/1.1\r\n" + h + "Upgrade: foo\r\n\r\n" + advSmuggled},
	}
	for i, r := range advSmuggleRun(t, cases) {
		name := cases[i].name
		assert.NotZero(t, r.first.Status, "%s: no first answer (%v)", name, r.first.Err)
		assert.Zero(t, r.extra, "%s: a request behind it was answered", name)
		for _, got := range r.origin {
			assert.NotContains(t, got, "/smuggl", "%s: the hidden request reached the origin", name)
		}
	}
}

// A malformed chunked body on a pass-through: Go only finds the fault while
// the body streams to the origin, so the origin may see the request begin,
// but the exchange is aborted, the hidden request never reaches it, and
// the visitor's fault is answered 400, not blamed on the origin (502).
func TestSmugglingMalformedChunkedBodyIsRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	cases := []advSmuggleCase{
		{"chunk size with bare LF", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + advSmuggled},
		{"chunk data with bare LF", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n" + advSmuggled},
		{"chunk size overflow", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + advSmuggled},
		{"chunk size not hex", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n" + advSmuggled},
		{"chunk longer than its size", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + advSmuggled},
	}
	for i, r := range advSmuggleRun(t, cases) {
		name := cases[i].name
		assert.True(t, refused(r.first), "%s: answered %d %q, want a 4xx", name, r.first.Status, r.first.Body)
		assert.Zero(t, r.extra, "%s: a smuggled request was answered", name)
		for _, got := range r.origin {
			assert.NotContains(t, got, "/smuggl", "%s: the hidden request reached the origin", name)
		}
	}
}

// CL.TE and TE.CL: a body framed both ways, with the Transfer-Encoding
// plain or obfuscated in ways some front ends do not recognise (a tab, a
// leading space, a folded line). RFC 9112 §6.1 says such a message "ought
// to be handled as an error"; nginx and Varnish answer 400. A front end
// before isrproxy that frames by Content-Length would otherwise disagree
// with it about where the next request starts.
func TestSmugglingContentLengthWithTransferEncodingIsRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	body := "0\r\n\r\n" + advSmuggled
	cl := "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	advSmuggleCases(t, []advSmuggleCase{
		{"POST CL+TE", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: chunked\r\n\r\n" + body},
		{"POST TE+CL", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n" + cl + "\r\n" + body},
		{"POST CL+TE tab", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding:\tchunked\r\n\r\n" + body},
		{"POST CL+TE leading space", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding:  chunked\r\n\r\n" + body},
		{"POST CL+TE trailing space", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: chunked \r\n\r\n" + body},
		{"POST CL+TE upper case", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: CHUNKED\r\n\r\n" + body},
		{"POST CL+TE folded", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding:\r\n chunked\r\n\r\n" + body},
		{"PUT CL+TE", "PUT /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: chunked\r\n\r\n" + body},
	})
}

// Bare LF line endings: a front end that only ends lines at CRLF sees one
// header where isrproxy sees two. RFC 9112 §2.2 lets a recipient accept a
// bare LF, but the issue asks for a refusal, as for every other framing
// ambiguity.
func TestSmugglingBareLFIsRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	advSmuggleCases(t, []advSmuggleCase{
		{"bare LF everywhere", "GET /a HTTP/1.1\nHost: www.example.com\n\n"},
		{"bare LF after request line", "GET /a HTTP/1.1\n" + h + "\r\n"},
		{"bare LF hides a header", "GET /a HTTP/1.1\r\n" + h + "X-A: b\nConnection: close\r\n\r\n"},
		{"bare LF hides Transfer-Encoding", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 5\r\nX-A: b\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + advSmuggled},
	})
}

// HTTP/2 over cleartext is refused in both forms: the Upgrade header
// (SPEC §3) and prior knowledge, the "PRI * HTTP/2.0" preface, which Go
// hands to the handler with an unbounded body.
func TestSmugglingH2CPriorKnowledgeIsRefused(t *testing.T) {
	advSmuggleCases(t, []advSmuggleCase{
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + advSmuggled},
	})
}

// A CONNECT request names a host in its target: it must never reach the
// origin, which may be able to tunnel to it. Only origin-form targets
// ("/...") are ever sent to the origin.
func TestAdversarialConnectNeverReachesOrigin(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	rec := &advRecorder{}
	o := newTestOrigin(t, rec.wrap(page("origin")))
	p := startProxy(t, o.URL, nil)
	eh := strings.TrimPrefix(evil.URL, "http://")
	for _, raw := range []string{
		"CONNECT " + eh + " HTTP/1.1\r\nHost: " + eh + "\r\n\r\n",
		"CONNECT " + eh + " HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
	} {
		got := sendRaw(t, p, http.MethodConnect, raw)
		assert.True(t, refused(got), "CONNECT answered %d %q", got.Status, got.Body)
	}
	for _, s := range rec.all() {
		assert.True(t, strings.HasPrefix(s.RequestURI, "/"), "the origin received %s %q", s.Method, s.RequestURI)
	}
	assert.EqualValues(t, 0, evil.hits.Load())
}

// A GET or HEAD in asterisk form ("GET * HTTP/1.1") is no page: RFC 9112
// §3.2.4 allows "*" for OPTIONS only. It is refused, never keyed nor sent
// to the origin as a request for "*".
func TestAdversarialAsteriskFormPageRequestIsRefused(t *testing.T) {
	rec := &advRecorder{}
	o := newTestOrigin(t, rec.wrap(page("<p>origin</p>")))
	p := startProxy(t, o.URL, nil)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		got := sendRaw(t, p, method, method+" * HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
		assert.True(t, refused(got), "%s * answered %d %q", method, got.Status, got.Body)
	}
	for _, s := range rec.all() {
		assert.Failf(t, "an asterisk-form page request reached the origin", "%s %q", s.Method, s.RequestURI)
	}
}

// A revalidate path whose query holds a space (possible in JSON and in an
// encoded query string) never breaks the request line of the refetch: it
// is refused, or escaped so the origin reads one request target.
func TestAdversarialRevalidateQueryCannotBreakTheRequestLine(t *testing.T) {
	rec := &advRecorder{}
	o := newTestOrigin(t, rec.wrap(page("<p>origin</p>")))
	p := startProxy(t, o.URL, nil)
	for _, target := range []string{"/x?a=b HTTP/1.0", "/x?q=hello world", "/x?a= /admin"} {
		for _, form := range []string{"query", "json"} {
			var got answer
			if form == "query" {
				got = p.revalidate("path=" + url.QueryEscape(target))
			} else {
				b, err := json.Marshal(map[string]any{"paths": []string{target}})
				require.NoError(t, err)
				got = p.request(http.MethodPost, "/api/revalidate", bytes.NewReader(b),
					"Authorization", "Bearer "+apiSecret, "Content-Type", "application/json")
			}
			assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, got.Status, "%s %q: %s", form, target, got.Body)
		}
	}
	for _, s := range rec.all() {
		assert.NotContains(t, s.RequestURI, " ", "the origin read a request target with a space")
	}
}

// ------------------------------------------------------------ huge inputs

// A header block over the server's limit gets 431 and reaches nothing.
func TestAdversarialHugeHeaderBlockGets431(t *testing.T) {
	o := newTestOrigin(t, page("<p>origin</p>"))
	p := startProxy(t, o.URL, nil)
	one := "GET /a HTTP/1.1\r\nHost: www.example.com\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n"
	var many strings.Builder
	many.WriteString("GET /a HTTP/1.1\r\nHost: www.example.com\r\n")
	for i := range 10000 {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	many.WriteString("\r\n")
	cookies := "GET /a HTTP/1.1\r\nHost: www.example.com\r\nCookie: " + strings.Repeat("c=1; ", 40<<10) + "\r\n\r\n"
	for name, raw := range map[string]string{"one huge header": one, "many headers": many.String(), "huge cookie": cookies} {
		got := sendRaw(t, p, http.MethodGet, raw)
		require.NoError(t, got.Err, name)
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, got.Status, name)
	}
	assert.EqualValues(t, 0, o.hits.Load())
	assert.Equal(t, http.StatusOK, p.get("/a").Status, "the server still serves")
}

// A huge request body is streamed to the origin as it arrives, whole and
// never buffered: the origin has the first megabytes while the client still
// holds the rest. Nothing is stored.
func TestAdversarialHugeRequestBodyIsStreamedNotStored(t *testing.T) {
	const size = 48 << 20
	const firstPart = 4 << 20
	var received atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			io.WriteString(w, "<p>get</p>")
			return
		}
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Body.Read(buf)
			h.Write(buf[:n])
			if received.Add(int64(n)) >= firstPart {
				once.Do(func() { close(reached) })
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d %x", received.Load(), h.Sum(nil))
	})
	p := startProxy(t, o.URL, map[string]string{"MAX_OBJECT_BYTES": "1MiB"})

	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for sent := 0; sent < size; sent += len(chunk) {
			if sent == firstPart+len(chunk) {
				// Hold the rest until the origin has the first part: a
				// proxy that buffered the whole body would never get here.
				select {
				case <-reached:
				case <-time.After(10 * time.Second):
					pw.CloseWithError(fmt.Errorf("the origin got %d bytes while the client held the rest: not streamed", received.Load()))
					return
				}
			}
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	for sent := 0; sent < size; sent += len(chunk) {
		want.Write(chunk)
	}
	req, err := http.NewRequest(http.MethodPost, p.URL+"/upload", pr)
	require.NoError(t, err)
	req.ContentLength = size
	got := p.do(req)
	require.Equal(t, http.StatusOK, got.Status, got.Body)
	assert.Equal(t, fmt.Sprintf("%d %x", size, want.Sum(nil)), got.Body, "the origin got the whole body")
	assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
	hits := o.hits.Load()
	after := p.get("/upload")
	assert.Equal(t, "MISS", after.Header.Get("X-Cache"), "a POST never stores")
	assert.Equal(t, "<p>get</p>", after.Body)
	assert.Equal(t, hits+1, o.hits.Load())
}

// A response larger than MAX_OBJECT_BYTES, with or without Content-Length,
// reaches every client whole and is never stored.
func TestAdversarialHugeResponseIsStreamedWholeNotStored(t *testing.T) {
	const size = 3 << 20
	body := make([]byte, size)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rnd.Uint32())
	}
	want := fmt.Sprintf("%x", sha256.Sum256(body))
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		// Written in pieces, flushed: no Content-Length unless set above.
		for off := 0; off < size; off += 256 << 10 {
			w.Write(body[off : off+256<<10])
			w.(http.Flusher).Flush()
		}
	})
	p := startProxy(t, o.URL, map[string]string{"MAX_OBJECT_BYTES": "1MiB"})
	for _, path := range []string{"/sized", "/chunked"} {
		for i := range 3 {
			hits := o.hits.Load()
			got := p.get(path)
			require.Equal(t, http.StatusOK, got.Status, path)
			assert.Len(t, got.Body, size, "%s #%d", path, i)
			assert.Equal(t, want, fmt.Sprintf("%x", sha256.Sum256([]byte(got.Body))), "%s #%d: the body arrived whole", path, i)
			assert.NotEqual(t, "HIT", got.Header.Get("X-Cache"), "%s #%d was stored", path, i)
			assert.Greater(t, o.hits.Load(), hits, "%s #%d: every answer comes from the origin", path, i)
		}
	}
}

// ---------------------------------------------------- Set-Cookie sharing

// Under 100 concurrent cold requests for one key, a response with
// Set-Cookie is shown only to the visitor it was made for: each visitor
// sees no Set-Cookie or the one the origin made for its own request.
func TestAdversarialSetCookieNeverSharedUnderConcurrency(t *testing.T) {
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

// ------------------------------------------------------ SSRF via the API

// advSSRFValues are hostile target values; EVIL stands for the address of
// a server that must never be contacted.
var advSSRFValues = []string{
	"//EVIL/x", "///EVIL/x", "////EVIL/x", "http://EVIL/x", "https://EVIL/x", "HTTP://EVIL/", "http:EVIL/x",
	"http:/EVIL/x", "javascript://EVIL/%0a", "ftp://EVIL/", "//user@EVIL/x", "EVIL/x", "EVIL",
	`\\EVIL\x`, `/\EVIL/x`, `\/EVIL/x`, `/\/EVIL/x`, "/%2F%2FEVIL/x", "/%2f%2fEVIL/x", "/%2F/EVIL/x",
	"/%5C%5CEVIL/x", "%2F%2FEVIL/x", "@EVIL/x", "/@EVIL/x", "/x@EVIL", " //EVIL/x", "\t//EVIL/x",
	"/x\r\nHost: EVIL", "/x\nGET http://EVIL/ HTTP/1.1", "/x%0d%0aHost:%20EVIL", "/x%0aHost: EVIL",
	"/x HTTP/1.1\r\nHost: EVIL\r\n\r\n", "/x?a=\r\nHost: EVIL", "/x?a=%0d%0aHost:%20EVIL", "/x?a=b HTTP/1.1\r\nHost: EVIL",
	"/x?u=http://EVIL/", "/x?u=//EVIL/", "/x#@EVIL", "/x?#//EVIL",
	"/..//EVIL/x", "/.//EVIL/x", "/%2e%2e//EVIL/x", "/x/../../EVIL", "/\u3000//EVIL", "/\uff0f\uff0fEVIL",
}

// advSSRFHosts are hostile host values.
var advSSRFHosts = []string{
	"evil:80@x", "x@EVIL", "EVIL/x", "http://EVIL", "//EVIL", "EVIL\r\nX-A: b", "EVIL#x", "EVIL?x",
	`EVIL\x`, " EVIL", "EVIL ", "[::1]:80@EVIL", "user:pass@EVIL", "EVIL%2f", "EVIL\x00",
}

// advBadPath says whether SPEC §5 refuses v as a path: it must begin with
// exactly one "/" and hold no scheme, authority, fragment, backslash or
// control character, raw or percent-encoded.
func advBadPath(v string) bool {
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "#\\") {
		return true
	}
	if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return true
	}
	path, _, _ := strings.Cut(v, "?")
	dec, err := url.PathUnescape(path)
	return err != nil || strings.IndexFunc(dec, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

// advBadTag says whether v is refused as a tag: empty, or holding
// whitespace, a comma or a control character.
func advBadTag(v string) bool {
	return v == "" || strings.ContainsRune(v, ',') ||
		strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r < 0x20 || r == 0x7f }) >= 0
}

// Promise 9: no field of the revalidate API, in the query or in JSON, can
// make isrproxy contact anything but ORIGIN_URL; the origin only receives
// origin-form requests whose path begins with exactly one "/". A refused
// call answers 400 and reaches nothing.
func TestAdversarialSSRFThroughRevalidateAPI(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	eh := strings.TrimPrefix(evil.URL, "http://")
	for _, allowed := range []string{"", "www.example.com"} {
		t.Run("ALLOWED_HOSTS="+allowed, func(t *testing.T) {
			rec := &advRecorder{}
			o := newTestOrigin(t, rec.wrap(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Cache-Tag", "all")
				io.WriteString(w, "<p>origin</p>")
			}))
			p := startProxy(t, o.URL, map[string]string{"ALLOWED_HOSTS": allowed})
			host := "www.example.com"
			require.Equal(t, http.StatusOK, p.get("/x", "Host", host).Status)

			// call makes one API call; wantBad says that SPEC §5 refuses it.
			call := func(what string, wantBad bool, query string, jsonBody any) {
				t.Helper()
				var body io.Reader
				header := []string{"Authorization", "Bearer " + apiSecret, "Host", host}
				if jsonBody != nil {
					b, err := json.Marshal(jsonBody)
					require.NoError(t, err)
					body = bytes.NewReader(b)
					header = append(header, "Content-Type", "application/json")
				}
				before := len(rec.all())
				got := p.request(http.MethodPost, "/api/revalidate?"+query, body, header...)
				assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, got.Status, "%s: %s", what, got.Body)
				if wantBad {
					assert.Equal(t, http.StatusBadRequest, got.Status, "%s: %s", what, got.Body)
				}
				if got.Status == http.StatusBadRequest {
					assert.Len(t, rec.all(), before, "%s: a refused call reached the origin", what)
				}
				assert.True(t, json.Valid([]byte(got.Body)), "%s: %s", what, got.Body)
			}
			for _, v := range advSSRFValues {
				v = strings.ReplaceAll(v, "EVIL", eh)
				q := url.QueryEscape(v)
				badPath, badPrefix, badTag := advBadPath(v), advBadPath(v) || strings.Contains(v, "?"), advBadTag(v)
				call("path "+v, badPath, "path="+q, nil)
				call("path beside /x "+v, badPath, "path=/x&path="+q, nil)
				call("prefix "+v, badPrefix, "prefix="+q, nil)
				call("tag "+v, badTag, "tag="+q, nil)
				call("secret query "+v, badPath, "secret="+url.QueryEscape(apiSecret)+"&path="+q, nil)
				call("JSON paths "+v, badPath, "", map[string]any{"paths": []string{v}})
				call("JSON path string "+v, badPath, "", map[string]any{"paths": v})
				call("JSON prefixes "+v, badPrefix, "", map[string]any{"prefixes": []string{v}})
				call("JSON tags "+v, badTag, "", map[string]any{"tags": []string{v}})
			}
			for _, hv := range append(slices.Clone(advSSRFHosts), advSSRFValues...) {
				hv = strings.ReplaceAll(hv, "EVIL", eh)
				bad := strings.ContainsAny(strings.TrimSpace(hv), "@/\\ #?%\r\n\t\x00")
				call("host "+hv, bad, "path=/x&host="+url.QueryEscape(hv), nil)
				call("host prefix "+hv, bad, "prefix=/&host="+url.QueryEscape(hv), nil)
				call("JSON host "+hv, bad, "", map[string]any{"paths": []string{"/x"}, "tags": []string{"all"}, "host": hv})
			}
			// The revalidate request's own Host is the default host.
			for _, hv := range []string{eh, "evil:80@x", "x@" + eh} {
				got := p.request(http.MethodPost, "/api/revalidate?path=/x", nil,
					"Authorization", "Bearer "+apiSecret, "Host", hv)
				assert.NotEqual(t, http.StatusInternalServerError, got.Status, hv)
				assert.Less(t, got.Status, 500, "Host %s: %s", hv, got.Body)
			}

			assert.EqualValues(t, 0, evil.hits.Load(), "the evil server was contacted")
			assert.True(t, slices.ContainsFunc(rec.all(), func(s advSeen) bool {
				return strings.HasPrefix(s.RequestURI, "/%2F%2F"+eh)
			}), "an escaped \"//\" path is a path on the origin, refetched there")
			for _, s := range rec.all() {
				assert.Equal(t, http.MethodGet, s.Method)
				assert.True(t, strings.HasPrefix(s.RequestURI, "/") && !strings.HasPrefix(s.RequestURI, "//"),
					"the origin received %q", s.RequestURI)
				path, _, _ := strings.Cut(s.RequestURI, "?")
				assert.NotContains(t, path, "://")
				assert.False(t, strings.ContainsAny(s.Host, "@/\\ \t\r\n#?"), "the origin received Host %q", s.Host)
				if allowed != "" {
					assert.Equal(t, allowed, s.Host, "only the allowed host is asked for")
				}
			}
		})
	}
}

// Uploads trickled by anyone hold origin slots for as long as they last:
// they may hold only their share of ORIGIN_MAX_CONCURRENCY, so fills and
// the revalidate API still reach the origin.
func TestSlowUploadsCannotStarveFillsAndRevalidations(t *testing.T) {
	var uploads atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			uploads.Add(1)
			io.Copy(io.Discard, r.Body) // as long as the client trickles
			return
		}
		io.WriteString(w, "<p>page</p>")
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_MAX_CONCURRENCY": "4"})
	for i := range 6 {
		conn, err := net.Dial("tcp", hostPort(p.URL))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /up/%d HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 1000\r\n\r\nabc", i)
	}
	require.Eventually(t, func() bool { return uploads.Load() == 3 }, 5*time.Second, 5*time.Millisecond,
		"pass-through holds 3 of the 4 slots")

	got := p.get("/fresh")
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	res := p.revalidate("path=/fresh2")
	assert.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.EqualValues(t, 3, uploads.Load(), "the other uploads wait their turn")
}
