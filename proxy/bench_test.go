package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/framing"
)

// discardWriter is a ResponseWriter that keeps one header map, as net/http's
// own does per request, so the benchmark measures the handler alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// benchHandler returns a handler with one stored 16 KiB HTML page at /page.
func benchHandler(b testing.TB) *Handler {
	b.Helper()
	html := strings.Repeat("<p>The quick brown fox jumps over the lazy dog, again and again.</p>\n", 240)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, html)
	}))
	b.Cleanup(origin.Close)
	store, err := cache.New(cache.Config{MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	u, _ := url.Parse(origin.URL)
	h, err := New(Options{
		Origin: u, Store: store, CacheStatuses: []int{200},
		CompressTypes: []string{"text/html"}, DecompressedBytes: 4 << 20,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	req := httptest.NewRequest(http.MethodGet, "http://example.com/page", nil)
	h.ServeHTTP(&discardWriter{h: http.Header{}}, req) // the fill
	return h
}

func benchmarkHit(b *testing.B, acceptEncoding string) {
	h := benchHandler(b)
	req := httptest.NewRequest(http.MethodGet, "http://example.com/page", nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	w := &discardWriter{h: make(http.Header, 16)}
	h.ServeHTTP(w, req)
	if got := w.h.Get("X-Cache"); got != "HIT" {
		b.Fatalf("X-Cache = %q, want HIT", got)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkHitGzip is a browser's hit: the stored gzip bytes, as they are.
func BenchmarkHitGzip(b *testing.B) { benchmarkHit(b, "gzip, deflate, br") }

// BenchmarkHitIdentity is a hit for a client without gzip (curl, bots).
func BenchmarkHitIdentity(b *testing.B) { benchmarkHit(b, "") }

// BenchmarkFastHitGzip is the browser's hit on the fast path: from the
// head as the framing checker holds it to the answer's bytes, without the
// network (compare BenchmarkHitGzip, which starts from a parsed request).
func BenchmarkFastHitGzip(b *testing.B) { benchmarkFastHit(b, "gzip, deflate, br") }

// BenchmarkFastHitIdentity is the fast path's hit for a client without
// gzip: the decompressed copy kept for such clients.
func BenchmarkFastHitIdentity(b *testing.B) { benchmarkFastHit(b, "") }

func benchmarkFastHit(b *testing.B, acceptEncoding string) {
	fast, head := fastHitSetup(b, acceptEncoding)
	var out byteCounter
	var hd framing.Head // the connection's, as the framing checker keeps it
	var ok bool
	b.ReportAllocs()
	for b.Loop() {
		if hd, ok = framing.ParseHead(head); !ok {
			b.Fatal("head refused")
		}
		if ok, err := fast.ServeFast(&hd, &out); !ok || err != nil {
			b.Fatalf("not answered: %v", err)
		}
	}
}

// fastHitSetup returns the fast path of benchHandler's handler, ready to
// answer head, a GET of its page with acceptEncoding ("": none).
func fastHitSetup(tb testing.TB, acceptEncoding string) (framing.Fast, string) {
	h := benchHandler(tb)
	head := "GET /page HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\n\r\n"
	if acceptEncoding != "" {
		head = strings.Replace(head, "\r\n\r\n", "\r\nAccept-Encoding: "+acceptEncoding+"\r\n\r\n", 1)
	} else {
		// The copy for clients without gzip is made from their second
		// answer, and ristretto admits it a moment later.
		req := httptest.NewRequest(http.MethodGet, "http://example.com/page", nil)
		for range 2 {
			h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
		}
	}
	fast := h.FastPath(FastOptions{Reserved: []string{"/api/revalidate"}})
	for try := 0; ; try++ {
		hd, _ := framing.ParseHead(head)
		if ok, _ := fast.ServeFast(&hd, io.Discard); ok {
			return fast, head
		}
		if try == 100 {
			tb.Fatal("the fast path does not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type byteCounter struct{ n int64 }

func (w *byteCounter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }
