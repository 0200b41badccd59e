package snapshot

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/internal/benchhtml"
)

// benchPages is the page count of the write and load benchmarks
// (docs/performance.md#snapshots): BENCH_PAGES overrides it.
func benchPages() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_PAGES")); err == nil && n > 0 {
		return n
	}
	return 100_000
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
		bs[i].plain, bs[i].gz = benchhtml.Gzipped(i)
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
