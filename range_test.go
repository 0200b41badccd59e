package main

// Range requests: a range of a stored complete 200 is answered from
// memory (206, multipart/byteranges, 416), on the representation the
// visitor gets; a range of a page not stored passes through and never
// fills (docs/behaviour.md#range-requests).

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rangeOrigin serves /file (26 letters, a type isrproxy does not compress,
// with strong validators) and /page (HTML it gzips when it stores it).
func rangeOrigin(t *testing.T) *testOrigin {
	return newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", "Tue, 15 Nov 1994 13:00:00 GMT")
		w.Header().Set("Last-Modified", "Tue, 15 Nov 1994 12:45:26 GMT")
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("ETag", `"p1"`)
			io.WriteString(w, rangePage)
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("ETag", `"f1"`)
		io.WriteString(w, "abcdefghijklmnopqrstuvwxyz")
	})
}

var rangePage = strings.Repeat("<p>a page long enough to be compressed</p>\n", 60)

func TestRangeOfStoredPageIsAnsweredFromMemory(t *testing.T) {
	o := rangeOrigin(t)
	p := startProxy(t, o.URL, nil)
	p.get("/file")

	got := assertStored(t, p, o, "/file", "Range", "bytes=2-4")
	assert.Equal(t, http.StatusPartialContent, got.Status)
	assert.Equal(t, "cde", got.Body)
	assert.Equal(t, "bytes 2-4/26", got.Header.Get("Content-Range"))
	assert.Equal(t, "3", got.Header.Get("Content-Length"))
	assert.Equal(t, "isrproxy; hit", got.Header.Get("Cache-Status"))
	assert.NotEmpty(t, got.Header.Get("Age"))
	assert.Equal(t, `"f1"`, got.Header.Get("ETag"))

	got = assertStored(t, p, o, "/file", "Range", "bytes=-3")
	assert.Equal(t, "xyz", got.Body)

	head := p.request(http.MethodHead, "/file", nil, "Range", "bytes=0-9")
	assert.Equal(t, http.StatusPartialContent, head.Status)
	assert.Equal(t, "bytes 0-9/26", head.Header.Get("Content-Range"))
	assert.Equal(t, "HIT", head.Header.Get("X-Cache"))

	got = assertStored(t, p, o, "/file", "Range", "bytes=30-")
	assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, got.Status)
	assert.Equal(t, "bytes */26", got.Header.Get("Content-Range"))
	assert.EqualValues(t, 1, o.hits.Load())
}

func TestSeveralRangesOfStoredPageAreMultipart(t *testing.T) {
	o := rangeOrigin(t)
	p := startProxy(t, o.URL, nil)
	p.get("/file")
	got := assertStored(t, p, o, "/file", "Range", "bytes=0-1, 24-")
	require.Equal(t, http.StatusPartialContent, got.Status)
	mt, params, err := mime.ParseMediaType(got.Header.Get("Content-Type"))
	require.NoError(t, err)
	assert.Equal(t, "multipart/byteranges", mt)
	assert.Equal(t, strconv.Itoa(len(got.Body)), got.Header.Get("Content-Length"))
	mr := multipart.NewReader(strings.NewReader(got.Body), params["boundary"])
	for _, want := range [][2]string{{"bytes 0-1/26", "ab"}, {"bytes 24-25/26", "yz"}} {
		part, err := mr.NextPart()
		require.NoError(t, err)
		assert.Equal(t, "application/pdf", part.Header.Get("Content-Type"))
		assert.Equal(t, want[0], part.Header.Get("Content-Range"))
		b, _ := io.ReadAll(part)
		assert.Equal(t, want[1], string(b))
	}
}

// If-Range: the same strong ETag or Last-Modified date gets the range;
// anything else the whole page.
func TestIfRangeIsHonoured(t *testing.T) {
	o := rangeOrigin(t)
	p := startProxy(t, o.URL, nil)
	p.get("/file")
	for _, tt := range []struct {
		ifRange string
		status  int
	}{
		{`"f1"`, http.StatusPartialContent},
		{"Tue, 15 Nov 1994 12:45:26 GMT", http.StatusPartialContent},
		{`"f0"`, http.StatusOK},
		{`W/"f1"`, http.StatusOK},
		{"Tue, 15 Nov 1994 12:45:27 GMT", http.StatusOK},
	} {
		got := assertStored(t, p, o, "/file", "Range", "bytes=0-1", "If-Range", tt.ifRange)
		assert.Equal(t, tt.status, got.Status, "If-Range %s", tt.ifRange)
		if tt.status == http.StatusOK {
			assert.Equal(t, "abcdefghijklmnopqrstuvwxyz", got.Body)
		}
	}
}

// A gzip client gets a range of the stored gzip bytes, any other a range
// of the page as the origin wrote it.
func TestRangeIsOfTheRepresentationTheVisitorGets(t *testing.T) {
	o := rangeOrigin(t)
	p := startProxy(t, o.URL, nil)
	zipped := p.get("/page", "Accept-Encoding", "gzip")
	require.Equal(t, "gzip", zipped.Header.Get("Content-Encoding"))

	got := assertStored(t, p, o, "/page", "Accept-Encoding", "gzip", "Range", "bytes=0-9")
	assert.Equal(t, http.StatusPartialContent, got.Status)
	assert.Equal(t, zipped.Body[:10], got.Body)
	assert.Equal(t, "gzip", got.Header.Get("Content-Encoding"))
	assert.Equal(t, "bytes 0-9/"+strconv.Itoa(len(zipped.Body)), got.Header.Get("Content-Range"))

	got = assertStored(t, p, o, "/page", "Range", "bytes=3-12")
	assert.Equal(t, rangePage[3:13], got.Body)
	assert.Empty(t, got.Header.Get("Content-Encoding"))
	assert.Equal(t, "bytes 3-12/"+strconv.Itoa(len(rangePage)), got.Header.Get("Content-Range"))
}

// A Range request of a page not stored (GET or HEAD) passes through as
// BYPASS and fills nothing; once the page is stored, its ranges are hits.
func TestRangeOfPageNotStoredPassesThrough(t *testing.T) {
	o := rangeOrigin(t)
	p := startProxy(t, o.URL, nil)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		got := p.request(method, "/file", nil, "Range", "bytes=0-1")
		assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"), method)
		assert.Equal(t, "isrproxy; fwd=bypass", got.Header.Get("Cache-Status"), method)
		assert.Equal(t, "bytes=0-1", o.lastRequest().Header.Get("Range"), method)
	}
	assert.Equal(t, "MISS", p.get("/file").Header.Get("X-Cache"), "the ranges stored nothing")
	assert.Equal(t, "ab", assertStored(t, p, o, "/file", "Range", "bytes=0-1").Body)
}
