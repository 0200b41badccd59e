package cache

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
)

// ErrBadEscape reports a query or path whose percent-escapes are malformed.
var ErrBadEscape = errors.New("malformed percent-escape")

// ErrControlChar reports a path holding a control character, raw or escaped.
var ErrControlChar = errors.New("control character in path")

// ErrNotOriginForm reports a path that does not begin with "/" (the
// asterisk form "*", say): no page is keyed by it.
var ErrNotOriginForm = errors.New("path must begin with /")

// ErrBadQueryChar reports a query holding a byte a request line cannot
// carry raw (a space or a control character): sent as is, it would break
// the request line to the origin.
var ErrBadQueryChar = errors.New("invalid character in the request target")

// ErrNotEscaped reports a path holding a byte an escaped path never holds
// raw (a space, '"', '|', a non-ASCII byte …): [url.URL.EscapedPath] would
// send it percent-encoded, so the key would not name what the origin gets.
var ErrNotEscaped = errors.New("path is not in escaped form")

// Key identifies one stored page: the visitor's host, the escaped path exactly
// as the origin receives it, and the normalised query. Its String form is the
// ristretto key; variants of one key (Vary) live in the same [Entry].
type Key struct {
	// Host is lower-cased, without a default port.
	Host string
	// Path is the escaped path, as sent to the origin.
	Path string
	// Query is the normalised query, without "?" (empty when there is none).
	Query string
}

// String is the key as stored: host, path, then "?query" when there is one.
func (k Key) String() string {
	if k.Query == "" {
		return k.Host + k.Path
	}
	return k.Host + k.Path + "?" + k.Query
}

// Append appends the string form of k (see String) to b: [Store.Get]
// builds it in lent room and looks it up without allocating.
func (k Key) Append(b []byte) []byte {
	b = append(b, k.Host...)
	b = append(b, k.Path...)
	if k.Query != "" {
		b = append(b, '?')
		b = append(b, k.Query...)
	}
	return b
}

// Target is the path plus "?query" that the origin receives for k.
func (k Key) Target() string {
	if k.Query == "" {
		return k.Path
	}
	return k.Path + "?" + k.Query
}

// Matcher matches names against a list of patterns where a trailing "*"
// matches any suffix. The zero Matcher matches nothing.
type Matcher struct {
	exact    map[string]bool
	prefixes []string
}

// NewMatcher builds a Matcher from patterns such as "utm_*" or "gclid".
func NewMatcher(patterns []string) Matcher {
	m := Matcher{exact: make(map[string]bool)}
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			m.prefixes = append(m.prefixes, prefix)
		} else {
			m.exact[p] = true
		}
	}
	return m
}

// Match reports whether name matches one of the patterns.
func (m Matcher) Match(name string) bool {
	if m.exact[name] {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Empty reports whether m matches nothing.
func (m Matcher) Empty() bool { return len(m.exact) == 0 && len(m.prefixes) == 0 }

// NormalizeHost lower-cases host and drops the scheme's default port
// (":80" for http, ":443" for https) and a trailing dot.
func NormalizeHost(host string, tls bool) string {
	host = strings.ToLower(host)
	// Without a colon there is no port: skip SplitHostPort, whose error
	// would cost an allocation on every request that names none.
	if !strings.Contains(host, ":") {
		return strings.TrimSuffix(host, ".")
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (port == "80" && !tls) || (port == "443" && tls) || port == "" {
			host = h
			if strings.Contains(h, ":") { // IPv6 literal keeps its brackets
				host = "[" + h + "]"
			}
		}
	}
	return strings.TrimSuffix(host, ".")
}

// NewKey builds the key of a request for host (already normalised), the escaped
// path as the origin will receive it, and the raw query. Ignored parameters
// are removed, and so, when keep is not empty, are those keep does not
// match (a zero keep Matcher keeps every parameter); the rest are sorted by name as written, in byte order, keeping
// the order of repeated names; each pair stays as written. A malformed
// percent-escape anywhere in the query (ignored parameters too) or in the
// path, a control character in the path, and a path not in the escaped
// form [url.URL.EscapedPath] gives, are errors.
func NewKey(host, escapedPath, rawQuery string, ignore, keep Matcher) (Key, error) {
	if err := CheckPath(escapedPath); err != nil {
		return Key{}, err
	}
	if !isEscapedPath(escapedPath) {
		return Key{}, ErrNotEscaped
	}
	query, err := NormalizeQuery(rawQuery, ignore, keep)
	if err != nil {
		return Key{}, err
	}
	return Key{Host: host, Path: escapedPath, Query: query}, nil
}

// CheckPath rejects an escaped path with a malformed escape or a control
// character, raw or percent-encoded (%00–%1F, %7F).
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return ErrNotOriginForm
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 || c == 0x7f {
			return ErrControlChar
		}
		if c != '%' {
			continue
		}
		v, ok := unhex2(p, i)
		if !ok {
			return fmt.Errorf("path: %w", ErrBadEscape)
		}
		if v < 0x20 || v == 0x7f {
			return ErrControlChar
		}
		i += 2
	}
	return nil
}

// isEscapedPath reports whether every byte of p may stand raw in the
// escaped path [url.URL.EscapedPath] returns.
func isEscapedPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !rawInPath(p[i]) {
			return false
		}
	}
	return true
}

// rawInPath reports whether c may stand raw in an escaped path: RFC 3986
// pchar and "/", the percent sign (its escapes are checked by [CheckPath]),
// and '[' and ']', which Go keeps as written.
func rawInPath(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/%[]", c) >= 0
}

// EscapePath percent-encodes the bytes of p that cannot stand raw in an
// escaped path (a space, '"', '|', non-ASCII bytes …), keeping every escape
// already written: "/%2F x" becomes "/%2F%20x", which is how Go's server
// keys a visitor's request for it. [url.URL.EscapedPath] cannot be used
// here: given a path it must re-encode, it decodes "%2F" to "/" first.
func EscapePath(p string) string {
	if isEscapedPath(p) {
		return p
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p) + 8)
	for i := 0; i < len(p); i++ {
		if c := p[i]; rawInPath(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// NormalizeQuery returns the normalised form of rawQuery: see [NewKey].
func NormalizeQuery(rawQuery string, ignore, keep Matcher) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	pairs := strings.Split(rawQuery, "&")
	kept := pairs[:0]
	for _, pair := range pairs {
		if pair == "" {
			continue
		}
		if err := checkEscapes(pair); err != nil {
			return "", err
		}
		if !ignore.Empty() || !keep.Empty() {
			name, _, _ := strings.Cut(pair, "=")
			name = unescape(name)
			if ignore.Match(name) || (!keep.Empty() && !keep.Match(name)) {
				continue
			}
		}
		kept = append(kept, pair)
	}
	if len(kept) == 0 {
		return "", nil
	}
	sort.SliceStable(kept, func(i, j int) bool {
		return pairName(kept[i]) < pairName(kept[j])
	})
	return strings.Join(kept, "&"), nil
}

func pairName(pair string) string {
	name, _, _ := strings.Cut(pair, "=")
	return name
}

func checkEscapes(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("query %q: %w", s, ErrBadQueryChar)
		}
		if s[i] != '%' {
			continue
		}
		if _, ok := unhex2(s, i); !ok {
			return fmt.Errorf("query %q: %w", s, ErrBadEscape)
		}
		i += 2
	}
	return nil
}

// unescape decodes percent-escapes and '+' of an already checked query name.
func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			v, _ := unhex2(s, i)
			b.WriteByte(v)
			i += 2
		case c == '+':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unhex2(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ParseKey is the inverse of [Key.String]: the host ends at the first "/",
// the query starts at the first "?" (an escaped path holds no raw "?").
func ParseKey(s string) Key {
	slash := strings.IndexByte(s, '/')
	if slash < 0 {
		return Key{Host: s, Path: "/"}
	}
	k := Key{Host: s[:slash]}
	k.Path, k.Query, _ = strings.Cut(s[slash:], "?")
	return k
}
