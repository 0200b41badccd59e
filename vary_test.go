package main

// Vary: a stored variant is served only to requests that match it, never
// to another, even while misses are coalesced; Vary: * is never stored.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A stored variant is served only to requests whose values of every header
// its Vary names match those of the request that produced it.
func TestVaryVariantIsServedOnlyToMatchingRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"one header", varyVariantsNeverCross},
		{"several headers over several lines", varyWithSeveralHeadersAndRepeatedLines},
		{"an absent header is not an empty one", varyAbsentHeaderIsNotAnEmptyOne},
	} {
		t.Run(tc.name, tc.run)
	}
}

// Vary: a stored variant is only served to requests whose Vary header
// values match the request that produced it.
func varyVariantsNeverCross(t *testing.T) {
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

// A response varying on several headers, named over several Vary lines in
// any case, is served only to requests whose values of all of them match
// the request that produced it; other headers do not matter.
func varyWithSeveralHeadersAndRepeatedLines(t *testing.T) {
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
		assert.Equal(t, bodies[c], got.Body, "%v got another variant", c) // too small to be gzipped
		plain := assertStored(t, p, o, "/vary", header(c)...)
		assert.Equal(t, bodies[c], plain.Body, "%v got another variant", c)
	}
	// A header sent on two lines is not the variant of its first line.
	two := p.request(http.MethodGet, "/vary", nil, "X-Lang", "en", "X-Lang", "fr", "X-Theme", "dark", "X-Device", "mobile")
	assert.Contains(t, two.Body, `lang=["en" "fr"]`, "a two-line X-Lang got a one-line variant's page")
}

// RFC 9111 §4.1: a header absent from a request only matches a stored
// response whose request also lacked it; an empty value is not absence.
func varyAbsentHeaderIsNotAnEmptyOne(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "X-Lang")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "lang=%q", r.Header.Values("X-Lang"))
	})
	p := startProxy(t, o.URL, nil)
	assert.Equal(t, `lang=[""]`, assertNotStored(t, p, o, "/absent", "X-Lang", "").Body)
	assert.Equal(t, `lang=[]`, p.get("/absent").Body, "a request without X-Lang got the empty X-Lang variant")
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
