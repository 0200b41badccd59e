package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"

	"github.com/isrproxy/isrproxy/cache"
)

var testKey = cache.Key{Host: "example.com", Path: "/a"}

// testBuilder stores 200, 301 and 404, and compresses HTML and CSS.
func testBuilder() *builder {
	return &builder{
		statuses:      map[int]bool{200: true, 301: true, 404: true},
		compressTypes: map[string]bool{"text/html": true, "text/css": true},
		maxPlain:      1 << 20,
		tagHeaders:    testTagHeaders,
	}
}

// testTagHeaders is TAG_HEADERS' default.
var testTagHeaders = []string{"Cache-Tag", "Surrogate-Key", "Cache-Tags", "X-Cache-Tags"}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func gunzipped(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return string(out)
}

// TestResponsesThatAreNotStored checks each reason a complete response is
// refused storage, and that its neighbours are stored.
func TestResponsesThatAreNotStored(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		header http.Header
		body   string
		reason string // "" when stored
	}{
		{"a 200 with a body is stored", 200, http.Header{"Content-Type": {"image/png"}}, "x", ""},
		{"a listed redirect is stored", 301, http.Header{"Location": {"/b"}}, "", ""},
		{"a listed 404 with an empty body is stored", 404, http.Header{}, "", ""},
		{"a status not in the list is not stored", 302, http.Header{}, "x", "status 302 not in CACHE_STATUSES"},
		{"a 5xx is not stored", 503, http.Header{}, "x", "status 503 not in CACHE_STATUSES"},
		{"Set-Cookie is not stored", 200, http.Header{"Set-Cookie": {"a=1"}}, "x", "Set-Cookie"},
		{"Set-Cookie on a redirect is not stored", 301, http.Header{"Set-Cookie": {"a=1"}}, "", "Set-Cookie"},
		{"private is not stored", 200, http.Header{"Cache-Control": {"private"}}, "x", "Cache-Control: private"},
		{"private naming fields is not stored", 200, http.Header{"Cache-Control": {`private="Set-Cookie"`}}, "x", "Cache-Control: private"},
		{"no-store is not stored", 200, http.Header{"Cache-Control": {"no-store"}}, "x", "Cache-Control: no-store"},
		{"no-store in upper case is not stored", 200, http.Header{"Cache-Control": {"NO-STORE"}}, "x", "Cache-Control: no-store"},
		{"no-store among other directives is not stored", 200, http.Header{"Cache-Control": {"public, max-age=60,No-Store"}}, "x", "Cache-Control: no-store"},
		{"no-store on a second line is not stored", 200, http.Header{"Cache-Control": {"public", "s-maxage=5, no-store"}}, "x", "Cache-Control: no-store"},
		{"freshness directives do not limit storage", 200, http.Header{"Cache-Control": {"no-cache, max-age=0, must-revalidate"}, "Expires": {"0"}}, "x", ""},
		{"Vary: * is not stored", 200, http.Header{"Vary": {"*"}}, "x", "Vary: *"},
		{"Vary: * in a list is not stored", 200, http.Header{"Vary": {"Accept-Language, *"}}, "x", "Vary: *"},
		{"Vary: * on a second line is not stored", 200, http.Header{"Vary": {"Accept-Language", "*"}}, "x", "Vary: *"},
		{"an empty 200 is not stored", 200, http.Header{}, "", "empty 200"},
		{"a 200 whose gzip body is empty is not stored", 200, http.Header{"Content-Encoding": {"gzip"}}, string(gzipped(t, "")), "empty 200"},
		{"a gzip body that is not gzip is not stored", 200, http.Header{"Content-Encoding": {"gzip"}}, "plain text, not gzip", "gzip body: gzip: invalid header"},
		{"a gzip body cut short is not stored", 200, http.Header{"Content-Encoding": {"gzip"}}, string(gzipped(t, "hello")[:15]), "gzip body: unexpected EOF"},
		{"a gzip body that decompresses beyond the bound is not stored", 200, http.Header{"Content-Encoding": {"gzip"}},
			string(gzipped(t, strings.Repeat("a", 1<<20+1))), "gzip body: " + errGzipTooLarge.Error()},
		{"a body in a coding other than gzip is stored", 200, http.Header{"Content-Encoding": {"br"}}, "x", ""},
		{"the first reason is the one given", 302, http.Header{"Set-Cookie": {"a=1"}, "Cache-Control": {"no-store"}}, "x", "status 302 not in CACHE_STATUSES"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fetched{status: tt.status, header: tt.header, body: []byte(tt.body)}
			p, reason := testBuilder().build(testKey, f, http.Header{}, 7, time.Unix(100, 0))
			assert.Equal(t, tt.reason, reason)
			require.NotNil(t, p, "the page is built even when not stored: its fetcher is answered with it")
			assert.Equal(t, tt.status, p.Status)
		})
	}
}

// TestAnUnstorableResponseIsAnsweredAsTheOriginSentIt: only a page that
// will be stored is compressed; its one visitor gets the origin's bytes.
func TestAnUnstorableResponseIsAnsweredAsTheOriginSentIt(t *testing.T) {
	body := strings.Repeat("<p>private</p>", 20)
	f := &fetched{status: 200, body: []byte(body), header: http.Header{
		"Content-Type": {"text/html"}, "Set-Cookie": {"s=1"}, "Etag": {`"v1"`},
	}}
	p, reason := testBuilder().build(testKey, f, http.Header{}, 1, time.Now())
	assert.Equal(t, "Set-Cookie", reason)
	assert.False(t, p.Gzip)
	assert.Equal(t, body, string(p.Body))
	assert.Equal(t, `"v1"`, p.ETag)
	assert.Empty(t, p.Header.Get("Content-Encoding"))
	assert.Empty(t, p.Header.Get("Vary"))
	assert.Equal(t, strconv.Itoa(len(body)), p.Header.Get("Content-Length"))
}

// TestCompressibleBodiesAreGzippedOnceWhenStored checks the stored form of
// a body the origin sent uncompressed: gzip, its ETag made weak, Vary
// carrying Accept-Encoding merged with the origin's, and the length of
// the bytes stored.
func TestCompressibleBodiesAreGzippedOnceWhenStored(t *testing.T) {
	body := strings.Repeat("<p>hello</p>", 50)
	for _, tt := range []struct {
		name     string
		header   http.Header
		wantVary string
		wantETag string
	}{
		{"Vary gains Accept-Encoding and the ETag is made weak",
			http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Etag": {`"v1"`}}, "Accept-Encoding", `W/"v1"`},
		{"Accept-Encoding is merged with the origin's Vary",
			http.Header{"Content-Type": {"text/html"}, "Vary": {"Accept-Language"}}, "Accept-Language, Accept-Encoding", ""},
		{"the origin's Vary lines are merged into one",
			http.Header{"Content-Type": {"text/html"}, "Vary": {"accept-language", "X-Theme, Accept-Language"}}, "Accept-Language, X-Theme, Accept-Encoding", ""},
		{"Accept-Encoding already in the origin's Vary is not repeated",
			http.Header{"Content-Type": {"text/css"}, "Vary": {"accept-encoding, Accept-Language"}}, "Accept-Encoding, Accept-Language", ""},
		{"a weak ETag stays as it is",
			http.Header{"Content-Type": {"text/html"}, "Etag": {`W/"v2"`}}, "Accept-Encoding", `W/"v2"`},
		{"the media type is compared in any case",
			http.Header{"Content-Type": {"Text/HTML"}}, "Accept-Encoding", ""},
		{"an identity coding counts as none",
			http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"identity"}}, "Accept-Encoding", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.header.Set("Content-Length", "999") // the origin's, for the plain body
			f := &fetched{status: 200, header: tt.header, body: []byte(body)}
			p, reason := testBuilder().build(testKey, f, http.Header{}, 1, time.Now())
			require.Empty(t, reason)
			assert.True(t, p.Gzip)
			assert.Equal(t, int64(len(body)), p.PlainLen)
			assert.Equal(t, body, gunzipped(t, p.Body))
			assert.Equal(t, "gzip", p.Header.Get("Content-Encoding"))
			assert.Equal(t, strconv.Itoa(len(p.Body)), p.Header.Get("Content-Length"))
			assert.Equal(t, tt.wantVary, p.Header.Get("Vary"))
			assert.Equal(t, tt.wantETag, p.ETag)
			assert.Equal(t, tt.wantETag, p.Header.Get("Etag"))
			assert.Equal(t, "999", f.header.Get("Content-Length"), "the fetched header is not changed")
		})
	}
}

// TestBodiesStoredAsReceived checks the bodies that are not compressed
// when stored: a type not listed keeps the origin's headers exactly, and a
// body the origin already gzipped is kept byte for byte.
func TestBodiesStoredAsReceived(t *testing.T) {
	plain := strings.Repeat("<p>hello</p>", 50)
	gz := gzipped(t, plain)
	for _, tt := range []struct {
		name     string
		header   http.Header
		body     []byte
		wantGzip bool
		wantVary string
		wantEnc  string
	}{
		{"a type not listed keeps the origin's headers",
			http.Header{"Content-Type": {"image/svg+xml"}, "Etag": {`"v1"`}, "Vary": {"Accept-Language"}}, []byte(plain), false, "Accept-Language", ""},
		{"a body without a Content-Type is not compressed",
			http.Header{"Etag": {`"v1"`}}, []byte(plain), false, "", ""},
		{"a malformed Content-Type is not compressed",
			http.Header{"Content-Type": {"text/html; ;;"}, "Etag": {`"v1"`}}, []byte(plain), false, "", ""},
		{"a gzip body is kept and gains Vary: Accept-Encoding",
			http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}, "Etag": {`"v1"`}}, gz, true, "Accept-Encoding", "gzip"},
		{"an x-gzip body is kept and stored as gzip",
			http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"x-gzip"}, "Etag": {`"v1"`}}, gz, true, "Accept-Encoding", "gzip"},
		{"a gzip body of a type not listed is kept too",
			http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"GZIP"}, "Etag": {`"v1"`}, "Vary": {"Origin"}}, gz, true, "Origin, Accept-Encoding", "gzip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fetched{status: 200, header: tt.header, body: tt.body}
			p, reason := testBuilder().build(testKey, f, http.Header{}, 1, time.Now())
			require.Empty(t, reason)
			assert.Equal(t, tt.body, p.Body, "the bytes the origin sent")
			assert.Equal(t, tt.wantGzip, p.Gzip)
			if tt.wantGzip {
				assert.Equal(t, int64(len(plain)), p.PlainLen)
			}
			assert.Equal(t, `"v1"`, p.ETag, "these are the origin's own bytes: its ETag stays strong")
			assert.Equal(t, tt.wantVary, p.Header.Get("Vary"))
			assert.Equal(t, tt.wantEnc, p.Header.Get("Content-Encoding"))
			assert.Equal(t, strconv.Itoa(len(tt.body)), p.Header.Get("Content-Length"))
		})
	}
}

// TestCompressionOnlyWhenWorthIt: a listed type is gzipped only from
// COMPRESS_MIN_BYTES on, and only when gzip makes it smaller; a body
// stored as received keeps the origin's headers exactly.
func TestCompressionOnlyWhenWorthIt(t *testing.T) {
	noise := make([]byte, 4096) // does not compress: gzip only adds its framing
	rand.NewChaCha8([32]byte{1}).Read(noise)
	for _, tt := range []struct {
		name     string
		body     []byte
		wantGzip bool
	}{
		{"a body one byte short of the minimum is stored as received", bytes.Repeat([]byte("a"), 1023), false},
		{"a body of the minimum is compressed", bytes.Repeat([]byte("a"), 1024), true},
		{"a body gzip cannot shrink is stored as received", noise, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			origin := http.Header{
				"Content-Type":   {"text/html"},
				"Etag":           {`"v1"`},
				"Vary":           {"accept-language"},
				"Content-Length": {strconv.Itoa(len(tt.body))},
				"X-Other":        {"kept"},
			}
			b := testBuilder()
			b.compressMin = 1024
			f := &fetched{status: 200, header: origin.Clone(), body: tt.body}
			p, reason := b.build(testKey, f, http.Header{}, 1, time.Now())
			require.Empty(t, reason)
			assert.Equal(t, tt.wantGzip, p.Gzip)
			if tt.wantGzip {
				assert.Less(t, len(p.Body), len(tt.body))
				assert.Equal(t, `W/"v1"`, p.Header.Get("Etag"))
				return
			}
			assert.Equal(t, tt.body, p.Body)
			want := cache.FieldsOf(origin)
			assert.Equal(t, want, p.Header, "the origin's headers exactly: no Vary, ETag or Content-Length rewrite")
			assert.Equal(t, `"v1"`, p.ETag)
		})
	}
}

// TestBodiesInOtherCodingsAreStoredAsReceived: a body the origin sent in a
// coding isrproxy does not decode is stored as it came, with the origin's
// headers exactly (its Vary too, whatever it says), for every visitor.
func TestBodiesInOtherCodingsAreStoredAsReceived(t *testing.T) {
	body := []byte("\x1b\x03\x00compressed-by-the-origin")
	for _, enc := range []string{"br", "deflate", "zstd", "BR", "gzip, br", "compress"} {
		for _, vary := range [][]string{nil, {"Accept-Encoding"}, {"accept-encoding, Accept-Language"}} {
			t.Run(enc+" "+strings.Join(vary, ","), func(t *testing.T) {
				origin := http.Header{
					"Content-Type":     {"text/html"},
					"Content-Encoding": {enc},
					"Etag":             {`"br1"`},
					"Content-Length":   {strconv.Itoa(len(body))},
				}
				if vary != nil {
					origin["Vary"] = vary
				}
				f := &fetched{status: 200, header: origin.Clone(), body: body}
				p, reason := testBuilder().build(testKey, f, http.Header{}, 1, time.Now())
				require.Empty(t, reason)
				assert.False(t, p.Gzip)
				assert.Equal(t, body, p.Body)
				assert.Equal(t, cache.FieldsOf(origin), p.Header)
				assert.Equal(t, `"br1"`, p.ETag)
			})
		}
	}
}

// TestAMalformedETagIsDroppedWhenCompressing: the stored gzip page and its
// decompressed form carry no ETag at all rather than a rewritten one.
func TestAMalformedETagIsDroppedWhenCompressing(t *testing.T) {
	body := strings.Repeat("<p>hello</p>", 50)
	for _, etag := range []string{`abc`, `"a"b"`, `w/"x"`, `"x`, `W/W/"x"`, `"a b"`, ``} {
		t.Run(etag, func(t *testing.T) {
			f := &fetched{status: 200, body: []byte(body), header: http.Header{
				"Content-Type": {"text/html"}, "Etag": {etag},
			}}
			p, reason := testBuilder().build(testKey, f, http.Header{}, 1, time.Now())
			require.Empty(t, reason)
			require.True(t, p.Gzip)
			assert.Empty(t, p.ETag)
			for _, fs := range []cache.Fields{p.Header, p.PlainHeader()} {
				for _, field := range fs {
					assert.NotEqual(t, "Etag", field.Name, "%q kept as %q", etag, field.Values)
				}
			}
		})
	}
}

// TestAStoredPageRecordsItsVariantValidatorsTagsAndAge checks the fields
// build takes from the origin's headers beside the header set itself.
func TestAStoredPageRecordsItsVariantValidatorsTagsAndAge(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	f := &fetched{status: 200, body: []byte("x"), header: http.Header{
		"Content-Type":  {"image/png"},
		"Vary":          {"Cookie, accept-language, Authorization", "X-Device, Accept-Encoding"},
		"Etag":          {`"e"`},
		"Last-Modified": {"Tue, 15 Nov 1994 12:45:26 GMT"},
		"Cache-Tag":     {"a, b"},
		"Surrogate-Key": {"c a"},
		"Age":           {"42"},
		"Date":          {"Tue, 15 Nov 1994 12:45:27 GMT"},
	}}
	req := http.Header{"Accept-Language": {" fr "}, "Cookie": {"x=1"}}
	p, reason := testBuilder().build(testKey, f, req, 9, now)
	require.Empty(t, reason)
	assert.Equal(t, testKey, p.Key)
	assert.Equal(t, uint64(9), p.Gen)
	assert.Equal(t, now, p.StoredAt)
	assert.Equal(t, []string{"Accept-Language", "X-Device"}, p.Vary,
		"Cookie, Authorization and Accept-Encoding are satisfied by construction")
	assert.Equal(t, []string{"fr", cache.VaryAbsent}, p.VaryValues)
	assert.Equal(t, `"e"`, p.ETag)
	assert.Equal(t, "Tue, 15 Nov 1994 12:45:26 GMT", p.LastModified)
	assert.Equal(t, []string{"a", "b", "c"}, p.Tags)
	assert.Equal(t, int64(42), p.OriginAge)
	assert.Empty(t, p.Header.Get("Age"), "Age is sent afresh on every answer")
	assert.Equal(t, "Tue, 15 Nov 1994 12:45:27 GMT", p.Header.Get("Date"), "Date is the origin's, unchanged")
	assert.Equal(t, "Cookie, accept-language, Authorization", p.Header.Get("Vary"), "a body stored as received keeps the origin's Vary")
}

// rawOrigin answers every connection with the bytes of resp, then closes it.
func rawOrigin(t *testing.T, resp string) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, resp)
			}()
		}
	}()
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// TestHopByHopHeadersAreNotStored fetches through the origin client, as a
// fill does, and checks that neither hop-by-hop headers nor the headers
// the response names in Connection reach the stored page, whether or not
// Connection also says close (Go's Transport drops the whole header then).
func TestHopByHopHeadersAreNotStored(t *testing.T) {
	hop := "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n"
	for _, tt := range []struct {
		name       string
		connection string
	}{
		{"Connection naming headers", "Connection: X-Secret, x-other\r\n"},
		{"Connection naming headers and close", "Connection: X-Secret, close\r\nConnection: x-other\r\n"},
		{"Connection naming headers after close", "Connection: close, X-Secret,x-other\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := rawOrigin(t, "HTTP/1.1 200 OK\r\n"+tt.connection+hop+
				"X-Secret: s\r\nX-Other: o\r\nX-Kept: k\r\nContent-Type: image/png\r\nContent-Length: 2\r\n\r\nok")
			plain, err := http.Get(base.String() + "/a")
			require.NoError(t, err)
			plain.Body.Close()
			require.Equal(t, "s", plain.Header.Get("X-Secret"), "the origin sends the header a plain client keeps")

			o := &origin{base: base, transport: newTransport(5*time.Second, 4),
				slots: semaphore.NewWeighted(4), buffers: semaphore.NewWeighted(1 << 20), timeout: 5 * time.Second}
			req := o.fillRequest(context.Background(), testKey, false, nil, nil)
			got, err := o.fetch(req.Context(), req, 1<<20)
			require.NoError(t, err)
			defer got.done()
			p, reason := testBuilder().build(testKey, got, http.Header{}, 1, time.Now())
			require.Empty(t, reason)
			for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade",
				"Proxy-Connection", "Transfer-Encoding", "X-Secret", "X-Other"} {
				assert.Empty(t, p.Header.Get(name), name)
			}
			assert.Equal(t, "k", p.Header.Get("X-Kept"))
			assert.Equal(t, "ok", string(p.Body))
		})
	}
}

func TestCacheControlRefusal(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"no header stores", nil, ""},
		{"public with a max-age stores", []string{"public, max-age=60"}, ""},
		{"no-cache stores", []string{"no-cache"}, ""},
		{"no-cache naming a field stores", []string{`no-cache="Set-Cookie"`}, ""},
		{"a longer directive starting no-store stores", []string{"no-stores, privately"}, ""},
		{"private refuses", []string{"private"}, "private"},
		{"Private in any case refuses", []string{"PrIvAtE"}, "private"},
		{"private naming fields refuses", []string{`private="Set-Cookie, X-A"`}, "private"},
		{"no-store refuses", []string{"no-store"}, "no-store"},
		{"no-store in any case refuses", []string{"No-Store"}, "no-store"},
		{"no-store after other directives refuses", []string{"public,max-age=60 , no-store"}, "no-store"},
		{"no-store with spaces and tabs around it refuses", []string{"public,\t no-store \t"}, "no-store"},
		{"a quoted no-store refuses", []string{`"no-store"`}, "no-store"},
		{"no-store on a later line refuses", []string{"public", "max-age=5", "no-store"}, "no-store"},
		{"no-store with a value refuses", []string{"no-store=1"}, "no-store"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.lines != nil {
				h["Cache-Control"] = tt.lines
			}
			assert.Equal(t, tt.want, cacheControlRefusal(h))
		})
	}
}

func TestParseVary(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines []string
		names []string
		star  bool
	}{
		{"no Vary names nothing", nil, nil, false},
		{"names are made canonical", []string{"accept-language, X-THEME"}, []string{"Accept-Language", "X-Theme"}, false},
		{"names are kept once over every line", []string{"Accept-Language", "accept-language, Origin"}, []string{"Accept-Language", "Origin"}, false},
		{"empty items are skipped", []string{" , ,Origin,,"}, []string{"Origin"}, false},
		{"a star alone", []string{"*"}, nil, true},
		{"a star among names", []string{"Origin, *"}, []string{"Origin"}, true},
		{"a star on a line of its own", []string{"Origin", " * "}, []string{"Origin"}, true},
		{"a star inside a name is not a star", []string{"X-*"}, []string{"X-*"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.lines != nil {
				h["Vary"] = tt.lines
			}
			names, star := parseVary(h)
			assert.Equal(t, tt.names, names)
			assert.Equal(t, tt.star, star)
		})
	}
}

func TestParseTags(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header http.Header
		want   []string
	}{
		{"no tag headers tag nothing", http.Header{}, nil},
		{"tags are split on spaces", http.Header{"Cache-Tag": {"a b  c"}}, []string{"a", "b", "c"}},
		{"tags are split on commas", http.Header{"Cache-Tag": {"a,b,,c"}}, []string{"a", "b", "c"}},
		{"tags are split on commas with spaces and tabs", http.Header{"Surrogate-Key": {" a ,\tb, c "}}, []string{"a", "b", "c"}},
		{"every line counts", http.Header{"Cache-Tag": {"a", "b"}}, []string{"a", "b"}},
		{"Cache-Tag and Surrogate-Key both tag", http.Header{"Cache-Tag": {"a"}, "Surrogate-Key": {"b"}}, []string{"a", "b"}},
		{"a tag named twice is kept once", http.Header{"Cache-Tag": {"a, b a"}, "Surrogate-Key": {"b"}}, []string{"a", "b"}},
		{"tags keep their case and punctuation", http.Header{"Cache-Tag": {"Post:42 path:/blog/"}}, []string{"Post:42", "path:/blog/"}},
		{"blank lines tag nothing", http.Header{"Cache-Tag": {"", " , "}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, parseTags(tt.header, testTagHeaders))
		})
	}
}

func TestWeakenETag(t *testing.T) {
	for _, tt := range []struct {
		name string
		etag string // "" for none
		want string
	}{
		{"a strong ETag is made weak", `"v1"`, `W/"v1"`},
		{"a weak ETag is left as it is", `W/"v1"`, `W/"v1"`},
		{"an empty strong ETag is made weak", `""`, `W/""`},
		{"no ETag stays none", "", ""},
		{"an unquoted ETag is dropped", "abc", ""},
		{"a lower-case weak prefix is malformed: dropped", `w/"x"`, ""},
		{"an unterminated ETag is dropped", `"x`, ""},
		{"an ETag with a space is dropped", `"a b"`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.etag != "" {
				h.Set("Etag", tt.etag)
			}
			weakenETag(h)
			assert.Equal(t, tt.want, h.Get("Etag"))
			if tt.want == "" {
				assert.NotContains(t, h, "Etag", "no ETag is invented or rewritten")
			}
		})
	}
	t.Run("an empty ETag line is dropped", func(t *testing.T) {
		h := http.Header{"Etag": {""}}
		weakenETag(h)
		assert.NotContains(t, h, "Etag")
	})
}

func TestParseAge(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want int64
	}{
		{"no Age is none", "", 0},
		{"zero", "0", 0},
		{"seconds", "60", 60},
		{"leading zeros", "007", 7},
		{"spaces around it are ignored", " 60 ", 60},
		{"a negative Age is none", "-1", 0},
		{"a signed Age is none", "+5", 0},
		{"a fraction is none", "1.5", 0},
		{"words are none", "soon", 0},
		{"a list is none", "5, 6", 0},
		{"2^31 is kept", "2147483648", maxAge},
		{"more than 2^31 counts as 2^31", "2147483649", maxAge},
		{"a number beyond int64 counts as 2^31", "99999999999999999999999", maxAge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, parseAge(tt.in))
		})
	}
}
