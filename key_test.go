package main

// The cache key: host normalised, path as written, query normalised with
// the ignored parameters removed; the origin receives exactly what is keyed.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Path confusion: every spelling reaches the origin exactly as it was
// sent and is stored under its own key, so no two spellings that differ
// on the wire share an entry, and nothing is cleaned on one side only.
func TestEverySpellingOfAPathReachesTheOriginAsKeyed(t *testing.T) {
	rec := &recorder{}
	o := newTestOrigin(t, rec.wrap(reflectOrigin))
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
func TestPathReencodingIsTheSameInKeyAndOriginRequest(t *testing.T) {
	rec := &recorder{}
	o := newTestOrigin(t, rec.wrap(reflectOrigin))
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

// KEEP_QUERY_PARAMS: when set, only the listed parameters (a trailing "*"
// for a prefix) stay in the key and reach the origin, on fills and
// pass-through GETs alike; IGNORE_QUERY_PARAMS still applies. Made-up
// parameters neither make new copies of a page nor reach the origin, and
// a revalidation by path names the same key.
func TestKeepQueryParamsKeepsOnlyTheListedParameters(t *testing.T) {
	o := newTestOrigin(t, page("<p>q</p>"))
	p := startProxy(t, o.URL, map[string]string{
		"KEEP_QUERY_PARAMS":   "p,page_id,s,cat,paged,utm_*",
		"IGNORE_QUERY_PARAMS": "utm_source",
	})
	p.get("/?p=1&v=9")
	assert.Equal(t, "/?p=1", o.lastRequest().RequestURI)
	assertStored(t, p, o, "/?p=1")
	assertStored(t, p, o, "/?v=10&p=1&cachebuster=3&utm_source=x")

	p.get("/?cachebuster=1")
	assert.Equal(t, "/", o.lastRequest().RequestURI)
	assertStored(t, p, o, "/")
	assertStored(t, p, o, "/?cachebuster=2")

	p.get("/search?s=a+b&paged=2&utm_medium=m&x=1")
	assert.Equal(t, "/search?paged=2&s=a+b&utm_medium=m", o.lastRequest().RequestURI)

	p.get("/?p=1&v=9", "Authorization", "Bearer x")
	assert.Equal(t, "/?p=1", o.lastRequest().RequestURI, "a pass-through GET gets the kept parameters only")

	res := p.revalidate("path=" + url.QueryEscape("/?p=1&v=9"))
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, "/?p=1", decodeAPI(t, res).Results[0].Path)
	assert.Equal(t, "/?p=1", o.lastRequest().RequestURI)

	assert.Equal(t, http.StatusBadRequest, p.get("/?p=1&junk=%zz").Status, "a dropped parameter's escapes are still checked")

	off := startProxy(t, o.URL, map[string]string{"KEEP_QUERY_PARAMS": "off"})
	off.get("/?p=1&v=9")
	assert.Equal(t, "/?p=1&v=9", o.lastRequest().RequestURI, "off keeps every parameter")
}
