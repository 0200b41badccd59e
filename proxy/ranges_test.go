package proxy

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
)

func TestParseRange(t *testing.T) {
	const size = 10
	for _, tt := range []struct {
		header string
		want   []byteRange
		ok     bool
	}{
		{"bytes=0-1", []byteRange{{0, 2}}, true},
		{"bytes=1-", []byteRange{{1, 9}}, true},
		{"bytes=-1", []byteRange{{9, 1}}, true},
		{"bytes=-20", []byteRange{{0, 10}}, true},
		{"bytes=5-100", []byteRange{{5, 5}}, true},
		{"bytes=9-9", []byteRange{{9, 1}}, true},
		{"bytes=0-0,-1", []byteRange{{0, 1}, {9, 1}}, true},
		{"bytes= 0-1 , 4-5", []byteRange{{0, 2}, {4, 2}}, true},
		{"BYTES=0-1", []byteRange{{0, 2}}, true},
		{"bytes=0-1,,", []byteRange{{0, 2}}, true},
		{"bytes=0-99999999999999999999999", []byteRange{{0, 10}}, true},
		{"bytes=8-9,20-30", []byteRange{{8, 2}}, true},
		{"bytes=10-", nil, true},
		{"bytes=10-20", nil, true},
		{"bytes=-0", nil, true},
		{"bytes=99999999999999999999999-", nil, true},
		{"bytes=5-4", nil, false},
		{"bytes=a-b", nil, false},
		{"bytes=-", nil, false},
		{"bytes=1", nil, false},
		{"bytes=+1-2", nil, false},
		{"bytes=", nil, false},
		{"bytes=,", nil, false},
		{"items=0-1", nil, false},
		{"0-1", nil, false},
		{"bytes=0-9,0-9", nil, false},
		{"bytes=" + strings.Repeat("0-0,", maxRanges+1), nil, false},
	} {
		got, ok := parseRange(tt.header, size)
		assert.Equal(t, tt.ok, ok, "%q", tt.header)
		assert.Equal(t, tt.want, got, "%q", tt.header)
	}
	got, ok := parseRange("bytes=-1", 0)
	assert.True(t, ok)
	assert.Empty(t, got, "nothing of an empty body is satisfiable")
}

func TestIfRangeHolds(t *testing.T) {
	strong := cache.FieldsOf(http.Header{"Etag": {`"v1"`}, "Last-Modified": {lastModified}, "Date": {aSecondLater}})
	for _, tt := range []struct {
		name    string
		ifRange string
		hdr     cache.Fields
		want    bool
	}{
		{"the same strong tag holds", `"v1"`, strong, true},
		{"another tag fails", `"v2"`, strong, false},
		{"a weak tag never holds", `W/"v1"`, strong, false},
		{"a weak stored tag never holds", `"v1"`, cache.FieldsOf(http.Header{"Etag": {`W/"v1"`}}), false},
		{"a tag against a page without one fails", `"v1"`, cache.FieldsOf(http.Header{}), false},
		{"Last-Modified's own date holds", lastModified, strong, true},
		{"another date fails", aSecondLater, strong, false},
		{"an unreadable date fails", "yesterday", strong, false},
		{"a date is weak when Date is within the same second",
			lastModified, cache.FieldsOf(http.Header{"Last-Modified": {lastModified}, "Date": {lastModified}}), false},
		{"a date is weak without Date", lastModified, cache.FieldsOf(http.Header{"Last-Modified": {lastModified}}), false},
	} {
		assert.Equal(t, tt.want, ifRangeHolds(tt.ifRange, tt.hdr), tt.name)
	}
}

// rangeHandler is a Handler in front of an origin serving /bin (16 bytes
// stored as received, strong validators) and /html (gzipped when stored);
// the origin counts the requests it gets and records the last Range.
type rangeHandler struct {
	*Handler
	hits      atomic.Int64
	lastRange atomic.Value
}

const binBody = "0123456789abcdef"

var htmlBody = strings.Repeat("<p>range me</p>", 100)

func newRangeHandler(t *testing.T, decompressedBytes int64) *rangeHandler {
	t.Helper()
	rh := &rangeHandler{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rh.hits.Add(1)
		rh.lastRange.Store(r.Header.Get("Range"))
		w.Header().Set("Date", aSecondLater)
		w.Header().Set("Last-Modified", lastModified)
		switch r.URL.Path {
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Etag", `"h1"`)
			io.WriteString(w, htmlBody)
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Etag", `"b1"`)
			if r.Header.Get("Range") == "bytes=0-1" {
				w.Header().Set("Content-Range", "bytes 0-1/16")
				w.WriteHeader(http.StatusPartialContent)
				io.WriteString(w, binBody[:2])
				return
			}
			io.WriteString(w, binBody)
		}
	}))
	t.Cleanup(origin.Close)
	store, err := cache.New(cache.Config{MaxBytes: 16 << 20})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	u, _ := url.Parse(origin.URL)
	h, err := New(Options{Origin: u, Store: store, CacheStatuses: []int{200},
		CompressTypes: []string{"text/html"}, DecompressedBytes: decompressedBytes})
	require.NoError(t, err)
	t.Cleanup(h.Close)
	rh.Handler = h
	return rh
}

func (rh *rangeHandler) serve(method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://example.com"+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	rh.ServeHTTP(rec, req)
	return rec
}

// assertFromMemory checks the labels of an answer from memory.
func assertFromMemory(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	assert.Equal(t, "HIT", rec.Header().Get("X-Cache"))
	assert.Equal(t, "isrproxy; hit", rec.Header().Get("Cache-Status"))
	assert.NotEmpty(t, rec.Header().Get("Age"))
}

// TestARangeOfAStoredPageIsAnsweredFromMemory: 206 with Content-Range and
// the range's length, a HIT, the origin not asked.
func TestARangeOfAStoredPageIsAnsweredFromMemory(t *testing.T) {
	rh := newRangeHandler(t, 0)
	require.Equal(t, http.StatusOK, rh.serve("GET", "/bin").Code)
	for _, tt := range []struct{ rng, contentRange, body string }{
		{"bytes=0-3", "bytes 0-3/16", "0123"},
		{"bytes=10-", "bytes 10-15/16", "abcdef"},
		{"bytes=-2", "bytes 14-15/16", "ef"},
		{"bytes=15-100", "bytes 15-15/16", "f"},
	} {
		rec := rh.serve("GET", "/bin", "Range", tt.rng)
		assert.Equal(t, http.StatusPartialContent, rec.Code, tt.rng)
		assert.Equal(t, tt.contentRange, rec.Header().Get("Content-Range"), tt.rng)
		assert.Equal(t, tt.body, rec.Body.String(), tt.rng)
		assert.Equal(t, len(tt.body), atoi(t, rec.Header().Get("Content-Length")), tt.rng)
		assert.Equal(t, `"b1"`, rec.Header().Get("Etag"))
		assert.Equal(t, "application/octet-stream", rec.Header().Get("Content-Type"))
		assertFromMemory(t, rec)
	}
	head := rh.serve("HEAD", "/bin", "Range", "bytes=0-3")
	assert.Equal(t, http.StatusPartialContent, head.Code, "HEAD gets the headers GET would")
	assert.Equal(t, "bytes 0-3/16", head.Header().Get("Content-Range"))
	assert.Equal(t, "4", head.Header().Get("Content-Length"))
	assert.Empty(t, head.Body.String())
	assert.Equal(t, int64(1), rh.hits.Load(), "only the fill reached the origin")
}

// TestSeveralRangesAreAnsweredAsMultipart: multipart/byteranges, each part
// with the page's Content-Type and its own Content-Range, and a
// Content-Length that is the body's.
func TestSeveralRangesAreAnsweredAsMultipart(t *testing.T) {
	for _, decompressed := range []int64{0, 1 << 20} { // decompress while writing, or from the copy kept
		rh := newRangeHandler(t, decompressed)
		rh.serve("GET", "/bin")
		rh.serve("GET", "/html")
		for _, tt := range []struct {
			path, ctype string
			full        string
		}{
			{"/bin", "application/octet-stream", binBody},
			{"/html", "text/html", htmlBody}, // decompressed: the client has no gzip
		} {
			for range 3 { // the copy of the decompressed body is kept from the second answer on
				rec := rh.serve("GET", tt.path, "Range", "bytes=-2, 0-1,4-6")
				require.Equal(t, http.StatusPartialContent, rec.Code)
				assertFromMemory(t, rec)
				assert.Equal(t, len(rec.Body.String()), atoi(t, rec.Header().Get("Content-Length")))
				mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
				require.NoError(t, err)
				assert.Equal(t, "multipart/byteranges", mt)
				assert.Empty(t, rec.Header().Get("Content-Range"))
				mr := multipart.NewReader(rec.Body, params["boundary"])
				n := len(tt.full)
				for _, want := range []struct {
					cr   string
					body string
				}{
					{"bytes " + strconv.Itoa(n-2) + "-" + strconv.Itoa(n-1) + "/" + strconv.Itoa(n), tt.full[n-2:]},
					{"bytes 0-1/" + strconv.Itoa(n), tt.full[:2]},
					{"bytes 4-6/" + strconv.Itoa(n), tt.full[4:7]},
				} {
					part, err := mr.NextPart()
					require.NoError(t, err)
					assert.Equal(t, tt.ctype, part.Header.Get("Content-Type"))
					assert.Equal(t, want.cr, part.Header.Get("Content-Range"))
					b, _ := io.ReadAll(part)
					assert.Equal(t, want.body, string(b))
				}
				_, err = mr.NextPart()
				assert.Equal(t, io.EOF, err)
			}
		}
		head := rh.serve("HEAD", "/bin", "Range", "bytes=0-1,4-6")
		get := rh.serve("GET", "/bin", "Range", "bytes=0-1,4-6")
		assert.Equal(t, http.StatusPartialContent, head.Code)
		assert.Equal(t, get.Header().Get("Content-Length"), head.Header().Get("Content-Length"))
		assert.Empty(t, head.Body.String())
		assert.Equal(t, int64(2), rh.hits.Load())
	}
}

// TestARangeIsOfTheRepresentationTheVisitorGets: a gzip client gets a range
// of the stored gzip bytes, labelled gzip; any other a range of the
// decompressed page. Several ranges of gzip bytes are answered whole.
func TestARangeIsOfTheRepresentationTheVisitorGets(t *testing.T) {
	rh := newRangeHandler(t, 0)
	rh.serve("GET", "/html")
	whole := rh.serve("GET", "/html", "Accept-Encoding", "gzip")
	require.Equal(t, "gzip", whole.Header().Get("Content-Encoding"))
	zipped := whole.Body.String()
	n := strconv.Itoa(len(zipped))

	rec := rh.serve("GET", "/html", "Accept-Encoding", "gzip", "Range", "bytes=10-19")
	assert.Equal(t, http.StatusPartialContent, rec.Code)
	assert.Equal(t, "bytes 10-19/"+n, rec.Header().Get("Content-Range"))
	assert.Equal(t, zipped[10:20], rec.Body.String())
	assert.Equal(t, "gzip", rec.Header().Get("Content-Encoding"))
	assert.Equal(t, "10", rec.Header().Get("Content-Length"))
	assert.Contains(t, rec.Header().Get("Vary"), "Accept-Encoding")

	rec = rh.serve("GET", "/html", "Range", "bytes=10-19")
	assert.Equal(t, http.StatusPartialContent, rec.Code)
	assert.Equal(t, "bytes 10-19/"+strconv.Itoa(len(htmlBody)), rec.Header().Get("Content-Range"))
	assert.Equal(t, htmlBody[10:20], rec.Body.String())
	assert.Empty(t, rec.Header().Get("Content-Encoding"))

	rec = rh.serve("GET", "/html", "Accept-Encoding", "gzip", "Range", "bytes=0-1,5-6")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, zipped, rec.Body.String())
	assert.Equal(t, int64(1), rh.hits.Load())
}

// TestAnUnsatisfiableRangeIs416: Content-Range names the representation's
// length, and nothing claims an encoded body.
func TestAnUnsatisfiableRangeIs416(t *testing.T) {
	rh := newRangeHandler(t, 0)
	rh.serve("GET", "/bin")
	rh.serve("GET", "/html")
	for _, tt := range []struct{ path, ae, rng, total string }{
		{"/bin", "", "bytes=16-", "16"},
		{"/bin", "", "bytes=-0", "16"},
		{"/bin", "", "bytes=100-200, 16-", "16"},
		{"/html", "", "bytes=1500-", strconv.Itoa(len(htmlBody))},
	} {
		rec := rh.serve("GET", tt.path, "Accept-Encoding", tt.ae, "Range", tt.rng)
		assert.Equal(t, http.StatusRequestedRangeNotSatisfiable, rec.Code, tt.rng)
		assert.Equal(t, "bytes */"+tt.total, rec.Header().Get("Content-Range"), tt.rng)
		assert.Empty(t, rec.Body.String())
		assert.Empty(t, rec.Header().Get("Content-Encoding"))
		assertFromMemory(t, rec)
	}
	assert.Equal(t, int64(2), rh.hits.Load())
}

// TestARangeTheCacheIgnoresGetsTheWholePage: another unit, a malformed
// range set, and a failed If-Range are answered 200 whole.
func TestARangeTheCacheIgnoresGetsTheWholePage(t *testing.T) {
	rh := newRangeHandler(t, 0)
	rh.serve("GET", "/bin")
	rh.serve("GET", "/html")
	for _, tt := range []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{"another unit", "/bin", []string{"Range", "items=0-1"}, 200},
		{"a malformed range", "/bin", []string{"Range", "bytes=4-2"}, 200},
		{"overlapping ranges beyond the length", "/bin", []string{"Range", "bytes=0-15,0-15"}, 200},
		{"If-Range with the ETag", "/bin", []string{"Range", "bytes=0-1", "If-Range", `"b1"`}, 206},
		{"If-Range with another ETag", "/bin", []string{"Range", "bytes=0-1", "If-Range", `"b0"`}, 200},
		{"If-Range with a weak ETag", "/bin", []string{"Range", "bytes=0-1", "If-Range", `W/"b1"`}, 200},
		{"If-Range with Last-Modified", "/bin", []string{"Range", "bytes=0-1", "If-Range", lastModified}, 206},
		{"If-Range with another date", "/bin", []string{"Range", "bytes=0-1", "If-Range", aSecondEarly}, 200},
		{"If-Range with the origin's ETag of a page compressed when stored", "/html",
			[]string{"Accept-Encoding", "gzip", "Range", "bytes=0-1", "If-Range", `"h1"`}, 200},
		{"If-Range with a date of a page compressed when stored", "/html",
			[]string{"Range", "bytes=0-1", "If-Range", lastModified}, 206},
		{"If-Range without Range", "/bin", []string{"If-Range", `"b1"`}, 200},
	} {
		rec := rh.serve("GET", tt.path, tt.header...)
		assert.Equal(t, tt.want, rec.Code, tt.name)
		assertFromMemory(t, rec)
		if tt.want == http.StatusOK && tt.path == "/bin" {
			assert.Equal(t, binBody, rec.Body.String(), tt.name)
			assert.Empty(t, rec.Header().Get("Content-Range"), tt.name)
		}
	}
	// A conditional GET that matches is 304 before any range is looked at.
	rec := rh.serve("GET", "/bin", "Range", "bytes=0-1", "If-None-Match", `"b1"`)
	assert.Equal(t, http.StatusNotModified, rec.Code)
	assert.Equal(t, int64(2), rh.hits.Load())
}

// TestARangeOfAPageNotStoredPassesThrough: BYPASS, the Range reaches the
// origin, and nothing is stored: the next plain request fills.
func TestARangeOfAPageNotStoredPassesThrough(t *testing.T) {
	rh := newRangeHandler(t, 0)
	for _, method := range []string{"GET", "HEAD"} {
		rec := rh.serve(method, "/bin", "Range", "bytes=0-1")
		assert.Equal(t, http.StatusPartialContent, rec.Code, method)
		assert.Equal(t, "BYPASS", rec.Header().Get("X-Cache"), method)
		assert.Equal(t, "isrproxy; fwd=bypass", rec.Header().Get("Cache-Status"), method)
		assert.Equal(t, "bytes=0-1", rh.lastRange.Load(), method)
	}
	assert.Equal(t, int64(2), rh.hits.Load())
	rec := rh.serve("GET", "/bin")
	assert.Equal(t, "MISS", rec.Header().Get("X-Cache"), "the ranges filled nothing")
	assert.Equal(t, "", rh.lastRange.Load(), "a fill never sends Range")
	assert.Equal(t, "isrproxy; fwd=miss; stored", rec.Header().Get("Cache-Status"))
	assert.Equal(t, http.StatusPartialContent, rh.serve("GET", "/bin", "Range", "bytes=0-1").Code)
	assert.Equal(t, int64(3), rh.hits.Load())
}

// TestARangeOfAStoredErrorIsIgnored: only a stored 200 is ranged; a stored
// 404 is answered as it is.
func TestARangeOfAStoredErrorIsIgnored(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not here, not ever", http.StatusNotFound)
	}))
	t.Cleanup(origin.Close)
	store, err := cache.New(cache.Config{MaxBytes: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(store.Close)
	u, _ := url.Parse(origin.URL)
	h, err := New(Options{Origin: u, Store: store, CacheStatuses: []int{404}})
	require.NoError(t, err)
	t.Cleanup(h.Close)
	rh := &rangeHandler{Handler: h}
	rh.serve("GET", "/gone")
	rec := rh.serve("GET", "/gone", "Range", "bytes=0-1")
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, "not here, not ever\n", rec.Body.String())
	assert.Equal(t, "HIT", rec.Header().Get("X-Cache"))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
