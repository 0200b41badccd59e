// Package demo is a small, deliberately slow sample site, so that isrproxy
// can be tried with no CMS at hand: `isrproxy demo` puts it behind the proxy.
package demo

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Site is the sample origin. Every page takes Delay to render, shows when
// it was rendered and its version, and a POST to a page bumps its version
// (the "editor saves" of a CMS).
type Site struct {
	// Delay is how long a page takes to render.
	Delay time.Duration

	mu       sync.Mutex     // guards versions
	versions map[string]int // path -> version
}

// ServeHTTP renders a page.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.versions == nil {
		s.versions = make(map[string]int)
	}
	if r.Method == http.MethodPost {
		s.versions[r.URL.Path]++
	}
	version := s.versions[r.URL.Path] + 1
	s.mu.Unlock()

	if r.URL.Path == "/favicon.ico" {
		http.NotFound(w, r)
		return
	}
	time.Sleep(s.Delay) // the slow CMS
	title := html.EscapeString(strings.Trim(r.URL.Path, "/"))
	if title == "" {
		title = "home"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Tag", "demo, page:"+strings.ReplaceAll(title, " ", "_"))
	fmt.Fprintf(w, `<!doctype html>
<html><head><title>%[1]s — isrproxy demo</title><meta name="version" content="%[2]d"></head>
<body>
<h1>%[1]s</h1>
<p>Version %[2]d, rendered at %[3]s after a %[4]s wait.</p>
<p>Try <a href="/">home</a>, <a href="/events/42">/events/42</a>, <a href="/blog/hello">/blog/hello</a>.</p>
</body></html>
`, title, version, time.Now().Format(time.RFC3339Nano), s.Delay)
}
