package snapshot

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/isrproxy/isrproxy/cache"
)

// benchPages is the page count of the write and load benchmarks
// (docs/performance.md#snapshots): BENCH_PAGES overrides it.
func benchPages() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_PAGES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// benchHTML returns a 16 KiB HTML page that compresses about as a CMS's
// does (4-6x), gzipped as isrproxy stores it.
func benchHTML(i int) (plain int, gz []byte) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	words := []string{"isrproxy", "revalidate", "page", "cache", "origin", "the", "and", "of", "editor", "news",
		"article", "content", "theme", "wordpress", "drupal", "menu", "footer", "header", "sidebar", "widget"}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!doctype html><html><head><title>Page %d</title></head><body>", i)
	for b.Len() < 16<<10-64 {
		fmt.Fprintf(&b, "<p class=\"c%d\">", rng.IntN(50))
		for range 12 {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%x</p>\n", rng.Uint32())
	}
	b.WriteString("</body></html>")
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	zw.Write(b.Bytes())
	zw.Close()
	return b.Len(), z.Bytes()
}

// benchStore holds n pages of 16 KiB HTML, gzip-stored, with the headers
// a CMS sends.
func benchStore(b *testing.B, n int) (*cache.Store, int64) {
	b.Helper()
	const bodies = 64 // distinct bodies, shared: the store's cost is what counts
	type body struct {
		plain int
		gz    []byte
	}
	var bs [bodies]body
	for i := range bodies {
		bs[i].plain, bs[i].gz = benchHTML(i)
	}
	s, err := cache.New(cache.Config{MaxBytes: 2 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	var total int64
	now := time.Now()
	for i := range n {
		bd := bs[i%bodies]
		h := http.Header{
			"Content-Type":     {"text/html; charset=UTF-8"},
			"Content-Encoding": {"gzip"},
			"Content-Length":   {strconv.Itoa(len(bd.gz))},
			"Vary":             {"Accept-Encoding"},
			"Etag":             {`W/"` + strconv.Itoa(i) + `"`},
			"Last-Modified":    {"Mon, 02 Jan 2026 15:04:05 GMT"},
			"Link":             {"<https://www.example.com/wp-json/>; rel=\"https://api.w.org/\""},
			"X-Powered-By":     {"PHP/8.2"},
		}
		p := &cache.Page{
			Key:    cache.Key{Host: "www.example.com", Path: fmt.Sprintf("/blog/2026/01/post-%d/", i)},
			Status: 200, Header: cache.FieldsOf(h), Body: bd.gz, Gzip: true, PlainLen: int64(bd.plain),
			Tags: []string{"post-" + strconv.Itoa(i), "category-news"}, StoredAt: now, Gen: s.NextGen(),
			ETag: `W/"` + strconv.Itoa(i) + `"`,
		}
		if r := s.Put(p); r != cache.Stored {
			b.Fatalf("page %d: %v", i, r)
		}
		total += int64(len(bd.gz))
	}
	return s, total
}

// BenchmarkWrite writes a snapshot of benchPages pages: pages/s and MB/s
// of snapshot file.
func BenchmarkWrite(b *testing.B) {
	n := benchPages()
	s, _ := benchStore(b, n)
	path := filepath.Join(b.TempDir(), "pages.snap")
	b.ResetTimer()
	var size int64
	for b.Loop() {
		w, err := Write(path, s)
		if err != nil {
			b.Fatal(err)
		}
		size = w.Bytes
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/sec, "pages/s")
	b.ReportMetric(float64(size)/1e6/sec, "MB/s")
	b.ReportMetric(float64(size)/1e6, "MB")
}

// BenchmarkLoad loads a snapshot of benchPages pages into an empty store:
// pages/s and MB/s of snapshot file.
func BenchmarkLoad(b *testing.B) {
	n := benchPages()
	src, _ := benchStore(b, n)
	path := filepath.Join(b.TempDir(), "pages.snap")
	w, err := Write(path, src)
	if err != nil {
		b.Fatal(err)
	}
	src.Close()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dst, err := cache.New(cache.Config{MaxBytes: 2 << 30})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res := Load(path, dst, Options{})
		b.StopTimer()
		if res.Pages != n || !res.Complete {
			b.Fatalf("loaded %d of %d: %v", res.Pages, n, res.Problems)
		}
		dst.Close()
		b.StartTimer()
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/sec, "pages/s")
	b.ReportMetric(float64(w.Bytes)/1e6/sec, "MB/s")
	b.ReportMetric(float64(w.Bytes)/1e6, "MB")
}
