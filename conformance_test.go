package main

// HTTP caching conformance: compression only when worth it, bodies in
// other codings stored as received, Vary values compared after
// normalisation, and If-Modified-Since without Last-Modified
// (docs/behaviour.md#compression, #vary, #conditional-requests).

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A body below COMPRESS_MIN_BYTES, or one gzip cannot shrink, is stored as
// received: its visitors get the origin's bytes and headers exactly, gzip
// client or not.
func TestCompressionOnlyWhenWorthIt(t *testing.T) {
	noise := make([]byte, 4096)
	rand.Read(noise)
	bodies := map[string]string{
		"/small":  strings.Repeat("s", 1023),
		"/enough": strings.Repeat("e", 1024),
		"/noise":  string(noise),
		"/custom": strings.Repeat("c", 300),
	}
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("ETag", `"x1"`)
		w.Header().Set("Vary", "accept-language")
		io.WriteString(w, bodies[r.URL.Path])
	})
	p := startProxy(t, o.URL, nil)
	for path := range bodies {
		p.get(path)
	}
	for _, path := range []string{"/small", "/noise"} {
		for _, ae := range []string{"gzip", ""} {
			got := assertStored(t, p, o, path, "Accept-Encoding", ae)
			assert.Equal(t, bodies[path], got.Body, "%s %q", path, ae)
			assert.Empty(t, got.Header.Get("Content-Encoding"), "%s %q", path, ae)
			assert.Equal(t, `"x1"`, got.Header.Get("ETag"), "%s %q: the origin's tag, strong", path, ae)
			assert.Equal(t, []string{"accept-language"}, got.Header.Values("Vary"), "%s %q: the origin's Vary as written", path, ae)
			assert.Equal(t, strconv.Itoa(len(bodies[path])), got.Header.Get("Content-Length"))
		}
	}
	got := assertStored(t, p, o, "/enough", "Accept-Encoding", "gzip")
	assert.Equal(t, "gzip", got.Header.Get("Content-Encoding"))
	assert.Equal(t, `W/"x1"`, got.Header.Get("ETag"))

	// COMPRESS_MIN_BYTES reaches the handler.
	small := startProxy(t, o.URL, map[string]string{"COMPRESS_MIN_BYTES": "256"})
	small.get("/custom")
	got = assertStored(t, small, o, "/custom", "Accept-Encoding", "gzip")
	assert.Equal(t, "gzip", got.Header.Get("Content-Encoding"))
}

// A body the origin sent in another coding than gzip is stored and served
// as received to every visitor, whatever it accepts, its headers intact.
func TestBodyInAnotherCodingIsStoredAsReceived(t *testing.T) {
	brotli := "\x8b\x05\x80<p>pretend this is brotli</p>\x03"
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "br")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("ETag", `"br1"`)
		io.WriteString(w, brotli)
	})
	p := startProxy(t, o.URL, nil)
	first := p.get("/br", "Accept-Encoding", "br")
	assert.Equal(t, "isrproxy; fwd=miss; stored", first.Header.Get("Cache-Status"))
	for _, ae := range []string{"br", "gzip", "", "identity"} {
		got := assertStored(t, p, o, "/br", "Accept-Encoding", ae)
		assert.Equal(t, brotli, got.Body, "Accept-Encoding %q", ae)
		assert.Equal(t, "br", got.Header.Get("Content-Encoding"))
		assert.Equal(t, []string{"Accept-Encoding"}, got.Header.Values("Vary"))
		assert.Equal(t, `"br1"`, got.Header.Get("ETag"))
	}
	assert.EqualValues(t, 1, o.hits.Load(), "not marked pass-through")
}

// "en, de", "en,de" and "EN, de" select one variant; "de, en" another.
// Other headers normalise their whitespace, not their case.
func TestVaryValuesAreComparedNormalised(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Vary", "Accept-Language, X-Theme")
		fmt.Fprintf(w, "lang=%q theme=%q", r.Header.Get("Accept-Language"), r.Header.Get("X-Theme"))
	})
	p := startProxy(t, o.URL, nil)
	first := p.get("/v", "Accept-Language", "en, de", "X-Theme", "dark,wide")
	for _, h := range [][]string{
		{"Accept-Language", "en,de", "X-Theme", "dark, wide"},
		{"Accept-Language", "EN, de", "X-Theme", " dark , wide "},
		{"Accept-Language", " en ,De", "X-Theme", "dark,wide"},
	} {
		assert.Equal(t, first.Body, assertStored(t, p, o, "/v", h...).Body, "%q", h)
	}
	for _, h := range [][]string{
		{"Accept-Language", "de, en", "X-Theme", "dark,wide"},
		{"Accept-Language", "en, de", "X-Theme", "Dark,wide"},
		{"Accept-Language", "en, de"},
	} {
		got := assertNotStored(t, p, o, "/v", h...)
		assert.Equal(t, "MISS", got.Header.Get("X-Cache"), "%q", h)
	}
}

// A stored page without Last-Modified answers If-Modified-Since by its
// Date: 304 for a date not before it.
func TestIfModifiedSinceWithoutLastModifiedUsesDate(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", "Tue, 15 Nov 1994 12:45:26 GMT")
		io.WriteString(w, "dated, not modified")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/d")
	got := assertStored(t, p, o, "/d", "If-Modified-Since", "Tue, 15 Nov 1994 12:45:26 GMT")
	assert.Equal(t, http.StatusNotModified, got.Status)
	got = assertStored(t, p, o, "/d", "If-Modified-Since", "Tue, 15 Nov 1994 12:45:25 GMT")
	require.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "dated, not modified", got.Body)
}
