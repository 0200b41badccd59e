package cache

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fuzzOriginHost is the fixed ORIGIN_URL host the forwarded requests go to.
const fuzzOriginHost = "origin.internal:8443"

// fuzzIgnore is the default IGNORE_QUERY_PARAMS.
var fuzzIgnore = NewMatcher([]string{"utm_*", "gclid", "fbclid"})

func fuzzHasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 ||
		strings.IndexByte(s, 0x7f) >= 0
}

// fuzzOriginRequest writes the request the proxy sends to the origin for
// key (proxy/origin.go: ORIGIN_URL's scheme and host, Path unescaped from
// the key's escaped path, RawPath the escaped path, the key's query), reads
// it back as the origin does, and fails unless the origin receives exactly
// key.Target() in origin form, from ORIGIN_URL's host.
func fuzzOriginRequest(t *testing.T, what string, key Key) {
	t.Helper()
	unescaped, err := url.PathUnescape(key.Path)
	if err != nil {
		t.Fatalf("%s: key path %q does not unescape: %v", what, key.Path, err)
	}
	out := &url.URL{Scheme: "http", Host: fuzzOriginHost, Path: unescaped, RawPath: key.Path, RawQuery: key.Query}
	if got := out.RequestURI(); got != key.Target() {
		t.Fatalf("%s: key target %q but the origin URL's request URI is %q", what, key.Target(), got)
	}
	if out.Host != fuzzOriginHost {
		t.Fatalf("%s: the origin URL names host %q", what, out.Host)
	}
	var wire bytes.Buffer
	req := &http.Request{Method: http.MethodGet, URL: out, Host: "visitor.example", Header: http.Header{},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if err := req.Write(&wire); err != nil {
		t.Fatalf("%s: the origin request for %q cannot be written: %v", what, key.Target(), err)
	}
	line, _, _ := strings.Cut(wire.String(), "\r\n")
	if want := "GET " + key.Target() + " HTTP/1.1"; line != want {
		t.Fatalf("%s: request line %q, want %q", what, line, want)
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("%s: the origin cannot read %q: %v", what, line, err)
	}
	if got.RequestURI != key.Target() || got.URL.Host != "" || got.Host != "visitor.example" {
		t.Fatalf("%s: the origin read %q (URL host %q, Host %q), want %q in origin form",
			what, got.RequestURI, got.URL.Host, got.Host, key.Target())
	}
}

// FuzzNewKey checks key normalisation (docs/behaviour.md#cache-key): for any host, path and
// query, NewKey never panics; when it succeeds, the key's Target is exactly
// the origin-form request target the origin receives from ORIGIN_URL's
// host, and the key survives the index (ParseKey inverts String).
// NormalizeQuery is idempotent and drops every ignored parameter.
func FuzzNewKey(f *testing.F) {
	for _, s := range [][3]string{
		{"www.example.com", "/a/b", "b=2&a=1"},
		{"www.example.com", "/a%2fb", "utm_source=x&id=1"},
		{"example.com", "//evil.example/x", ""},
		{"x", "/%2e%2e/a", "%75tm_source=1"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, host, path, rawQuery string) {
		NormalizeHost(host, false)
		NormalizeHost(host, true)
		fuzzNormalizeQuery(t, rawQuery)
		key, err := NewKey(host, path, rawQuery, fuzzIgnore, Matcher{})
		if err != nil {
			return
		}
		dec, err := url.PathUnescape(key.Path)
		if err != nil {
			t.Fatalf("NewKey accepted path %q that does not unescape: %v", key.Path, err)
		}
		if fuzzHasControl(key.Path) || fuzzHasControl(dec) {
			t.Fatalf("NewKey accepted path %q holding a control character", key.Path)
		}
		if !strings.HasPrefix(key.Path, "/") {
			t.Fatalf("NewKey accepted path %q: not origin form (ParseKey cannot give it back)", key.Path)
		}
		fuzzOriginRequest(t, "NewKey("+strconv.Quote(path)+")", key)
		if !strings.ContainsAny(key.Host, "/?") {
			if back := ParseKey(key.String()); back != key {
				t.Fatalf("ParseKey(%q) = %+v, want %+v", key.String(), back, key)
			}
		}
	})
}

// fuzzNormalizeQuery checks NormalizeQuery on rawQuery: idempotent,
// ignored parameters gone, no empty pair, sorted by name.
func fuzzNormalizeQuery(t *testing.T, rawQuery string) {
	t.Helper()
	q, err := NormalizeQuery(rawQuery, fuzzIgnore, Matcher{})
	if err != nil {
		return
	}
	q2, err := NormalizeQuery(q, fuzzIgnore, Matcher{})
	if err != nil || q2 != q {
		t.Fatalf("NormalizeQuery(%q) = %q, then %q (%v): not idempotent", rawQuery, q, q2, err)
	}
	if q == "" {
		return
	}
	pairs := strings.Split(q, "&")
	names := make([]string, len(pairs))
	for i, pair := range pairs {
		if pair == "" {
			t.Fatalf("NormalizeQuery(%q) = %q holds an empty pair", rawQuery, q)
		}
		names[i], _, _ = strings.Cut(pair, "=")
		if fuzzIgnore.Match(unescape(names[i])) {
			t.Fatalf("NormalizeQuery(%q) = %q keeps ignored %q", rawQuery, q, pair)
		}
	}
	if !slices.IsSorted(names) {
		t.Fatalf("NormalizeQuery(%q) = %q is not sorted by name", rawQuery, q)
	}
}

// FuzzKeyPipeline follows a page request as the proxy handles it: Go's
// server parses the request target, the proxy keys its escaped path and
// normalised query (proxy.Handler.ServeHTTP), and the origin must receive
// exactly the key's Target, from ORIGIN_URL's host.
func FuzzKeyPipeline(f *testing.F) {
	for _, s := range []string{
		"/a/b?b=2&a=1", "/a%2fb?utm_source=x&id=1", "//evil.example/x", "/%2e%2e/a?%75tm_source=1",
		"http://evil.example/x?q=1", "/caf\xc3\xa9?x=\xc3\xa9", "/a|b", "/x?",
	} {
		f.Add("www.example.com", s)
	}
	f.Fuzz(func(t *testing.T, host, requestTarget string) {
		if strings.ContainsAny(requestTarget, " \t") {
			return // cannot be one field of a request line
		}
		in, err := url.ParseRequestURI(requestTarget)
		if err != nil {
			return // Go's server answers 400
		}
		path := in.EscapedPath()
		if path == "" {
			path = "/"
		}
		key, err := NewKey(NormalizeHost(host, false), path, in.RawQuery, fuzzIgnore, Matcher{})
		if err != nil {
			return // the proxy answers 400
		}
		fuzzOriginRequest(t, "request target "+strconv.Quote(requestTarget), key)
	})
}

// FuzzVaryValue checks that a request matches a stored variant exactly
// when their VaryValues are equal, that a VaryValue is its own normal form,
// and that it never holds whitespace next to a comma nor an empty item.
func FuzzVaryValue(f *testing.F) {
	f.Add("en, de", "EN,de", true)
	f.Add("de, en", "en,de", true)
	f.Add(" ,x\t", "x", false)
	f.Fuzz(func(t *testing.T, a, b string, fold bool) {
		name := "X-Theme"
		if fold {
			name = "Accept-Language"
		}
		ha := http.Header{name: strings.Split(a, "\n")}
		hb := http.Header{name: strings.Split(b, "\n")}
		va, vb := VaryValue(ha, name), VaryValue(hb, name)
		if got := varyMatches(hb[name], fold, va); got != (va == vb) {
			t.Fatalf("varyMatches(%q, %q) = %v, but VaryValues %q and %q", b, va, got, va, vb)
		}
		if again := VaryValue(http.Header{name: {va}}, name); again != va {
			t.Fatalf("VaryValue(%q) = %q, not normal: again %q", a, va, again)
		}
		for _, item := range strings.Split(va, ",") {
			if va != "" && (item == "" || strings.Trim(item, " \t") != item) {
				t.Fatalf("VaryValue(%q) = %q: item %q", a, va, item)
			}
		}
	})
}
