package main

// Compression: a page is stored compressed where it helps, and each
// visitor gets the encoding it accepts; an answer that is not stored
// reaches its visitor as the origin sent it.

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

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
