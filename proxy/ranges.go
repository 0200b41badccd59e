package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/isrproxy/isrproxy/cache"
)

// Range requests of a stored complete 200 are answered from memory
// (docs/behaviour.md#range-requests), on the representation the visitor
// gets: the stored gzip bytes for a gzip client, the decompressed ones for
// any other. The parsing follows RFC 9110 §14, as net/http's ServeContent
// does; ServeContent itself is not used, because it answers conditionals
// its own way, sniffs a Content-Type when there is none, and sets a
// Content-Length only for an unencoded body.

// maxRanges is the most ranges answered in one request; a request naming
// more is answered whole, as RFC 9110 §14.2 allows (many small ranges are a
// way to make a server work hard for little).
const maxRanges = 32

// A byteRange is a satisfiable range of a representation: length bytes
// from start.
type byteRange struct{ start, length int64 }

// contentRange is the Content-Range value of r in a representation of size
// bytes.
func (r byteRange) contentRange(size int64) string {
	return "bytes " + strconv.FormatInt(r.start, 10) + "-" + strconv.FormatInt(r.start+r.length-1, 10) +
		"/" + strconv.FormatInt(size, 10)
}

// parseRange reads a Range header value for a representation of size
// bytes. ok is false when the header must be ignored: another unit than
// bytes, a malformed range set, more than maxRanges ranges, or ranges
// whose total exceeds the representation (overlaps). Otherwise ranges
// holds the satisfiable ones, in the order asked; none means 416.
func parseRange(v string, size int64) (ranges []byteRange, ok bool) {
	unit, set, found := strings.Cut(v, "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, false
	}
	n, total := 0, int64(0)
	for spec := range strings.SplitSeq(set, ",") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // an empty list item counts for nothing
		}
		if n++; n > maxRanges {
			return nil, false
		}
		first, last, found := strings.Cut(spec, "-")
		if !found {
			return nil, false
		}
		var r byteRange
		switch {
		case first == "": // a suffix: the last bytes
			suffix, ok := parseDigits(last)
			if !ok {
				return nil, false
			}
			if suffix == 0 || size == 0 {
				continue // unsatisfiable
			}
			suffix = min(suffix, size)
			r = byteRange{size - suffix, suffix}
		default:
			start, ok := parseDigits(first)
			if !ok {
				return nil, false
			}
			end := int64(math.MaxInt64)
			if last != "" {
				if end, ok = parseDigits(last); !ok || end < start {
					return nil, false
				}
			}
			if start >= size {
				continue // unsatisfiable
			}
			r = byteRange{start, min(end, size-1) - start + 1}
		}
		ranges = append(ranges, r)
		if total += r.length; total > size {
			return nil, false
		}
	}
	if n == 0 {
		return nil, false
	}
	return ranges, true
}

// parseDigits reads a non-empty run of decimal digits, saturating at the
// largest int64 (a position beyond any body).
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-9)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// ifRangeHolds evaluates If-Range against the representation's validators
// (RFC 9110 §13.1.5): an entity tag must match the ETag by strong
// comparison; a date must equal Last-Modified, and Last-Modified must be a
// strong validator: the stored Date at least a second after it (§8.8.2.2).
func ifRangeHolds(v string, hdr cache.Fields) bool {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		etag := hdr.Get("Etag")
		return !strings.HasPrefix(v, "W/") && strings.HasPrefix(etag, `"`) && v == etag
	}
	since, err := http.ParseTime(v)
	if err != nil {
		return false
	}
	modified, err := http.ParseTime(hdr.Get("Last-Modified"))
	if err != nil || !modified.Equal(since) {
		return false
	}
	date, err := http.ParseTime(hdr.Get("Date"))
	return err == nil && date.Sub(modified) >= 1e9
}

// writeRange answers a Range request for a stored 200 with 206 or 416 and
// reports true, or reports false when the request is to be answered whole:
// the Range header ignored, or If-Range failed. hdr is the header set of
// the representation sent (gz: the stored gzip bytes), already copied
// into the response.
func (h *Handler) writeRange(w http.ResponseWriter, r *http.Request, p *cache.Page, hdr cache.Fields, gz bool) bool {
	if ir := r.Header["If-Range"]; len(ir) > 0 && !ifRangeHolds(ir[0], hdr) {
		return false
	}
	size := int64(len(p.Body))
	if p.Gzip && !gz {
		size = p.PlainLen
	}
	ranges, ok := parseRange(strings.Join(r.Header["Range"], ","), size)
	if !ok || (len(ranges) > 1 && gz) {
		// Several ranges of gzip bytes are answered whole: a multipart body
		// under Content-Encoding: gzip would claim that the multipart
		// itself is compressed.
		return false
	}
	out := w.Header()
	if len(ranges) == 0 {
		delete(out, "Content-Encoding") // no body: nothing is encoded
		delete(out, "Content-Type")
		out["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
		out["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return true
	}
	body := p.Body
	if p.Gzip && !gz {
		body = h.plain.Body(p) // nil: decompress each range while writing
	}
	send := func(dst io.Writer, ra byteRange) {
		if body != nil {
			dst.Write(body[ra.start : ra.start+ra.length])
			return
		}
		h.writeGunzippedRange(dst, p.Body, ra)
	}
	if len(ranges) == 1 {
		ra := ranges[0]
		out["Content-Range"] = []string{ra.contentRange(size)}
		out["Content-Length"] = []string{strconv.FormatInt(ra.length, 10)}
		w.WriteHeader(http.StatusPartialContent)
		if r.Method != http.MethodHead {
			send(w, ra)
		}
		return true
	}
	// multipart/byteranges (RFC 9110 §14.6): each part carries the
	// representation's Content-Type and its Content-Range. Its length is
	// measured by writing the part headers once to a counter.
	ctype := hdr.Get("Content-Type")
	var counter countingWriter
	mw := multipart.NewWriter(&counter)
	length := int64(0)
	for _, ra := range ranges {
		mw.CreatePart(partHeader(ctype, ra, size))
		length += ra.length
	}
	mw.Close()
	length += int64(counter)
	boundary := mw.Boundary()
	out["Content-Type"] = []string{"multipart/byteranges; boundary=" + boundary}
	out["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return true
	}
	mw = multipart.NewWriter(w)
	mw.SetBoundary(boundary) // the one measured
	for _, ra := range ranges {
		part, err := mw.CreatePart(partHeader(ctype, ra, size))
		if err != nil {
			return true // the visitor left
		}
		send(part, ra)
	}
	mw.Close()
	return true
}

func partHeader(ctype string, ra byteRange, size int64) textproto.MIMEHeader {
	mh := textproto.MIMEHeader{"Content-Range": {ra.contentRange(size)}}
	if ctype != "" {
		mh["Content-Type"] = []string{ctype}
	}
	return mh
}

// writeGunzippedRange sends ra of the decompressed body of gzip bytes.
func (h *Handler) writeGunzippedRange(w io.Writer, body []byte, ra byteRange) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return // checked when stored: cannot happen
	}
	if _, err := io.CopyN(io.Discard, zr, ra.start); err != nil {
		return
	}
	io.CopyN(w, zr, ra.length)
}

// countingWriter counts the bytes written to it.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
