package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
)

func linksOf(t testing.TB, key cache.Key, header http.Header, body string) []string {
	t.Helper()
	b := &builder{statuses: map[int]bool{200: true, 301: true}, maxPlain: 1 << 20, ignore: cache.NewMatcher([]string{"utm_*"})}
	status := http.StatusOK
	if header.Get("Location") != "" {
		status = http.StatusMovedPermanently
	}
	p, reason := b.build(key, &fetched{status: status, header: header, body: []byte(body)}, nil, 1, time.Now())
	require.Empty(t, reason)
	return p.Links.Slice()
}

func TestLinksAreSameHostTargets(t *testing.T) {
	key := cache.Key{Host: "example.com", Path: "/events/", Query: ""}
	html := `<html><head><link href="/style.css" rel=stylesheet><script src="app.js"></script></head><body>
<a href="42">relative</a> <a href="../about?b=2&a=1">up, query normalised</a>
<a href="http://example.com/x?utm_source=feed#frag">absolute, ignored parameter and fragment dropped</a>
<a href="https://example.com:443/y">https, default port</a>
<a href="//example.com/z">scheme-relative</a>
<a href="https://other.example/events/42">another host</a>
<a href="mailto:a@example.com">mail</a> <a href="javascript:void(0)">js</a> <a href="#top">fragment</a>
<a href="/events/42">twice</a> <img src="/img/%E2%82%AC.png"> <a href="/caf%C3%A9 x">space</a>
<script>var s = '<a href="/not-a-link">';</script>
</body></html>`
	got := linksOf(t, key, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, html)
	assert.Equal(t, []string{"/about?a=1&b=2", "/caf%C3%A9%20x", "/events/42", "/events/app.js",
		"/img/%E2%82%AC.png", "/style.css", "/x", "/y", "/z"}, got)
}

func TestLinksOfBaseHrefGzipLocationAndOthers(t *testing.T) {
	key := cache.Key{Host: "example.com", Path: "/a/b"}
	got := linksOf(t, key, http.Header{"Content-Type": {"text/html"}}, `<base href="/docs/"><a href="page">p</a>`)
	assert.Equal(t, []string{"/docs/page"}, got)

	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`<a href="/gz">gz</a>`))
	zw.Close()
	got = linksOf(t, key, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"gzip"}}, buf.String())
	assert.Equal(t, []string{"/gz"}, got, "a gzip body is decompressed once to be read")

	got = linksOf(t, key, http.Header{"Location": {"/new"}}, "")
	assert.Equal(t, []string{"/new"}, got, "a redirect's Location is a link")

	got = linksOf(t, key, http.Header{"Content-Type": {"application/json"}}, `{"href":"/x"}`)
	assert.Empty(t, got, "only HTML is read")
	got = linksOf(t, key, http.Header{"Content-Type": {"text/html"}, "Content-Encoding": {"br"}}, `<a href="/x">`)
	assert.Empty(t, got)
}

func TestLinksAreCappedAndCounted(t *testing.T) {
	var b strings.Builder
	for i := range maxLinks + 100 {
		fmt.Fprintf(&b, `<a href="/p/%d">%d</a>`, i, i)
	}
	key := cache.Key{Host: "example.com", Path: "/"}
	got := linksOf(t, key, http.Header{"Content-Type": {"text/html"}}, b.String())
	require.Len(t, got, maxLinks)

	p := &cache.Page{Key: key, Body: []byte("x")}
	bare := p.Cost()
	p.Links = cache.NewLinks(got)
	assert.Greater(t, p.Cost(), bare+int64(maxLinks*cache.LinkOverhead), "links count in the page's cost")
}

// The store-time cost of reading the links of a 16 KiB HTML page with 100
// links (go test -bench Links ./proxy/). A hit never pays it.
func BenchmarkLinks16KiB(b *testing.B) {
	var page strings.Builder
	page.WriteString(`<!doctype html><html><head><title>Events</title><link rel="stylesheet" href="/css/site.css"></head><body><ul>`)
	for i := 0; page.Len() < 16<<10; i++ {
		fmt.Fprintf(&page, `<li class="event"><a href="/events/%d">Event number %d</a> <span>%s</span></li>`+"\n",
			i%100, i, strings.Repeat("lorem ipsum ", 4))
	}
	page.WriteString(`</ul></body></html>`)
	body := page.String()
	key := cache.Key{Host: "example.com", Path: "/events"}
	bl := &builder{maxPlain: 1 << 20}
	f := &fetched{status: 200, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, body: []byte(body)}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if n := len(bl.links(key, f, f.body)); n != 101 {
			b.Fatalf("%d links", n)
		}
	}
}
