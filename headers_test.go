package main

// Stored headers are the origin's end-to-end headers, exactly: hop-by-hop
// headers never stored nor replayed, Date kept.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hop-by-hop response headers, and those the origin names in Connection,
// are never stored nor replayed.
func TestHopByHopResponseHeadersAreNeverStoredNorReplayed(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"fixed hop-by-hop names", hopByHopResponseHeadersAreNotStored},
		{"names listed in Connection, on every kind of answer", connectionNamedResponseHeadersNeverStoredOrReplayed},
	} {
		t.Run(tc.name, tc.run)
	}
}

// Hop-by-hop response headers, and those the origin names in Connection,
// are not stored.
func hopByHopResponseHeadersAreNotStored(t *testing.T) {
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

// Response headers that are hop-by-hop, or named in the origin's
// Connection header (any case, any line), are never stored nor replayed:
// not on the filling answer, a HIT, a HEAD, a plain or gzip answer, a
// refetched page, nor a pass-through.
func connectionNamedResponseHeadersNeverStoredOrReplayed(t *testing.T) {
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

// TAG_HEADERS: every listed header tags the page, its values split on
// spaces and commas, and none of them ever reaches a visitor: not on a
// MISS, a HIT (plain or gzip), a HEAD, a refetched page, an unstored
// answer, nor a pass-through. A header left off the list is an ordinary
// header: stored and sent.
func TestTagHeadersTagThePageAndNeverReachVisitors(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html")
		h.Set("Cache-Tag", "ct-"+strings.TrimPrefix(r.URL.Path, "/t/"))
		h.Set("Surrogate-Key", "sk-a sk-b")
		h.Set("Cache-Tags", "cts-a,cts-b")
		h["X-Cache-Tags"] = []string{"xct-a", "xct-b, xct-c"}
		h.Set("X-Kept", "kept")
		if strings.HasSuffix(r.URL.Path, "/private") {
			h.Set("Cache-Control", "private")
		}
		if strings.HasSuffix(r.URL.Path, "/down") {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, strings.Repeat("<p>tagged</p>", 100))
	})
	p := startProxy(t, o.URL, nil)
	tagHeaders := []string{"Cache-Tag", "Surrogate-Key", "Cache-Tags", "X-Cache-Tags"}
	check := func(what string, a answer) {
		t.Helper()
		assert.Equal(t, "kept", a.Header.Get("X-Kept"), what)
		for _, name := range tagHeaders {
			assert.Empty(t, a.Header.Values(name), "%s: %s sent to a visitor", what, name)
		}
	}
	check("MISS", p.get("/t/1"))
	check("HIT", assertStored(t, p, o, "/t/1"))
	check("HIT gzip", assertStored(t, p, o, "/t/1", "Accept-Encoding", "gzip"))
	check("HEAD", p.request(http.MethodHead, "/t/1", nil))
	check("BYPASS", p.get("/t/1", "Authorization", "Bearer x"))
	check("POST", p.request(http.MethodPost, "/t/1", strings.NewReader("x")))
	check("unstored", p.get("/t/private"))
	check("pass-through key", p.get("/t/private"))
	check("origin 5xx", p.get("/t/down"))
	res := p.revalidate("path=/t/1")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	check("refetched", assertStored(t, p, o, "/t/1"))

	// Each header tags the page, each value split on spaces and commas.
	for _, tag := range []string{"ct-1", "sk-b", "cts-a", "cts-b", "xct-a", "xct-c"} {
		p.get("/t/1")
		res := p.revalidate("tag=" + tag + "&mode=purge")
		require.Equal(t, http.StatusOK, res.Status, res.Body)
		assert.Equal(t, "/t/1", decodeAPI(t, res).Results[0].Path, "tag %s", tag)
		assertNotStored(t, p, o, "/t/1")
	}

	// A custom list: only its headers tag and are withheld.
	c := startProxy(t, o.URL, map[string]string{"TAG_HEADERS": "x-cache-tags"})
	got := c.get("/t/2")
	assert.Empty(t, got.Header.Values("X-Cache-Tags"))
	assert.Equal(t, "ct-2", got.Header.Get("Cache-Tag"), "not on the list: an ordinary header")
	assert.Equal(t, "ct-2", assertStored(t, c, o, "/t/2").Header.Get("Cache-Tag"))
	res = c.revalidate("tag=ct-2&mode=purge")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assertStored(t, c, o, "/t/2")
	res = c.revalidate("tag=xct-b&mode=purge")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assertNotStored(t, c, o, "/t/2")
}
