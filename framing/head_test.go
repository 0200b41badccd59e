package framing

import (
	"strings"
	"testing"
)

// TestParseHead: the heads the fast path takes, and every kind it must
// refuse and hand to net/http instead.
func TestParseHead(t *testing.T) {
	const ok = "GET /page/1 HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n"
	taken := []struct {
		name string
		head string
		want Head
	}{
		{"plain GET", ok, Head{Method: "GET", Path: "/page/1", Host: "example.com",
			AcceptEncoding: "gzip, deflate, br", HasAcceptEncoding: true}},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", Head{Method: "HEAD", Path: "/", Host: "a"}},
		{"query", "GET /a?b=1&c=%20 HTTP/1.1\r\nHost: a\r\n\r\n", Head{Method: "GET", Path: "/a", Query: "b=1&c=%20", Host: "a"}},
		{"empty query", "GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", Head{Method: "GET", Path: "/a", Host: "a"}},
		{"host with port, any case of names", "GET /a HTTP/1.1\r\nhOsT: Example.COM:8080\r\naccept-encoding:gzip\r\n\r\n",
			Head{Method: "GET", Path: "/a", Host: "Example.COM:8080", AcceptEncoding: "gzip", HasAcceptEncoding: true}},
		{"value whitespace trimmed", "GET /a HTTP/1.1\r\nHost: \t a \t\r\nAccept-Encoding: \r\n\r\n",
			Head{Method: "GET", Path: "/a", Host: "a", HasAcceptEncoding: true}},
		{"keep-alive", "GET /a HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n", Head{Method: "GET", Path: "/a", Host: "a"}},
		{"cookie noted", "GET /a HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\n\r\n", Head{Method: "GET", Path: "/a", Host: "a", Cookie: true}},
		{"other headers ignored", "GET /a/ HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nAccept: */*\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
			Head{Method: "GET", Path: "/a/", Host: "a"}},
		{"sub-delims in path", "GET /a!$&'()*+,;=:@-._~ HTTP/1.1\r\nHost: a\r\n\r\n", Head{Method: "GET", Path: "/a!$&'()*+,;=:@-._~", Host: "a"}},
		{"dots inside a segment", "GET /a.b/..c/.d HTTP/1.1\r\nHost: a\r\n\r\n", Head{Method: "GET", Path: "/a.b/..c/.d", Host: "a"}},
		{"IPv6 host", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", Head{Method: "GET", Path: "/", Host: "[::1]:80"}},
	}
	for _, tc := range taken {
		t.Run("takes/"+tc.name, func(t *testing.T) {
			got, ok := ParseHead(tc.head)
			if !ok {
				t.Fatalf("refused %q", tc.head)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	withHeader := func(line string) string {
		return strings.Replace(ok, "\r\n\r\n", "\r\n"+line+"\r\n\r\n", 1)
	}
	refusedHeads := []struct{ name, head string }{
		{"POST", strings.Replace(ok, "GET", "POST", 1)},
		{"lower-case get", strings.Replace(ok, "GET", "get", 1)},
		{"OPTIONS", strings.Replace(ok, "GET /page/1", "OPTIONS *", 1)},
		{"PURGE", strings.Replace(ok, "GET", "PURGE", 1)},
		{"PRI", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"HTTP/1.0", strings.Replace(ok, "HTTP/1.1", "HTTP/1.0", 1)},
		{"HTTP/2.0", strings.Replace(ok, "HTTP/1.1", "HTTP/2.0", 1)},
		{"absolute-form target", strings.Replace(ok, "/page/1", "http://example.com/page/1", 1)},
		{"authority-form", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"asterisk", strings.Replace(ok, "/page/1", "*", 1)},
		{"percent in path", strings.Replace(ok, "/page/1", "/p%61ge/1", 1)},
		{"double slash", strings.Replace(ok, "/page/1", "//api/revalidate", 1)},
		{"dot segment", strings.Replace(ok, "/page/1", "/a/./b", 1)},
		{"dot-dot segment", strings.Replace(ok, "/page/1", "/a/../b", 1)},
		{"trailing dot-dot", strings.Replace(ok, "/page/1", "/a/..", 1)},
		{"non-ASCII path", strings.Replace(ok, "/page/1", "/caf\xc3\xa9", 1)},
		{"backslash in path", strings.Replace(ok, "/page/1", "/a\\b", 1)},
		{"semicolon in query", strings.Replace(ok, "/page/1", "/a?b=1;c=2", 1)},
		{"fragment", strings.Replace(ok, "/page/1", "/a#b", 1)},
		{"quote in query", strings.Replace(ok, "/page/1", "/a?b=\"", 1)},
		{"two spaces", strings.Replace(ok, "GET /", "GET  /", 1)},
		{"no version", "GET /page/1\r\nHost: a\r\n\r\n"},
		{"leading empty line", "\r\n" + ok},
		{"bare LF", strings.ReplaceAll(ok, "\r\n", "\n")},
		{"bare CR in a value", withHeader("X-A: a\rb")},
		{"no end", strings.TrimSuffix(ok, "\r\n")},
		{"no Host", "GET / HTTP/1.1\r\n\r\n"},
		{"two Hosts", withHeader("Host: example.com")},
		{"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n"},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"},
		{"Host with underscore", "GET / HTTP/1.1\r\nHost: a_b\r\n\r\n"},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
		{"two Accept-Encoding lines", withHeader("Accept-Encoding: identity")},
		{"Authorization", withHeader("Authorization: Basic eDp5")},
		{"authorization, lower case", withHeader("authorization: Bearer x")},
		{"Range", withHeader("Range: bytes=0-1")},
		{"If-Range", withHeader(`If-Range: "x"`)},
		{"If-None-Match", withHeader(`If-None-Match: "x"`)},
		{"If-Modified-Since", withHeader("If-Modified-Since: Thu, 01 Jan 2026 00:00:00 GMT")},
		{"If-Match", withHeader(`If-Match: "x"`)},
		{"If-Unmodified-Since", withHeader("If-Unmodified-Since: Thu, 01 Jan 2026 00:00:00 GMT")},
		{"Upgrade", withHeader("Upgrade: websocket")},
		{"HTTP2-Settings", withHeader("HTTP2-Settings: AAA")},
		{"Content-Length", withHeader("Content-Length: 0")},
		{"Transfer-Encoding", withHeader("Transfer-Encoding: chunked")},
		{"Expect", withHeader("Expect: 100-continue")},
		{"Trailer", withHeader("Trailer: X")},
		{"Connection: close", withHeader("Connection: close")},
		{"Connection naming a header", withHeader("Connection: keep-alive, Cookie")},
		{"Connection: Upgrade", withHeader("Connection: Upgrade")},
		{"control character in a value", withHeader("X-A: a\x01b")},
		{"DEL in a value", withHeader("X-A: a\x7fb")},
		{"obs-text in a value", withHeader("X-A: caf\xc3\xa9")},
		{"NUL in a value", withHeader("X-A: a\x00b")},
		{"folded line", withHeader("X-A: a\r\n b")},
		{"space before colon", withHeader("X-A : a")},
		{"no colon", withHeader("X-A")},
		{"empty name", withHeader(": a")},
		{"too large", withHeader("X-A: " + strings.Repeat("a", maxFastHead))},
		{"empty", ""},
		{"only the end", "\r\n\r\n"},
	}
	for _, tc := range refusedHeads {
		t.Run("refuses/"+tc.name, func(t *testing.T) {
			if h, ok := ParseHead(tc.head); ok {
				t.Fatalf("took %q as %+v", tc.head, h)
			}
		})
	}
}

// FuzzParseHead: whatever ParseHead takes, framing's own check accepts, and
// is a GET or HEAD of an origin-form path with exactly one Host.
func FuzzParseHead(f *testing.F) {
	f.Add("GET /page/1 HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n")
	f.Add("HEAD /a?b HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	f.Fuzz(func(t *testing.T, head string) {
		h, ok := ParseHead(head)
		if !ok {
			return
		}
		if v := check(head); v.bad != "" || v.chunked || v.upgrade || v.length != 0 {
			t.Fatalf("took %q, which the framing check judges %+v", head, v)
		}
		if (h.Method != "GET" && h.Method != "HEAD") || !strings.HasPrefix(h.Path, "/") || h.Host == "" {
			t.Fatalf("took %q as %+v", head, h)
		}
	})
}
