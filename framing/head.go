package framing

import "strings"

// Head is a request head that the fast path may answer without net/http
// (see [Fast]): what ParseHead read of it. Everything net/http or the page
// handler would read differently from a plain GET or HEAD of a stored
// page makes ParseHead refuse the head, which then goes to net/http as it
// arrived.
type Head struct {
	Method string // "GET" or "HEAD"
	Path   string // the target's path, as sent: no '%', no "//", no dot segments
	Query  string // the target after '?', "" when none
	Host   string // the one Host header, as sent
	// AcceptEncoding is the one Accept-Encoding header's value;
	// HasAcceptEncoding says whether the request sent one.
	AcceptEncoding    string
	HasAcceptEncoding bool
	Cookie            bool // a Cookie header was sent
}

// maxFastHead is the largest head the fast path takes; larger ones are
// unusual, and go to net/http.
const maxFastHead = 8 << 10

// refusedHeaders are the request headers whose presence sends a head to
// net/http: each can change the answer from memory (credentials, ranges,
// conditionals), net/http acts on it (framing, Expect, upgrades), or a
// repeated one would be read as a list. Lower case.
var refusedHeaders = map[string]bool{
	"authorization":       true, // never answered from memory
	"range":               true,
	"if-range":            true,
	"if-none-match":       true, // 304s are net/http's
	"if-modified-since":   true,
	"if-match":            true,
	"if-unmodified-since": true,
	"upgrade":             true,
	"http2-settings":      true,
	"content-length":      true, // a GET or HEAD with a body is refused by the handler
	"transfer-encoding":   true,
	"expect":              true, // net/http answers 417
	"trailer":             true,
}

// ParseHead reads head, one complete request head ending with its empty
// line, for the fast path. It reports false for any head the fast path
// must hand to net/http: another method or version, an absolute-form or
// unusual target, a missing, repeated or unusual Host, a repeated
// Accept-Encoding, Connection other than keep-alive, any header of
// refusedHeaders, bytes outside printable ASCII in a value, leading empty
// lines (net/http refuses them but after a POST), or a head over 8 KiB.
func ParseHead(head string) (Head, bool) {
	var h Head
	if len(head) > maxFastHead || !strings.HasSuffix(head, "\r\n\r\n") {
		return h, false
	}
	s := head[:len(head)-2] // every line, each ending in CRLF
	line, s, ok := nextLine(s)
	if !ok || !parseRequestLine(line, &h) {
		return h, false
	}
	hosts := 0
	for s != "" {
		if line, s, ok = nextLine(s); !ok {
			return h, false
		}
		name, value, found := strings.Cut(line, ":")
		if !found || !isToken(name) {
			return h, false
		}
		value = strings.Trim(value, " \t")
		if !printable(value) {
			return h, false
		}
		switch {
		case strings.EqualFold(name, "Host"):
			if hosts++; hosts > 1 || !validHost(value) {
				return h, false
			}
			h.Host = value
		case strings.EqualFold(name, "Accept-Encoding"):
			if h.HasAcceptEncoding {
				return h, false
			}
			h.AcceptEncoding, h.HasAcceptEncoding = value, true
		case strings.EqualFold(name, "Connection"):
			if !strings.EqualFold(value, "keep-alive") {
				return h, false
			}
		case strings.EqualFold(name, "Cookie"):
			h.Cookie = true
		case len(name) <= len("if-unmodified-since") && refused(name):
			return h, false
		}
	}
	return h, hosts == 1
}

// nextLine splits the first CRLF-ended line off s.
func nextLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	line = s[:i-1]
	if line == "" || strings.IndexByte(line, '\r') >= 0 {
		return "", "", false
	}
	return line, s[i+1:], true
}

// parseRequestLine accepts "GET /path?query HTTP/1.1" (or HEAD).
func parseRequestLine(line string, h *Head) bool {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || version != "HTTP/1.1" || (method != "GET" && method != "HEAD") {
		return false
	}
	path, query, _ := strings.Cut(target, "?")
	if !cleanPath(path) || !queryChars(query) {
		return false
	}
	h.Method, h.Path, h.Query = method, path, query
	return true
}

// cleanPath reports an origin-form path whose characters net/url keeps as
// they are (so that its escaped and decoded forms are the path itself),
// without "//" or dot segments (so that cleaning it changes nothing but a
// trailing slash).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' || len(p) > 4096 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0:
		case c == '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
			seg := p[i+1:]
			if j := strings.IndexByte(seg, '/'); j >= 0 {
				seg = seg[:j]
			}
			if seg == "." || seg == ".." {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// queryChars reports a query of characters net/url leaves alone. A ';'
// is refused: net/http logs a warning for it.
func queryChars(q string) bool {
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,=:@/?%[]", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHost accepts a plain host name or address, with an optional port.
func validHost(v string) bool {
	if v == "" || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return true
}

// printable reports a value of visible ASCII, spaces and tabs only.
func printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// refused reports whether name (any case) is one of refusedHeaders,
// without allocating.
func refused(name string) bool {
	var buf [len("if-unmodified-since")]byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return refusedHeaders[string(buf[:len(name)])]
}
