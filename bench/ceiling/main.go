// Command ceiling is the benchmark's "Go ceiling": net/http serving the
// sample origin's pages from memory, with no cache logic at all. Its
// throughput is the upper bound for any server built on net/http on the
// same machine, and the harness states every other system as a ratio of it.
//
// At start it renders pages 0…pages-1 at the given version (the bytes the
// origin sends) and gzips each once; a request gets the gzip bytes when its
// Accept-Encoding lists gzip, the plain bytes otherwise. Header values are
// built once, so a hit allocates nothing beyond net/http's own work.
//
// With -tls-cert and -tls-key it serves HTTPS instead (net/http's own TLS:
// HTTP/2 and HTTP/1.1 by ALPN, session tickets on), the ceiling of
// bench/tls.sh.
//
//	ceiling -listen 127.0.0.1:18101 -pages 1000
//	ceiling -listen 127.0.0.1:18201 -tls-cert cert.pem -tls-key key.pem
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/isrproxy/isrproxy/bench/internal/page"
)

type entry struct {
	plain, gzip         []byte
	plainLen, gzipLen   []string
	etagPlain, etagGzip []string
	tag, version        []string
}

var (
	ctHTML       = []string{"text/html; charset=utf-8"}
	cacheControl = []string{"public, max-age=31536000"}
	varyAE       = []string{"Accept-Encoding"}
	ceGzip       = []string{"gzip"}
)

type ceiling struct{ pages []entry }

func (c *ceiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := page.ParsePath(r.URL.Path)
	if n < 0 || n >= len(c.pages) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	e := &c.pages[n]
	h := w.Header()
	h["Content-Type"] = ctHTML
	h["Cache-Control"] = cacheControl
	h["Vary"] = varyAE
	h["Cache-Tag"] = e.tag
	h["X-Version"] = e.version
	body := e.plain
	if page.AcceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = e.gzip
		h["Content-Encoding"] = ceGzip
		h["Content-Length"] = e.gzipLen
		h["Etag"] = e.etagGzip
	} else {
		h["Content-Length"] = e.plainLen
		h["Etag"] = e.etagPlain
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("ceiling: ")
	listen := flag.String("listen", "127.0.0.1:18101", "listen address")
	pages := flag.Int("pages", 1000, "serve pages 0…pages-1")
	version := flag.Int("version", 1, "version of the pages")
	certFile := flag.String("tls-cert", "", "PEM certificate: serve HTTPS (with -tls-key)")
	keyFile := flag.String("tls-key", "", "PEM key of -tls-cert")
	flag.Parse()
	if (*certFile == "") != (*keyFile == "") {
		log.Fatal("-tls-cert and -tls-key go together")
	}

	start := time.Now()
	c := &ceiling{pages: make([]entry, *pages)}
	for n := range c.pages {
		plain := page.Render(n, *version)
		gz := page.Gzip(plain)
		etag := fmt.Sprintf(`"p%d-v%d`, n, *version)
		c.pages[n] = entry{
			plain: plain, gzip: gz,
			plainLen:  []string{strconv.Itoa(len(plain))},
			gzipLen:   []string{strconv.Itoa(len(gz))},
			etagPlain: []string{etag + `"`},
			etagGzip:  []string{etag + `-gz"`},
			tag:       []string{page.Tag(n)},
			version:   []string{strconv.Itoa(*version)},
		}
	}
	log.Printf("%d pages ready in %v", *pages, time.Since(start).Round(time.Millisecond))

	srv := &http.Server{
		Addr:              *listen,
		Handler:           c,
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
	log.Printf("listening on %s", *listen)
	var err error
	if *certFile != "" {
		err = srv.ListenAndServeTLS(*certFile, *keyFile)
	} else {
		err = srv.ListenAndServe()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
