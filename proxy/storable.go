package proxy

import (
	"bytes"
	"compress/gzip"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/cache"
)

// builder turns a complete origin response into a [cache.Page], and says
// whether it may be stored (docs/behaviour.md#what-is-stored).
type builder struct {
	statuses      map[int]bool
	compressTypes map[string]bool
	compressMin   int64         // smaller bodies are stored as received (COMPRESS_MIN_BYTES)
	maxPlain      int64         // bound on a stored gzip body's decompressed size
	tagHeaders    []string      // TAG_HEADERS, canonical names
	ignore        cache.Matcher // IGNORE_QUERY_PARAMS, for the keys links name
	keep          cache.Matcher // KEEP_QUERY_PARAMS, likewise
	gunzip        gunzipper     // decompresses gzip bodies once each, pooled
}

// build returns the page for f, fetched for key with generation gen, and
// the reason it must not be stored ("" when it may be). The page is built
// even when it is not storable: the visitor who fetched it is answered with it.
func (b *builder) build(key cache.Key, f *fetched, varyReq http.Header, gen uint64, now time.Time) (*cache.Page, string) {
	h := f.header.Clone()
	p := &cache.Page{Key: key, Status: f.status, Body: f.body, Gen: gen, StoredAt: now}
	reason := b.refusal(f)
	// The tag headers feed the index and nothing else: never sent on.
	p.Tags = parseTags(h, b.tagHeaders)
	for _, name := range b.tagHeaders {
		h.Del(name)
	}
	enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding")))
	gzipped := enc == "gzip" || enc == "x-gzip"
	var (
		plain    *bytes.Buffer // a gzip body decompressed, when its links are read
		plainLen int64
		gzipErr  error
	)
	html := reason == "" && isHTML(h.Get("Content-Type"))
	if gzipped {
		// Decompressed once, here, for its length and its links: the
		// stored body stays compressed and hits never parse it.
		plain, plainLen, gzipErr = b.gunzip.decompress(p.Body, b.maxPlain, html)
		defer b.gunzip.release(plain)
	}
	if reason == "" {
		var doc []byte // the HTML whose links are read, if any
		switch {
		case !html:
		case enc == "" || enc == "identity":
			doc = f.body
		case plain != nil:
			doc = plain.Bytes()
		}
		p.Links = cache.NewLinks(b.links(key, f, doc)) // links.go: read once at store time, before compression
	}

	p.OriginAge = parseAge(h.Get("Age"))
	h.Del("Age")
	h.Del("Content-Length")

	varyNames, star := parseVary(h)
	if star && reason == "" {
		reason = "Vary: *"
	}
	for _, name := range varyNames {
		switch name {
		case "Accept-Encoding", "Cookie", "Authorization": // satisfied by construction
		default:
			p.Vary = append(p.Vary, name)
			p.VaryValues = append(p.VaryValues, cache.VaryValue(varyReq, name))
		}
	}

	switch enc {
	case "", "identity":
		// Only a page that will be stored is compressed: an unstorable
		// answer goes to its one visitor as the origin sent it. A body
		// stored as received keeps the origin's headers exactly.
		if reason == "" && b.worthCompressing(h.Get("Content-Type"), len(p.Body)) {
			if zipped, ok := gzipSmaller(p.Body); ok {
				p.PlainLen = int64(len(p.Body))
				p.Body, p.Gzip = zipped, true
				h.Set("Content-Encoding", "gzip")
				weakenETag(h)
			}
		}
	case "gzip", "x-gzip":
		n, err := plainLen, gzipErr
		if err != nil {
			if reason == "" {
				reason = "gzip body: " + err.Error()
			}
			// Answer the fetcher as the origin sent it.
			h.Set("Content-Length", strconv.Itoa(len(p.Body)))
			p.Header = cache.FieldsOf(h)
			return p, reason
		}
		p.PlainLen, p.Gzip = n, true
		h.Set("Content-Encoding", "gzip")
	default:
		// Another coding (br, deflate, zstd, a list of them): stored and
		// served as received, to every visitor, its headers untouched.
		// isrproxy cannot decode it for a client that does not accept it,
		// so it is the origin's representation for everyone, as a cache
		// that does not negotiate would serve it
		// (docs/behaviour.md#compression).
	}

	if p.Gzip && !star { // "Vary: *" already says it all, and must stay
		if !slices.Contains(varyNames, "Accept-Encoding") {
			varyNames = append(varyNames, "Accept-Encoding")
		}
		h.Set("Vary", strings.Join(varyNames, ", "))
	}
	p.Body = compact(p.Body)
	h.Set("Content-Length", strconv.Itoa(len(p.Body)))
	p.Header = cache.FieldsOf(h)
	p.ETag = h.Get("Etag")
	p.LastModified = h.Get("Last-Modified")
	if reason == "" && f.status == http.StatusOK && (len(p.Body) == 0 || (p.Gzip && p.PlainLen == 0)) {
		reason = "empty 200"
	}
	return p, reason
}

// refusal is why a response must not be stored, or "".
func (b *builder) refusal(f *fetched) string {
	switch {
	case !b.statuses[f.status]:
		return "status " + strconv.Itoa(f.status) + " not in CACHE_STATUSES"
	case len(f.header["Set-Cookie"]) > 0:
		return "Set-Cookie"
	case f.status == http.StatusOK && len(f.body) == 0:
		return "empty 200"
	}
	if d := cacheControlRefusal(f.header); d != "" {
		return "Cache-Control: " + d
	}
	return ""
}

// cacheControlRefusal returns "private" or "no-store" when any spelling of
// them appears among the Cache-Control directives, over every line.
func cacheControlRefusal(h http.Header) string {
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, _, _ := strings.Cut(d, "=")
			name = strings.ToLower(strings.Trim(strings.TrimSpace(name), `"`))
			if name == "private" || name == "no-store" {
				return name
			}
		}
	}
	return ""
}

// parseVary returns the canonical header names of every Vary line, and
// whether one of them is "*".
func parseVary(h http.Header) (names []string, star bool) {
	for _, line := range h.Values("Vary") {
		for _, name := range strings.Split(line, ",") {
			name = strings.TrimSpace(name)
			switch {
			case name == "":
			case name == "*":
				star = true
			default:
				name = http.CanonicalHeaderKey(name)
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
	}
	return names, star
}

// parseTags returns the names in the headers names (canonical), separated
// by spaces or commas.
func parseTags(h http.Header, names []string) []string {
	var tags []string
	for _, name := range names {
		for _, line := range h.Values(name) {
			for _, t := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
				if !slices.Contains(tags, t) {
					tags = append(tags, t)
				}
			}
		}
	}
	return tags
}

// worthCompressing reports whether a body of size bytes and contentType is
// one isrproxy gzips when it stores it: a type of COMPRESS_TYPES, at least
// COMPRESS_MIN_BYTES long.
func (b *builder) worthCompressing(contentType string, size int) bool {
	if len(b.compressTypes) == 0 || contentType == "" || size == 0 || int64(size) < b.compressMin {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && b.compressTypes[mt]
}

// gzipSmaller returns body gzipped, and whether that is smaller than body:
// a body gzip cannot shrink (already compressed data mislabelled as text,
// random tokens) is stored as received.
func gzipSmaller(body []byte) ([]byte, bool) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(body)
	zw.Close()
	if buf.Len() >= len(body) {
		return nil, false
	}
	return buf.Bytes(), true
}

// weakenETag makes a strong ETag weak: the bytes sent are not the
// origin's. A malformed one (an empty line included) is dropped, never
// rewritten into another malformed one.
func weakenETag(h http.Header) {
	if len(h["Etag"]) == 0 {
		return
	}
	if weak, ok := cache.WeakETag(h.Get("Etag")); ok {
		h.Set("Etag", weak)
	} else {
		h.Del("Etag")
	}
}

var errGzipTooLarge = errors.New("decompresses beyond the limit")

// maxAge is what an Age too large to represent counts as (RFC 9111 §1.2.2).
const maxAge = 1 << 31

// parseAge reads an Age header: a non-negative integer of seconds; anything
// else counts as none.
func parseAge(v string) int64 {
	v = strings.TrimSpace(v)
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > maxAge {
		return maxAge
	}
	return n
}

// compact returns b in an array of its own length when b's spare capacity
// (left by io.ReadAll or a bytes.Buffer growing by doubling) is worth more
// than a copy: a stored body lives for days, its spare bytes with it.
func compact(b []byte) []byte {
	if cap(b)-len(b) <= len(b)/16 {
		return b
	}
	return bytes.Clone(b)
}
