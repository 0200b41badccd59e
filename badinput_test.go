package main

// Malformed requests get a 4xx before anything reaches the origin, and
// change nothing that is stored.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A GET or HEAD in asterisk form ("GET * HTTP/1.1") is no page: RFC 9112
// §3.2.4 allows "*" for OPTIONS only. It is refused, never keyed nor sent
// to the origin as a request for "*".
func TestAsteriskFormPageRequestIsRefused(t *testing.T) {
	rec := &recorder{}
	o := newTestOrigin(t, rec.wrap(page("<p>origin</p>")))
	p := startProxy(t, o.URL, nil)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		got := sendRaw(t, p, method, method+" * HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
		assert.True(t, refused(got), "%s * answered %d %q", method, got.Status, got.Body)
	}
	for _, s := range rec.all() {
		assert.Failf(t, "an asterisk-form page request reached the origin", "%s %q", s.Method, s.RequestURI)
	}
}

// A header block over the server's limit gets 431 and reaches nothing.
func TestHugeHeaderBlockGets431(t *testing.T) {
	o := newTestOrigin(t, page("<p>origin</p>"))
	p := startProxy(t, o.URL, nil)
	one := "GET /a HTTP/1.1\r\nHost: www.example.com\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n"
	var many strings.Builder
	many.WriteString("GET /a HTTP/1.1\r\nHost: www.example.com\r\n")
	for i := range 10000 {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	many.WriteString("\r\n")
	cookies := "GET /a HTTP/1.1\r\nHost: www.example.com\r\nCookie: " + strings.Repeat("c=1; ", 40<<10) + "\r\n\r\n"
	for name, raw := range map[string]string{"one huge header": one, "many headers": many.String(), "huge cookie": cookies} {
		got := sendRaw(t, p, http.MethodGet, raw)
		require.NoError(t, got.Err, name)
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, got.Status, name)
	}
	assert.EqualValues(t, 0, o.hits.Load())
	assert.Equal(t, http.StatusOK, p.get("/a").Status, "the server still serves")
}

// Requests isrproxy refuses (a body on GET or HEAD, a Connection header
// naming an end-to-end header, h2c, a control byte or bad escape in the
// target) answer 400 before anything reaches the origin, and
// change nothing that is stored.
func TestMalformedRequestsAreRefusedBeforeOrigin(t *testing.T) {
	o := newTestOrigin(t, page("<p>stored</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/a") // a stored page that no refusal may change
	const host = "Host: www.example.com\r\n"
	cases := map[string]string{
		"GET with a body":            "GET /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello",
		"HEAD with a body":           "HEAD /a HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabc",
		"GET with a chunked body":    "GET /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"Connection: Host":           "GET /a HTTP/1.1\r\n" + host + "Connection: Host\r\n\r\n",
		"Connection: content-length": "GET /a HTTP/1.1\r\n" + host + "Connection: content-length\r\n\r\n",
		"Connection: TE list":        "GET /a HTTP/1.1\r\n" + host + "Connection: keep-alive, Transfer-Encoding\r\n\r\n",
		"Connection: cookie":         "GET /a HTTP/1.1\r\n" + host + "Cookie: a=1\r\nConnection: cookie\r\n\r\n",
		"Connection: Authorization":  "GET /a HTTP/1.1\r\n" + host + "Connection: Authorization\r\n\r\n",
		"Connection on a POST":       "POST /a HTTP/1.1\r\n" + host + "Content-Length: 0\r\nConnection: Cookie\r\n\r\n",
		"Upgrade: h2c":               "GET /a HTTP/1.1\r\n" + host + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"Upgrade list with h2c":      "GET /a HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket, H2C\r\n\r\n",
		"path %00":                   "GET /a%00b HTTP/1.1\r\n" + host + "\r\n",
		"path %1f":                   "GET /a%1fb HTTP/1.1\r\n" + host + "\r\n",
		"path %1F":                   "GET /a%1Fb HTTP/1.1\r\n" + host + "\r\n",
		"path %0d%0a":                "GET /a%0d%0aSet-Cookie:x=1 HTTP/1.1\r\n" + host + "\r\n",
		"path %7f":                   "GET /a%7fb HTTP/1.1\r\n" + host + "\r\n",
		"path %7F":                   "GET /a%7F HTTP/1.1\r\n" + host + "\r\n",
		"path raw control":           "GET /a\x01b HTTP/1.1\r\n" + host + "\r\n",
		"path raw DEL":               "GET /a\x7fb HTTP/1.1\r\n" + host + "\r\n",
		"path bad escape":            "GET /a%zz HTTP/1.1\r\n" + host + "\r\n",
		"query bad escape":           "GET /a?x=%zz HTTP/1.1\r\n" + host + "\r\n",
		"query short escape":         "GET /a?x=%2 HTTP/1.1\r\n" + host + "\r\n",
		"query bad escape in name":   "GET /a?%g1=1 HTTP/1.1\r\n" + host + "\r\n",
		"ignored param bad escape":   "GET /a?utm_source=%zz HTTP/1.1\r\n" + host + "\r\n",
		"ignored gclid bad escape":   "GET /a?id=1&gclid=%G0 HTTP/1.1\r\n" + host + "\r\n",
		"HEAD query bad escape":      "HEAD /a?x=%% HTTP/1.1\r\n" + host + "\r\n",
	}
	for name, raw := range cases {
		method, _, _ := strings.Cut(raw, " ")
		got := mustRaw(t, p, method, raw)
		assert.Equal(t, http.StatusBadRequest, got.Status, name)
		assert.EqualValues(t, 1, o.hits.Load(), "%s reached the origin", name)
	}
	got := assertStored(t, p, o, "/a")
	assert.Equal(t, "<p>stored</p>", got.Body)
}

// "Content-Length: 0 is no body": such a GET is served normally.
func TestGetWithZeroContentLengthIsServed(t *testing.T) {
	o := newTestOrigin(t, page("<p>ok</p>"))
	p := startProxy(t, o.URL, nil)
	got := mustRaw(t, p, "GET", "GET /z HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "<p>ok</p>", got.Body)
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
}
