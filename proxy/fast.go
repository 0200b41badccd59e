package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/framing"
)

// FastOptions configures the fast path of a listener's HTTP/1.1 connections.
type FastOptions struct {
	// Reserved are path prefixes that are never pages (the revalidate
	// API): a request for one goes to net/http.
	Reserved []string
	// Log is the access log's logger: each fast answer writes the line
	// [AccessLog] would. Nil, or info disabled: no line, as AccessLog.
	Log *slog.Logger
	// HTTPS is true for the TLS listener's HTTP/1.1 connections: its
	// requests are https ones (keys, variants).
	HTTPS bool
}

// FastPath returns the handler's fast path for the HTTP/1.1 connections
// of a listener (see [framing.Fast]): it answers a plain GET or HEAD of a
// stored, fresh page exactly as ServeHTTP would, straight to the
// connection, and declines everything else, which net/http then reads and
// ServeHTTP answers as if there were no fast path. It must only be used
// where ServeHTTP is reached as the page handler with nothing in between
// that changes a page request: no trusted proxies, no HTTPS redirect, no
// ACME challenge, the API's path in Reserved.
func (h *Handler) FastPath(opts FastOptions) framing.Fast {
	f := &fastPath{h: h, reserved: opts.Reserved, https: opts.HTTPS}
	if opts.Log != nil && opts.Log.Enabled(context.Background(), slog.LevelInfo) {
		f.log = opts.Log
	}
	return f
}

type fastPath struct {
	h        *Handler
	reserved []string
	https    bool
	log      *slog.Logger // nil: no access log
}

// fastRequest is the per-answer scratch of the fast path, pooled.
type fastRequest struct {
	header http.Header // Accept-Encoding only, for Lookup
	ae     [1]string
	buf    []byte
}

var fastRequests = sync.Pool{New: func() any {
	return &fastRequest{header: make(http.Header, 1), buf: make([]byte, 0, 8<<10)}
}}

// ServeFast answers a plain hit, or declines having written nothing.
func (f *fastPath) ServeFast(hd *framing.Head, w io.Writer) (bool, error) {
	h := f.h
	if hd.Cookie && !h.bypassCookies.Empty() {
		return false, nil // mustBypass reads the cookies' names
	}
	for _, prefix := range f.reserved {
		if strings.HasPrefix(hd.Path, prefix) {
			return false, nil
		}
	}
	// ParseHead took only paths whose escaped, decoded and cleaned forms
	// are the path itself (but for a trailing slash, which bypassPath keeps).
	if h.bypassPaths.Match(hd.Path) {
		return false, nil
	}
	host := cache.NormalizeHost(hd.Host, f.https)
	if h.allowed != nil && !h.allowed[host] {
		return false, nil
	}
	key, err := cache.NewKey(host, hd.Path, hd.Query, h.ignore, h.keep)
	if err != nil {
		return false, nil
	}
	entry := h.store.Get(key)
	if entry == nil {
		return false, nil
	}
	for _, p := range entry.Variants {
		// Only Accept-Encoding is read from the request: a variant chosen
		// by another header must be chosen by ServeHTTP, which has them all.
		for _, name := range p.Vary {
			if name != "Accept-Encoding" {
				return false, nil
			}
		}
	}
	rq := fastRequests.Get().(*fastRequest)
	defer fastRequests.Put(rq)
	delete(rq.header, "Accept-Encoding")
	var ae []string
	if hd.HasAcceptEncoding {
		rq.ae[0] = hd.AcceptEncoding
		ae = rq.ae[:]
		rq.header["Accept-Encoding"] = ae
	}
	p := entry.Lookup(f.https, rq.header)
	if p == nil {
		return false, nil
	}
	now := h.now()
	if h.isStale(p, now) {
		return false, nil // serveStored claims the refresh
	}
	text := http.StatusText(p.Status)
	if text == "" || p.Status < 200 || p.Status == http.StatusNoContent || p.Status == http.StatusNotModified {
		return false, nil
	}
	gz := p.Gzip && acceptsGzip(ae)
	hdr, body := p.Header, p.Body
	if p.Gzip && !gz {
		hdr, body = p.PlainHeader(), h.plain.Peek(p)
		if body == nil {
			return false, nil // decompressed while written, or counted first: ServeHTTP's
		}
	}
	if len(body) > largeBody {
		return false, nil
	}
	start := time.Now()
	age := p.OriginAge + int64(now.Sub(p.StoredAt)/time.Second)
	buf, ok := appendAnswer(rq.buf[:0], p.Status, text, hdr, p.AgeHeader(max(age, 0)), verdictHit, len(body))
	if !ok {
		return false, nil
	}
	sent := int64(0)
	if hd.Method != http.MethodHead {
		buf = append(buf, body...)
		sent = int64(len(body))
	}
	h.metrics.RequestStarted()
	h.metrics.Served(verdictHit.name)
	_, err = w.Write(buf)
	h.metrics.RequestEnded()
	if cap(buf) <= 128<<10 {
		rq.buf = buf[:0]
	}
	if f.log != nil {
		f.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.String("method", hd.Method),
			slog.String("path", redact(hd.Path, hd.Query)),
			slog.Int("status", p.Status),
			slog.String("cache", verdictHit.xCache[0]),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", sent),
		)
	}
	// No runtime.Gosched here, unlike writeWhole: on this path it cost the
	// tail more than it gave (bench/ab.sh, two runs of 5 rounds: p99 0.66-0.96x
	// without it, r/s 0.90-1.01x).
	return true, err
}

// appendAnswer appends the status line and header block net/http writes
// for an answer from stored header hdr with Age, X-Cache and Cache-Status
// set to the verdict's: the fields sorted by name, each line as stored,
// then Date unless hdr has one, then the empty line. It reports false for
// a stored header net/http would change or add to (no Content-Type to
// spare sniffing, a Content-Length other than the body's, framing or
// connection fields, a value it would trim or fold).
func appendAnswer(b []byte, status int, text string, hdr cache.Fields, age []string, v verdict, bodyLen int) ([]byte, bool) {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, "\r\n"...)
	set := [...]cache.Field{{Name: "Age", Values: age}, {Name: "Cache-Status", Values: v.cacheStatus}, {Name: "X-Cache", Values: v.xCache}}
	next := 0
	haveType, haveDate, haveLength := false, false, false
	for _, f := range hdr {
		for next < len(set) && set[next].Name <= f.Name {
			b = appendField(b, set[next])
			next++
		}
		if next > 0 && set[next-1].Name == f.Name {
			continue // replaced, as the handler's map assignment does
		}
		switch f.Name {
		case "Content-Type":
			haveType = true
		case "Content-Encoding":
			haveType = haveType || (len(f.Values) > 0 && f.Values[0] != "")
		case "Date":
			haveDate = true
		case "Content-Length":
			var digits [20]byte
			if len(f.Values) != 1 || f.Values[0] != string(strconv.AppendInt(digits[:0], int64(bodyLen), 10)) {
				return b, false
			}
			haveLength = true
		case "Transfer-Encoding", "Trailer", "Connection", "Keep-Alive":
			return b, false
		}
		if strings.HasPrefix(f.Name, http.TrailerPrefix) || !fieldOK(f) {
			return b, false
		}
		b = appendField(b, f)
	}
	for ; next < len(set); next++ {
		b = appendField(b, set[next])
	}
	if !haveType || !haveLength {
		return b, false
	}
	if !haveDate {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...), true
}

func appendField(b []byte, f cache.Field) []byte {
	for _, v := range f.Values {
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b
}

// fieldOK reports a stored field net/http writes as it is: a token for a
// name, and values with no CR or LF and no space or tab at either end.
func fieldOK(f cache.Field) bool {
	if f.Name == "" {
		return false
	}
	for i := 0; i < len(f.Name); i++ {
		if c := f.Name[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	for _, v := range f.Values {
		if v != "" && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			return false
		}
		if strings.ContainsAny(v, "\r\n") {
			return false
		}
	}
	return true
}

// date is the Date header value of one second, shared by its answers.
type date struct {
	sec   int64
	value string
}

var lastDate atomic.Pointer[date]

// httpDate is net/http's Date value for now, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := lastDate.Load(); d != nil && d.sec == sec {
		return d.value
	}
	d := &date{sec: sec, value: now.UTC().Format(http.TimeFormat)}
	lastDate.Store(d)
	return d.value
}
