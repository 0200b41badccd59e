// Command soakorigin is the origin of scripts/soak.sh: a small CMS stand-in
// whose pages carry a version marker, and which fails one refetch in five.
//
// Routes:
//
//	GET  /p/<name>          an HTML page (about -page-bytes) whose body starts
//	                        with "<!-- version=N -->" and ends with
//	                        "<p>version=N</p>": a torn page shows two numbers
//	GET  /bulk/<n>          -bulk-bytes of incompressible bytes
//	                        (application/octet-stream): memory pressure
//	POST /_bump?path=/p/x   the editor saves: the page's version goes up by
//	                        one; answers the new version
//	POST /_arm              warm-up is over: the failure rule starts
//	GET  /_stats            counters, as JSON
//
// The failure rule: once armed, every fifth GET that carries no
// X-Soak-Visitor header answers 503. Visitors (wrk and the checker's
// probes) send that header and isrproxy forwards a visitor's headers on a
// fill, while its refetches (the revalidate API's) carry none: so fills
// never fail and exactly one refetch in five does.
//
// It listens on -listen (127.0.0.1:0 by default) and writes the address it
// got to -addr-file. It uses the standard library only.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type origin struct {
	pageBytes int
	bulkBytes int
	delay     time.Duration

	mu       sync.Mutex
	versions map[string]int64 // page path -> version (1 when never bumped)

	armed     atomic.Bool
	refetches atomic.Int64 // GETs without X-Soak-Visitor since armed
	failed    atomic.Int64 // 503 answers
	requests  atomic.Int64
	bumps     atomic.Int64
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	addrFile := flag.String("addr-file", "", "file to write the listening address to")
	pageBytes := flag.Int("page-bytes", 4096, "approximate size of a /p/ page")
	bulkBytes := flag.Int("bulk-bytes", 64<<10, "size of a /bulk/ page")
	delay := flag.Duration("delay", 2*time.Millisecond, "time taken to render a page, as a CMS would")
	flag.Parse()

	o := &origin{pageBytes: *pageBytes, bulkBytes: *bulkBytes, delay: *delay, versions: map[string]int64{}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/_bump":
		path := r.URL.Query().Get("path")
		if !strings.HasPrefix(path, "/p/") {
			http.Error(w, "path must start with /p/", http.StatusBadRequest)
			return
		}
		o.bumps.Add(1)
		o.mu.Lock()
		v := o.version(path) + 1
		o.versions[path] = v
		o.mu.Unlock()
		fmt.Fprintf(w, "%d\n", v)
	case r.Method == http.MethodPost && r.URL.Path == "/_arm":
		o.armed.Store(true)
		writeString(w, "armed\n")
	case r.Method == http.MethodGet && r.URL.Path == "/_stats":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{
			"requests": o.requests.Load(), "refetches": o.refetches.Load(),
			"failed": o.failed.Load(), "bumps": o.bumps.Load(),
		})
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case strings.HasPrefix(r.URL.Path, "/p/"):
		if o.fails(r) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the CMS is having a bad moment", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(o.delay)
		o.mu.Lock()
		v := o.version(r.URL.Path)
		o.mu.Unlock()
		body := o.page(r.URL.Path, v)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		writeString(w, body)
	case strings.HasPrefix(r.URL.Path, "/bulk/"):
		if o.fails(r) {
			http.Error(w, "the CMS is having a bad moment", http.StatusServiceUnavailable)
			return
		}
		n, _ := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/bulk/"), 10, 64)
		body := make([]byte, o.bulkBytes)
		rng := rand.New(rand.NewPCG(n, 7))
		for i := 0; i < len(body); i += 8 {
			x := rng.Uint64()
			for j := i; j < min(i+8, len(body)); j++ {
				body[j] = byte(x)
				x >>= 8
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

// version is path's current version; o.mu is held.
func (o *origin) version(path string) int64 {
	if v, ok := o.versions[path]; ok {
		return v
	}
	return 1
}

// fails applies the failure rule: once armed, every fifth request without
// X-Soak-Visitor (a refetch) fails.
func (o *origin) fails(r *http.Request) bool {
	if !o.armed.Load() || r.Header.Get("X-Soak-Visitor") != "" {
		return false
	}
	if o.refetches.Add(1)%5 != 0 {
		return false
	}
	o.failed.Add(1)
	return true
}

// page renders path at version v: the marker at both ends, filler between.
func (o *origin) page(path string, v int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- version=%d -->\n<!doctype html><title>%s</title>\n", v, path)
	line := fmt.Sprintf("<p>%s is a page of the soak test, rendered at version %d.</p>\n", path, v)
	for b.Len()+len(line) < o.pageBytes {
		b.WriteString(line)
	}
	fmt.Fprintf(&b, "<p>version=%d</p>\n", v)
	return b.String()
}

func writeString(w http.ResponseWriter, s string) { w.Write([]byte(s)) }
