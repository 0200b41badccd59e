package purge

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// fuzzOriginHost is the fixed ORIGIN_URL host refetches go to.
const fuzzOriginHost = "origin.internal:8443"

var fuzzIgnore = cache.NewMatcher([]string{"utm_*", "gclid", "fbclid"})

func fuzzIsControl(r rune) bool { return r < 0x20 || r == 0x7f }

// fuzzCheckPathish checks a checked path or prefix: it begins with exactly
// one "/" and holds no scheme, authority, fragment, backslash or control
// character, raw or escaped (README.md#targets).
func fuzzCheckPathish(t *testing.T, kind, input, path string) {
	t.Helper()
	switch {
	case !strings.HasPrefix(path, "/"):
		t.Fatalf("%s %q gave %q: does not begin with \"/\"", kind, input, path)
	case strings.HasPrefix(path, "//"):
		t.Fatalf("%s %q gave %q: begins with \"//\", an authority", kind, input, path)
	case strings.ContainsAny(path, "\\#?") || strings.IndexFunc(path, fuzzIsControl) >= 0:
		t.Fatalf("%s %q gave %q: holds a backslash, fragment, query or control character", kind, input, path)
	case hasScheme(path):
		t.Fatalf("%s %q gave %q: holds a scheme", kind, input, path)
	}
	dec, err := url.PathUnescape(path)
	if err != nil {
		t.Fatalf("%s %q gave %q, which does not unescape: %v", kind, input, path, err)
	}
	if strings.IndexFunc(dec, fuzzIsControl) >= 0 {
		t.Fatalf("%s %q gave %q, which decodes to a control character", kind, input, path)
	}
}

// fuzzRefetch checks the refetch a path target causes: its key, built as
// the purge handler builds it, reaches the origin in origin form, from
// ORIGIN_URL's host, exactly as keyed (proxy/origin.go builds the URL the
// same way: scheme and host fixed, Path unescaped, RawPath escaped).
func fuzzRefetch(t *testing.T, input string, pt pathTarget) {
	t.Helper()
	key, err := cache.NewKey("www.example.com", pt.path, pt.query, fuzzIgnore, cache.Matcher{})
	if err != nil {
		t.Fatalf("path %q was accepted but its key fails: %v", input, err)
	}
	dec, err := url.PathUnescape(key.Path)
	if err != nil {
		t.Fatalf("path %q: key path %q does not unescape: %v", input, key.Path, err)
	}
	out := &url.URL{Scheme: "https", Host: fuzzOriginHost, Path: dec, RawPath: key.Path, RawQuery: key.Query}
	if out.EscapedPath() != key.Path {
		t.Fatalf("path %q: key path %q is re-encoded to %q on the way to the origin", input, key.Path, out.EscapedPath())
	}
	var wire bytes.Buffer
	req := &http.Request{Method: http.MethodGet, URL: out, Host: key.Host, Header: http.Header{},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if err := req.Write(&wire); err != nil {
		t.Fatalf("path %q: the refetch of %q cannot be written: %v", input, key.Target(), err)
	}
	line, _, _ := strings.Cut(wire.String(), "\r\n")
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("path %q: the origin cannot read the refetch %q: %v", input, line, err)
	}
	if got.RequestURI != key.Target() || got.URL.Host != "" {
		t.Fatalf("path %q: the origin read %q (URL host %q), want %q in origin form", input, got.RequestURI, got.URL.Host, key.Target())
	}
	if !strings.HasPrefix(got.URL.Path, "/") {
		t.Fatalf("path %q: the origin read path %q", input, got.URL.Path)
	}
}

// fuzzRefetchHost checks that a refetch for host can be sent to the
// origin with host as its Host header, and that the origin reads that
// header back unchanged and an origin-form target.
func fuzzRefetchHost(t *testing.T, host string) {
	t.Helper()
	out := &url.URL{Scheme: "https", Host: fuzzOriginHost, Path: "/"}
	var wire bytes.Buffer
	req := &http.Request{Method: http.MethodGet, URL: out, Host: host, Header: http.Header{},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if err := req.Write(&wire); err != nil {
		t.Fatalf("accepted host %q, but a refetch for it cannot be written: %v", host, err)
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("accepted host %q, but the origin cannot read its refetch: %v", host, err)
	}
	if got.Host != host || got.URL.Host != "" || got.RequestURI != "/" {
		t.Fatalf("accepted host %q: the origin read Host %q, target %q", host, got.Host, got.RequestURI)
	}
}

// FuzzParseTargets checks revalidate target parsing, from
// the query string and a JSON body: it never panics, every error is an
// input error (a 400 naming the problem), and every accepted target stays
// on the origin: paths and prefixes begin with exactly one "/" and hold no
// scheme or authority, a path's refetch reaches the origin as keyed, tags
// and the host are clean.
func FuzzParseTargets(f *testing.F) {
	f.Add("path=/a?x=1&tag=t&prefix=/blog/&host=www.example.com", "", []byte(nil))
	f.Add("", "application/json", []byte(`{"paths":["/a","//evil.example/x"],"host":"evil:80@x"}`))
	f.Fuzz(func(t *testing.T, rawQuery, contentType string, body []byte) {
		got, err := parseTargets(rawQuery, contentType, body)
		if err != nil {
			var in *inputError
			if !errors.As(err, &in) {
				t.Fatalf("error %v is not an input error (a 400)", err)
			}
			return
		}
		if len(got.paths)+len(got.tags)+len(got.prefixes) == 0 {
			t.Fatal("accepted a call without targets")
		}
		for _, pt := range got.paths {
			fuzzCheckPathish(t, "path", pt.path, pt.path)
			fuzzRefetch(t, pt.path+"?"+pt.query, pt)
		}
		for _, prefix := range got.prefixes {
			fuzzCheckPathish(t, "prefix", prefix, prefix)
		}
		for _, tag := range got.tags {
			if tag == "" || strings.ContainsRune(tag, ',') ||
				strings.IndexFunc(tag, func(r rune) bool { return unicode.IsSpace(r) || fuzzIsControl(r) }) >= 0 {
				t.Fatalf("accepted tag %q", tag)
			}
		}
		if got.host != "" {
			if strings.ContainsAny(got.host, "@/\\?# %") || strings.IndexFunc(got.host, fuzzIsControl) >= 0 {
				t.Fatalf("accepted host %q", got.host)
			}
			// The refetch names it in its Host header only, never as the
			// address dialled: the header must be written and read back as is.
			fuzzRefetchHost(t, got.host)
		}
		switch got.mode {
		case revalidation.Refetch, revalidation.Soft, revalidation.Purge:
		default:
			t.Fatalf("accepted mode %q", got.mode)
		}
	})
}

// FuzzCheckTarget checks one path or prefix target directly: never a
// panic; an accepted one is safe (see FuzzParseTargets), checking it again
// gives it back unchanged, and it names the key a visitor's request for
// the same target computes, so a revalidation refetches the page visitors
// are served.
func FuzzCheckTarget(f *testing.F) {
	f.Add("/a/b?b=2&a=1", true)
	f.Add("//evil.example/x", false)
	f.Fuzz(func(t *testing.T, s string, isPath bool) {
		kind := "prefix"
		if isPath {
			kind = "path"
		}
		path, query, err := checkTarget(kind, s, isPath)
		if err != nil {
			var in *inputError
			if !errors.As(err, &in) || !strings.HasPrefix(err.Error(), "Invalid "+kind+" "+strconv.Quote(s)+": ") {
				t.Fatalf("checkTarget(%q) failed with %v, not a 400 naming it", s, err)
			}
			return
		}
		fuzzCheckPathish(t, kind, s, path)
		if !isPath {
			if query != "" {
				t.Fatalf("prefix %q kept a query %q", s, query)
			}
			return
		}
		pt := pathTarget{path, query}
		fuzzRefetch(t, s, pt)
		again := path
		if query != "" {
			again += "?" + query
		}
		path2, query2, err := checkTarget(kind, again, true)
		if err != nil || path2 != path || query2 != query {
			t.Fatalf("checkTarget(%q) = %q %q, but checkTarget of that = %q %q (%v)", s, path, query, path2, query2, err)
		}
		// The visitor's view: Go's server parsing the same target as the
		// refetch's request line, keyed as proxy.Handler.ServeHTTP keys it.
		visitor, err := url.ParseRequestURI(again)
		if err != nil {
			t.Fatalf("path %q is keyed as %q, which no visitor can request: %v", s, again, err)
		}
		vk, err := cache.NewKey("www.example.com", visitor.EscapedPath(), visitor.RawQuery, fuzzIgnore, cache.Matcher{})
		if err != nil {
			t.Fatalf("path %q: a visitor's request for %q is refused: %v", s, again, err)
		}
		ak, _ := cache.NewKey("www.example.com", path, query, fuzzIgnore, cache.Matcher{})
		if vk != ak {
			t.Fatalf("path %q: the API refetches key %q but a visitor's request keys %q", s, ak, vk)
		}
	})
}
