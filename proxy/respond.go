package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/coalesce"
)

// A verdict is what X-Cache and Cache-Status (RFC 9211) say of an answer.
// Their slices are shared by every answer and never modified.
type verdict struct {
	name        string // metrics label
	xCache      []string
	cacheStatus []string
}

// label sets X-Cache and Cache-Status to v on h.
func (v verdict) label(h http.Header) {
	h["X-Cache"] = v.xCache
	h["Cache-Status"] = v.cacheStatus
}

var (
	verdictHit        = verdict{"HIT", []string{"HIT"}, []string{"isrproxy; hit"}}
	verdictStale      = verdict{"STALE", []string{"STALE"}, []string{"isrproxy; hit; fwd=stale"}}
	verdictMissStored = verdict{"MISS", []string{"MISS"}, []string{"isrproxy; fwd=miss; stored"}}
	verdictMiss       = verdict{"MISS", []string{"MISS"}, []string{"isrproxy; fwd=miss"}}
	verdictBypass     = verdict{"BYPASS", []string{"BYPASS"}, []string{"isrproxy; fwd=bypass"}}
)

// write answers r from p. The stored header maps are shared, never cloned:
// the slices are assigned into the response's map, which net/http only
// reads. age < 0 sends the origin's own Age, if any.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, p *cache.Page, v verdict, age int64) {
	h.metrics.Served(v.name)
	gz := p.Gzip && acceptsGzip(r.Header["Accept-Encoding"])
	hdr := p.Header
	if p.Gzip && !gz {
		hdr = p.PlainHeader()
	}
	out := w.Header()
	for _, f := range hdr {
		out[f.Name] = f.Values
	}
	v.label(out)
	if age < 0 {
		age = p.OriginAge
	}
	if age > 0 || v.name != "MISS" {
		out["Age"] = p.AgeHeader(max(age, 0))
	}
	if p.Status == http.StatusOK && notModified(r.Header, p) {
		delete(out, "Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if p.Status == http.StatusOK && len(r.Header["Range"]) > 0 && h.writeRange(w, r, p, hdr, gz) {
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(p.Status)
		return
	}
	body, size := p.Body, int64(len(p.Body))
	if p.Gzip && !gz {
		body, size = h.plain.Body(p), p.PlainLen // nil body: decompress while writing
	}
	if body != nil && size <= largeBody {
		writeWhole(w, r, p.Status, body)
		return
	}
	w.WriteHeader(p.Status)
	// A client that stops reading is cut off by the connection's send
	// timeout (coalesce.SendTimeout), as nginx's send_timeout does.
	if body != nil {
		w.Write(body)
		return
	}
	h.writeGunzipped(w, p.Body)
}

// writeWhole sends an answer whose body fits the socket buffers in one
// write to the connection when it can be held ([coalesce]): net/http's
// 4 KiB connection buffer would otherwise split the header block and a
// few KiB of body into two system calls. It then yields the processor: a
// client that sends its next request within microseconds (keep-alive on a
// fast network) would otherwise let this connection's goroutine run on for
// its whole time slice while other connections' requests wait (measured
// with wrk: p99 30 ms instead of 5 ms at 16 connections).
func writeWhole(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	c := coalesce.From(r.Context())
	f, ok := w.(http.Flusher)
	if c == nil || !ok {
		w.WriteHeader(status)
		w.Write(body)
		return
	}
	c.Hold()
	w.WriteHeader(status)
	w.Write(body)
	f.Flush()
	c.Release()
	runtime.Gosched()
}

// largeBody is the size above which an answer is not gathered into one
// write: it would not fit the socket buffers anyway.
const largeBody = 64 << 10

// writeGunzipped sends the decompressed body to a client without gzip.
func (h *Handler) writeGunzipped(w io.Writer, body []byte) {
	zr, _ := h.gunzip.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(body))
	} else {
		err = zr.Reset(bytes.NewReader(body))
	}
	if err != nil {
		return // checked when stored: cannot happen
	}
	io.Copy(w, zr)
	h.gunzip.Put(zr)
}

// acceptsGzip reports whether Accept-Encoding lists gzip with q > 0.
func acceptsGzip(lines []string) bool {
	for _, line := range lines {
		for line != "" {
			var item string
			item, line, _ = strings.Cut(line, ",")
			coding, params, _ := strings.Cut(item, ";")
			coding = strings.TrimSpace(coding)
			if !strings.EqualFold(coding, "gzip") && !strings.EqualFold(coding, "x-gzip") {
				continue
			}
			return qPositive(params)
		}
	}
	return false
}

// qPositive reports whether the parameters of an Accept-Encoding item give
// a q above zero (no q means 1).
func qPositive(params string) bool {
	for params != "" {
		var param string
		param, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(param, "=")
		if strings.EqualFold(strings.TrimSpace(name), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return err == nil && q > 0
		}
	}
	return true
}

// notModified evaluates If-None-Match (weak comparison), or else
// If-Modified-Since, against the stored validators (RFC 9110 §13.2.2).
func notModified(h http.Header, p *cache.Page) bool {
	if inm := h["If-None-Match"]; len(inm) > 0 {
		// Weak comparison (RFC 9110 §13.1.2); "*" matches any stored page.
		want := strings.TrimPrefix(p.ETag, "W/")
		for _, line := range inm {
			for tag, rest := nextETag(line); tag != ""; tag, rest = nextETag(rest) {
				if tag == "*" || (want != "" && strings.TrimPrefix(tag, "W/") == want) {
					return true
				}
			}
		}
		return false
	}
	ims := h.Get("If-Modified-Since")
	if ims == "" {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	// Without Last-Modified, the stored Date stands for it, or else the
	// time the page was received (RFC 9111 §4.3.2).
	modified := p.StoredAt
	if p.LastModified != "" {
		if modified, err = http.ParseTime(p.LastModified); err != nil {
			return false
		}
	} else if date, err := http.ParseTime(p.Header.Get("Date")); err == nil {
		modified = date
	}
	return !modified.Truncate(time.Second).After(since)
}

// nextETag returns the first entity tag of an If-None-Match list (or "*")
// and the rest of the list; "" when none is left or the list is malformed.
// A tag may hold commas, so the list is scanned, not split.
func nextETag(s string) (tag, rest string) {
	s = strings.TrimLeft(s, " \t,")
	if s == "" {
		return "", ""
	}
	if s[0] == '*' {
		return "*", s[1:]
	}
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) < start+2 || s[start] != '"' {
		return "", ""
	}
	for i := start + 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:]
		case c < 0x21 || c == 0x7f:
			return "", ""
		}
	}
	return "", ""
}
