package proxy

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/isrproxy/isrproxy/cache"
)

// fuzzLines splits a fuzzed header into its lines, as repeated header
// lines reach the proxy.
func fuzzLines(s string) []string { return strings.Split(s, "\n") }

// fuzzRefusingDirectives are spellings of no-store and private that must
// refuse storage wherever they appear in a directive list.
var fuzzRefusingDirectives = []string{
	"no-store", "No-Store", "NO-STORE", "nO-sToRe", "private", "Private", "PRIVATE", "pRiVaTe",
	`"no-store"`, `"private"`, `private="Set-Cookie"`, `Private="Set-Cookie, X-A"`, "private=Set-Cookie",
	" no-store ", "\tprivate\t", "no-store=1",
}

// fuzzBalancedQuotes reports whether s opens no quoted string it does not
// close: a directive appended after it is a directive of its own.
func fuzzBalancedQuotes(s string) bool {
	return strings.Count(s, `"`)%2 == 0 && !strings.Contains(s, `\`)
}

// FuzzCacheControlRefusal checks Cache-Control parsing: it
// never panics, refuses only for private or no-store, never for a header
// naming neither, and always when a spelling of either is among the
// directives, on its own line or appended to any line.
func FuzzCacheControlRefusal(f *testing.F) {
	f.Add("public, max-age=60", uint(0), uint(0))
	f.Add("max-age=60\nno-cache=\"Set-Cookie, X-A\"", uint(5), uint(3))
	f.Fuzz(func(t *testing.T, lines string, which, where uint) {
		h := http.Header{"Cache-Control": fuzzLines(lines)}
		got := cacheControlRefusal(h)
		switch got {
		case "", "private", "no-store":
		default:
			t.Fatalf("cacheControlRefusal(%q) = %q", lines, got)
		}
		lower := strings.ToLower(lines)
		if got != "" && !strings.Contains(lower, got) {
			t.Fatalf("cacheControlRefusal(%q) = %q, which the header does not name", lines, got)
		}
		if !strings.Contains(lower, "private") && !strings.Contains(lower, "no-store") && got != "" {
			t.Fatalf("cacheControlRefusal(%q) = %q", lines, got)
		}

		// Add a refusing directive: on a line of its own, or appended to a
		// line that leaves no quoted string open.
		directive := fuzzRefusingDirectives[which%uint(len(fuzzRefusingDirectives))]
		with := slices.Clone(h["Cache-Control"])
		i := int(where/2) % len(with)
		if where%2 == 1 && fuzzBalancedQuotes(with[i]) {
			with[i] += "," + directive
		} else {
			with = slices.Insert(with, i, directive)
		}
		if cacheControlRefusal(http.Header{"Cache-Control": with}) == "" {
			t.Fatalf("Cache-Control %q holds %q but is not refused", with, directive)
		}
	})
}

// FuzzParseVary checks Vary parsing: never a panic; every name is a
// canonical, non-empty header name, listed once, never "*"; "*" anywhere
// is reported; and every name the header lists, over every line, is kept.
func FuzzParseVary(f *testing.F) {
	f.Add("Accept-Language, x-theme\nX-DEVICE,,x-theme")
	f.Add("*")
	f.Add(" Accept-Encoding , *")
	f.Fuzz(func(t *testing.T, lines string) {
		h := http.Header{"Vary": fuzzLines(lines)}
		names, star := parseVary(h)
		wantStar := false
		for _, line := range fuzzLines(lines) {
			for _, item := range strings.Split(line, ",") {
				item = strings.TrimSpace(item)
				switch {
				case item == "":
				case item == "*":
					wantStar = true
				case !slices.Contains(names, http.CanonicalHeaderKey(item)):
					t.Fatalf("parseVary(%q) = %q: %q is missing", lines, names, item)
				}
			}
		}
		if star != wantStar {
			t.Fatalf("parseVary(%q) star = %v, want %v", lines, star, wantStar)
		}
		for i, name := range names {
			switch {
			case name == "" || name == "*" || strings.ContainsRune(name, ','):
				t.Fatalf("parseVary(%q) = %q: bad name %q", lines, names, name)
			case name != strings.TrimSpace(name) || name != http.CanonicalHeaderKey(name):
				t.Fatalf("parseVary(%q) = %q: %q is not canonical", lines, names, name)
			case slices.Contains(names[:i], name):
				t.Fatalf("parseVary(%q) = %q: %q twice", lines, names, name)
			}
			cache.VaryValue(h, name)
		}
	})
}

// FuzzParseTags checks tag parsing: never a panic; every tag is non-empty,
// holds no space, tab or comma, and is listed once; every tag named in
// Cache-Tag or Surrogate-Key, on any line, is kept.
func FuzzParseTags(f *testing.F) {
	f.Add("all, path:/a\tb", "key1 key2,key1")
	f.Add(",,", " ")
	f.Fuzz(func(t *testing.T, cacheTag, surrogateKey string) {
		h := http.Header{"Cache-Tag": fuzzLines(cacheTag), "Surrogate-Key": fuzzLines(surrogateKey)}
		tags := parseTags(h, testTagHeaders)
		for i, tag := range tags {
			if tag == "" || strings.ContainsAny(tag, ", \t\n") {
				t.Fatalf("parseTags(%q, %q) = %q: bad tag %q", cacheTag, surrogateKey, tags, tag)
			}
			if slices.Contains(tags[:i], tag) {
				t.Fatalf("parseTags(%q, %q) = %q: %q twice", cacheTag, surrogateKey, tags, tag)
			}
		}
		for _, s := range []string{cacheTag, surrogateKey} {
			for _, field := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(", \t\n", r) }) {
				if !slices.Contains(tags, field) {
					t.Fatalf("parseTags(%q, %q) = %q: %q is missing", cacheTag, surrogateKey, tags, field)
				}
			}
		}
	})
}

// FuzzAcceptsGzip checks Accept-Encoding parsing: never a panic; gzip is
// only chosen for a header that names it; a header that does not name it
// gets it when "gzip" is added as a line of its own, and not when
// "gzip;q=0" is put first.
func FuzzAcceptsGzip(f *testing.F) {
	f.Add("gzip, deflate, br")
	f.Add("br;q=1.0, gzip;q=0")
	f.Add("identity\nGZIP ; Q=0.001")
	f.Fuzz(func(t *testing.T, lines string) {
		got := acceptsGzip(fuzzLines(lines))
		lower := strings.ToLower(lines)
		if got && !strings.Contains(lower, "gzip") {
			t.Fatalf("acceptsGzip(%q) = true, but it names no gzip", lines)
		}
		if strings.Contains(lower, "gzip") {
			return
		}
		if !acceptsGzip(append(fuzzLines(lines), "gzip")) {
			t.Fatalf("acceptsGzip(%q + a line \"gzip\") = false", lines)
		}
		for _, first := range []string{"gzip;q=0", "GZIP; Q=0.000", "x-gzip;q=0"} {
			if acceptsGzip(append([]string{first}, fuzzLines(lines)...)) {
				t.Fatalf("acceptsGzip(%q first, then %q) = true", first, lines)
			}
		}
		if strings.IndexFunc(lines, func(r rune) bool { return r == ',' || r == '\n' || unicode.IsSpace(r) }) < 0 && lines != "" {
			// A single coding other than gzip: never gzip.
			if acceptsGzip([]string{lines + ";q=1"}) {
				t.Fatalf("acceptsGzip(%q;q=1) = true", lines)
			}
		}
	})
}

// plainAbsolutePath agrees with net/url on every reference it takes.
func FuzzPlainAbsolutePath(f *testing.F) {
	for _, ref := range []string{"/events/42", "/a/b.html", "/", "//x/y", "/a/./b", "/a/../b", "/a b", "/a%20b", "/a?b", "/~u/:x@y;z=1,2"} {
		f.Add(ref)
	}
	base := &url.URL{Scheme: "http", Host: "example.com", Path: "/dir/page", RawQuery: "q=1"}
	f.Fuzz(func(t *testing.T, ref string) {
		path, ok := plainAbsolutePath(ref)
		if !ok {
			return
		}
		u, err := base.Parse(ref)
		if err != nil {
			t.Fatalf("plainAbsolutePath(%q) = %q, but net/url refuses it: %v", ref, path, err)
		}
		if u.Host != base.Host || u.Scheme != base.Scheme || u.RawQuery != "" || u.EscapedPath() != path {
			t.Fatalf("plainAbsolutePath(%q) = %q, net/url resolves it to %s", ref, path, u)
		}
	})
}
