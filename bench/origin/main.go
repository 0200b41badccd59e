// Command origin is the benchmark's slow sample origin: a stand-in for a
// legacy CMS behind mod_deflate.
//
// It serves /page/N (N in 0…999999): an HTML page of about 16 KiB that
// compresses 4–6× with gzip, after a configurable delay, gzipped for
// clients that ask. Each page has a version, shown in the body as
// <meta name="version" content="V"> and in the X-Version header; a POST to
// the page bumps it. GET /__stats answers request counters as JSON
// (?page=N adds that page's counters).
//
//	origin -listen 127.0.0.1:18100 -delay 50ms [-gzip=false]
//
// The environment variables ORIGIN_LISTEN, ORIGIN_DELAY and ORIGIN_GZIP
// (on/off) set the defaults of the flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/isrproxy/isrproxy/bench/internal/page"
)

type origin struct {
	delay  time.Duration
	gzip   bool
	maxAge int

	versions [page.MaxPage + 1]atomic.Int32 // 0 means version 1
	gets     [page.MaxPage + 1]atomic.Int32

	requests, pageGets, gzipped, notModified, posts, other atomic.Int64
	inflight, maxInflight                                  atomic.Int64
}

func (o *origin) version(n int) int { return int(o.versions[n].Load()) + 1 }

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	if r.URL.Path == "/__stats" {
		o.stats(w, r)
		return
	}
	n := page.ParsePath(r.URL.Path)
	if n < 0 {
		o.other.Add(1)
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		o.posts.Add(1)
		v := int(o.versions[n].Add(1)) + 1
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "{\"page\":%d,\"version\":%d}\n", n, v)
		return
	default:
		o.other.Add(1)
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	o.pageGets.Add(1)
	o.gets[n].Add(1)
	cur := o.inflight.Add(1)
	defer o.inflight.Add(-1)
	for {
		m := o.maxInflight.Load()
		if cur <= m || o.maxInflight.CompareAndSwap(m, cur) {
			break
		}
	}

	// The version is read before the delay, as a CMS reads its database
	// before it renders: a fetch that started before a bump may return
	// the old version. The page is rendered (and gzipped) first and the
	// delay counts from the request's start, so the origin answers at
	// its stated delay, however long rendering takes on a loaded machine.
	start := time.Now()
	v := o.version(n)
	body := page.Render(n, v)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(o.maxAge))
	h.Set("Cache-Tag", page.Tag(n))
	h.Set("X-Version", strconv.Itoa(v))
	h.Set("Last-Modified", lastModified(v))
	etag := fmt.Sprintf(`"p%d-v%d`, n, v)
	gzipped := false
	if o.gzip {
		h.Set("Vary", "Accept-Encoding")
		if page.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
			body = page.Gzip(body)
			h.Set("Content-Encoding", "gzip")
			etag += "-gz"
			gzipped = true
		}
	}
	if wait := o.delay - time.Since(start); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if gzipped {
		o.gzipped.Add(1)
	}
	etag += `"`
	h.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == "W/"+etag) {
		o.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// lastModified is a date that moves forward with the version.
func lastModified(v int) string {
	return epoch.Add(time.Duration(v) * time.Minute).Format(http.TimeFormat)
}

func (o *origin) stats(w http.ResponseWriter, r *http.Request) {
	s := map[string]any{
		"requests":     o.requests.Load(),
		"page_gets":    o.pageGets.Load(),
		"gzipped":      o.gzipped.Load(),
		"not_modified": o.notModified.Load(),
		"posts":        o.posts.Load(),
		"other":        o.other.Load(),
		"inflight":     o.inflight.Load(),
		"max_inflight": o.maxInflight.Load(),
		"delay_ms":     float64(o.delay) / float64(time.Millisecond),
		"gzip":         o.gzip,
	}
	if p := r.URL.Query().Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > page.MaxPage {
			http.Error(w, `{"message":"bad page"}`, http.StatusBadRequest)
			return
		}
		s["page"] = n
		s["page_gets_n"] = o.gets[n].Load()
		s["version"] = o.version(n)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(s)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("origin: ")
	defDelay, err := time.ParseDuration(env("ORIGIN_DELAY", "50ms"))
	if err != nil {
		log.Fatalf("ORIGIN_DELAY: %v", err)
	}
	o := &origin{}
	listen := flag.String("listen", env("ORIGIN_LISTEN", "127.0.0.1:18100"), "listen address")
	flag.DurationVar(&o.delay, "delay", defDelay, "delay before each page answer")
	flag.BoolVar(&o.gzip, "gzip", env("ORIGIN_GZIP", "on") != "off", "gzip pages for clients that accept it")
	flag.IntVar(&o.maxAge, "max-age", 31536000, "max-age of the Cache-Control header")
	flag.Parse()

	srv := &http.Server{
		Addr:              *listen,
		Handler:           o,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("listening on %s, delay %v, gzip %v", *listen, o.delay, o.gzip)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
