package proxy

import (
	"bufio"
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
)

// readRequest parses raw as net/http's server does, so that ContentLength,
// TransferEncoding and the URL are what refusal sees in production.
func readRequest(t *testing.T, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	require.NoError(t, err, "net/http must accept the request for refusal to see it")
	return r
}

// TestRequestsRefusedBeforeReachingTheOrigin checks the requests answered
// 400 before any origin request is made, and that their neighbours that
// are harmless are let through.
func TestRequestsRefusedBeforeReachingTheOrigin(t *testing.T) {
	for _, tt := range []struct {
		name    string
		raw     string
		refused bool
	}{
		// A GET or HEAD may not carry a body; Content-Length: 0 is no body.
		{"a plain GET is accepted", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a plain HEAD is accepted", "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a GET with a body is refused", "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", true},
		{"a HEAD with a body is refused", "HEAD /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", true},
		{"a GET with Content-Length 0 has no body and is accepted", "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", false},
		{"a chunked GET is refused", "GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"a chunked HEAD is refused", "HEAD /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"a POST with a body is accepted", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", false},
		{"a chunked POST is accepted", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},

		// Connection may not name the headers that frame or key the request.
		{"Connection naming Host is refused", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Host\r\n\r\n", true},
		{"Connection naming Content-Length is refused", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\n\r\n", true},
		{"Connection naming Transfer-Encoding is refused", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding\r\n\r\n", true},
		{"Connection naming Cookie is refused", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Cookie\r\n\r\n", true},
		{"Connection naming Authorization is refused", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Authorization\r\n\r\n", true},
		{"Connection names are compared in any case", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: cOOKIE\r\n\r\n", true},
		{"Connection names are found in lists", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive,  authorization ,X-A\r\n\r\n", true},
		{"Connection names are found on any line", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: HOST\r\n\r\n", true},
		{"Connection naming other headers is accepted", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Forwarded-For, Upgrade\r\n\r\n", false},
		{"Connection naming a longer name is accepted", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Cookies, Host-Name\r\n\r\n", false},

		// Upgrade: h2c is refused; other upgrades (WebSocket) pass through.
		{"Upgrade h2c is refused", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", true},
		{"Upgrade h2c is refused in any case", "GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: H2C\r\n\r\n", true},
		{"Upgrade h2c is found in lists", "GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket, h2c\r\n\r\n", true},
		{"Upgrade h2c is found on any line", "GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nUpgrade:  h2c \r\n\r\n", true},
		{"Upgrade websocket is accepted", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"Upgrade to a protocol merely starting h2c is accepted", "GET /a HTTP/1.1\r\nHost: x\r\nUpgrade: h2cx\r\n\r\n", false},

		// Control characters in the path, percent-encoded, in either case of hex.
		{"an encoded NUL in the path is refused", "GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded line feed in the path is refused", "GET /a%0Ab HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded line feed in lower-case hex is refused", "GET /a%0ab HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded carriage return in the path is refused", "GET /a%0d%0aSet-Cookie:x HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded %1F in the path is refused", "GET /a%1F HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded %1f in the path is refused", "GET /a%1f HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded DEL in the path is refused", "GET /a%7F HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded DEL in lower-case hex is refused", "GET /a%7f HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"an encoded space in the path is accepted", "GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"an encoded %2F in the path is accepted", "GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"a control character only in the query is not a path refusal", "GET /a?q=%00 HTTP/1.1\r\nHost: x\r\n\r\n", false},

		// Request-target forms.
		{"OPTIONS * is accepted", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"GET * is refused: it is not origin-form", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"absolute-form with an empty path is accepted as /", "GET http://x HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"absolute-form with an empty path and a query is accepted", "GET http://x?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"absolute-form with an encoded control character is refused", "GET http://x/a%00 HTTP/1.1\r\nHost: x\r\n\r\n", true},

		// Only HTTP/1.x.
		{"an HTTP/1.0 GET is accepted", "GET /a HTTP/1.0\r\n\r\n", false},
		{"the HTTP/2 preface method PRI is refused", "PRI * HTTP/1.1\r\nHost: x\r\n\r\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := refusal(readRequest(t, tt.raw))
			if tt.refused {
				assert.NotEmpty(t, msg)
			} else {
				assert.Empty(t, msg)
			}
		})
	}
}

// TestRawControlCharactersInThePathAreRefused covers paths net/http's
// parser would have rejected itself: a request built in process (or by
// another front end) must be refused all the same, raw or encoded.
func TestRawControlCharactersInThePathAreRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		url  *url.URL
	}{
		{"a raw NUL", &url.URL{Path: "/a\x00b"}},
		{"a raw line feed", &url.URL{Path: "/a\nb"}},
		{"a raw unit separator", &url.URL{Path: "/a\x1f"}},
		{"a raw DEL", &url.URL{Path: "/a\x7f"}},
		{"a raw tab with an escaped form kept", &url.URL{Path: "/a\tb", RawPath: "/a%09b"}},
		{"an escaped NUL kept as written", &url.URL{Path: "/a\x00b", RawPath: "/a%00b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Method: http.MethodGet, URL: tt.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{}, Host: "x"}
			assert.Equal(t, cache.ErrControlChar.Error(), refusal(r))
		})
	}
}

// TestRequestsOverOtherProtocolsAreRefused: HTTP/1.x is served, and
// HTTP/2 only over TLS (never h2c); HTTP/3 never.
func TestRequestsOverOtherProtocolsAreRefused(t *testing.T) {
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/a"}, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: http.Header{}, Host: "x"}
	assert.NotEmpty(t, refusal(r), "HTTP/2 without TLS")
	r.TLS = &tls.ConnectionState{NegotiatedProtocol: "h2"}
	assert.Empty(t, refusal(r), "HTTP/2 over TLS")
	r.Proto, r.ProtoMajor = "HTTP/3.0", 3
	assert.NotEmpty(t, refusal(r), "HTTP/3")
}

// TestHTTP2RequestsAreHeldToTheSameRules: a request whose fields would be
// refused over HTTP/1.1 is refused over HTTP/2, a body of unknown length
// (DATA frames without content-length) included.
func TestHTTP2RequestsAreHeldToTheSameRules(t *testing.T) {
	for _, tt := range []struct {
		name   string
		method string
		length int64
		header http.Header
		path   string
	}{
		{"a GET with a body of unknown length", http.MethodGet, -1, http.Header{}, "/a"},
		{"a HEAD with a body", http.MethodHead, 3, http.Header{}, "/a"},
		{"Connection naming Host", http.MethodGet, 0, http.Header{"Connection": {"Host"}}, "/a"},
		{"Upgrade: h2c", http.MethodGet, 0, http.Header{"Upgrade": {"h2c"}}, "/a"},
		{"an encoded control character in the path", http.MethodGet, 0, http.Header{}, "/a%01b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.path)
			require.NoError(t, err)
			r := &http.Request{Method: tt.method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: tt.header,
				Host: "x", ContentLength: tt.length, TLS: &tls.ConnectionState{NegotiatedProtocol: "h2"}}
			assert.NotEmpty(t, refusal(r))
		})
	}
}

// TestRequestsThatMustBypassTheCache checks the requests that may neither
// be answered from memory nor fill: credentials and bypass cookies. A
// range may be answered from memory (ranges_test.go).
func TestRequestsThatMustBypassTheCache(t *testing.T) {
	h := &Handler{bypassCookies: cache.NewMatcher([]string{"wordpress_logged_in_*", "session", "wp-*"})}
	for _, tt := range []struct {
		name   string
		header http.Header
		bypass bool
	}{
		{"an anonymous request uses the cache", http.Header{}, false},
		{"Authorization bypasses", http.Header{"Authorization": {"Bearer t"}}, true},
		{"an empty Authorization still bypasses", http.Header{"Authorization": {""}}, true},
		{"Range alone may use the cache", http.Header{"Range": {"bytes=0-1"}}, false},
		{"a bypass cookie by its exact name bypasses", http.Header{"Cookie": {"session=1"}}, true},
		{"a bypass cookie matched by a prefix bypasses", http.Header{"Cookie": {"wordpress_logged_in_abc=x"}}, true},
		{"a bypass cookie that is exactly a prefix bypasses", http.Header{"Cookie": {"wp-=1"}}, true},
		{"a bypass cookie among others bypasses", http.Header{"Cookie": {"theme=dark; lang=fr;session=abc"}}, true},
		{"a bypass cookie with spaces around its name bypasses", http.Header{"Cookie": {"a=1;   session  =2"}}, true},
		{"a bypass cookie on a second Cookie line bypasses", http.Header{"Cookie": {"a=1", "wp-settings=2"}}, true},
		{"a bypass cookie without a value bypasses", http.Header{"Cookie": {"a=1; session"}}, true},
		{"unrelated cookies use the cache", http.Header{"Cookie": {"theme=dark; _ga=GA1.2"}}, false},
		{"a cookie whose name only contains an exact bypass name uses the cache", http.Header{"Cookie": {"sessionid=1; my_session=2"}}, false},
		{"a cookie whose name only ends in a prefix uses the cache", http.Header{"Cookie": {"x_wordpress_logged_in_=1"}}, false},
		{"a bypass name as a cookie value uses the cache", http.Header{"Cookie": {"last=session; w=wp-admin"}}, false},
		{"cookie names are compared in their case", http.Header{"Cookie": {"Session=1"}}, false},
		{"an empty Cookie line uses the cache", http.Header{"Cookie": {"", ";;"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: tt.header}
			assert.Equal(t, tt.bypass, h.mustBypass(r))
		})
	}
}

// TestCookiesNeverBypassWithoutBypassCookies: with no BYPASS_COOKIES a
// cookie does not keep a request from the cache (fills drop it).
func TestCookiesNeverBypassWithoutBypassCookies(t *testing.T) {
	h := &Handler{}
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: http.Header{"Cookie": {"session=1"}}}
	assert.False(t, h.mustBypass(r))
	r.Header.Set("Authorization", "Basic eDp5")
	assert.True(t, h.mustBypass(r), "credentials bypass all the same")
}
