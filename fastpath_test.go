package main

// The fast path of the plain listener (framing.Fast, proxy.Handler.FastPath)
// must answer exactly as net/http does: these tests send the same raw
// requests to an instance with it and one without it, and compare the
// bytes. The whole suite also runs with it (the default) and without it:
// ISRPROXY_FASTPATH=off go test .

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fastOrigin serves the pages of the comparison.
func fastOrigin(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
	h.Set("ETag", `"v1`+r.URL.Path+`"`)
	switch {
	case r.URL.Path == "/lang":
		h.Set("Vary", "Accept-Language")
	case r.URL.Path == "/missing":
		w.WriteHeader(http.StatusNotFound)
	case r.URL.Path == "/moved":
		h.Set("Location", "/page")
		w.WriteHeader(http.StatusMovedPermanently)
	case r.URL.Path == "/private":
		h.Set("Cache-Control", "private")
	}
	fmt.Fprintf(w, "<html><body>%s %s %s</body></html>\n", r.Method, r.URL.RequestURI(),
		strings.Repeat("lorem ipsum dolor sit amet ", 200))
}

// rawExchange sends raw on a new connection, reads n answers (to requests
// of method) and reports the bytes received, with Date and Age masked, and
// whether the server then closed the connection.
func rawExchange(t *testing.T, dial func() (net.Conn, error), raw, method string, n int) string {
	t.Helper()
	c, err := dial()
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	go io.WriteString(c, raw) //nolint:errcheck // the server may close first
	var got bytes.Buffer
	r := bufio.NewReader(io.TeeReader(c, &got))
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(r, &http.Request{Method: method})
		if err != nil {
			fmt.Fprintf(&got, "\n[answer %d: %v]", i+1, err)
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	_, err = r.ReadByte()
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		got.WriteString("\n[open]")
	case err != nil:
		got.WriteString("\n[closed]")
	default:
		got.WriteString("\n[more bytes]")
	}
	s := regexp.MustCompile(`\r\nDate: [^\r]*`).ReplaceAllString(got.String(), "\r\nDate: -")
	return regexp.MustCompile(`\r\nAge: \d+`).ReplaceAllString(s, "\r\nAge: -")
}

// TestFastPathAnswersAsNetHTTP: for stored pages and for every kind of
// request the fast path must hand to net/http, the instance with the fast
// path sends byte for byte what the one without it sends, keeps or closes
// the connection alike, and writes the same access-log lines.
func TestFastPathAnswersAsNetHTTP(t *testing.T) { compareFastPath(t, false) }

// TestFastPathAnswersAsNetHTTPOverTLS: the same over the TLS listener's
// HTTP/1.1 connections.
func TestFastPathAnswersAsNetHTTPOverTLS(t *testing.T) { compareFastPath(t, true) }

func compareFastPath(t *testing.T, overTLS bool) {
	o := newTestOrigin(t, fastOrigin)
	env := func(extra ...string) map[string]string {
		m := map[string]string{"BYPASS_COOKIES": "wordpress_logged_in_*"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	var fast, slow *instance
	dial := func(p *instance) func() (net.Conn, error) {
		return func() (net.Conn, error) { return net.Dial("tcp", hostPort(p.URL)) }
	}
	if overTLS {
		var fp, sp testPair
		fast, fp = startTLSProxy(t, o.URL, env())
		slow, sp = startTLSProxy(t, o.URL, env(fastPathVar, "off"))
		fast, slow = fast.over(t, fp.pool, "http/1.1"), slow.over(t, sp.pool, "http/1.1")
		dial = func(p *instance) func() (net.Conn, error) {
			pool := fp.pool
			if p == slow {
				pool = sp.pool
			}
			return func() (net.Conn, error) {
				return tls.Dial("tcp", strings.TrimPrefix(p.URL, "https://"),
					&tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			}
		}
	} else {
		fast = startProxy(t, o.URL, env())
		slow = startProxy(t, o.URL, env(fastPathVar, "off"))
	}
	if os.Getenv(fastPathVar) == "off" {
		t.Log("ISRPROXY_FASTPATH=off: both instances without the fast path")
	}
	for _, p := range []*instance{fast, slow} {
		for _, path := range []string{"/page", "/page/", "/q?b=2&a=1", "/lang", "/missing", "/moved", "/api", "/private"} {
			for _, ae := range []string{"gzip", ""} {
				for range 2 { // twice: the second identity hit keeps a decompressed copy
					if ae == "" {
						p.get(path, "Host", "example.com")
					} else {
						p.get(path, "Host", "example.com", "Accept-Encoding", ae)
					}
				}
			}
		}
		p.get("/lang", "Host", "example.com", "Accept-Language", "fr")
		p.get("/lang", "Host", "example.com", "Accept-Language", "fr")
	}
	get := func(target string, lines ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: example.com\r\n" + strings.Join(append(lines, ""), "\r\n") + "\r\n"
	}
	gz := "Accept-Encoding: gzip, deflate, br"
	cases := []struct {
		name, raw, method string
		n                 int
	}{
		{"gzip hit", get("/page", gz), "GET", 1},
		{"identity hit", get("/page"), "GET", 1},
		{"identity hit, gzip refused", get("/page", "Accept-Encoding: gzip;q=0"), "GET", 1},
		{"HEAD", "HEAD /page HTTP/1.1\r\nHost: example.com\r\n" + gz + "\r\n\r\n", "HEAD", 1},
		{"trailing slash", get("/page/", gz), "GET", 1},
		{"query, reordered", get("/q?a=1&b=2", gz), "GET", 1},
		{"stored 404", get("/missing", gz), "GET", 1},
		{"stored 301", get("/moved"), "GET", 1},
		{"host case and port", "GET /page HTTP/1.1\r\nHost: EXAMPLE.com:80\r\n" + gz + "\r\n\r\n", "GET", 1},
		{"keep-alive", get("/page", gz, "Connection: keep-alive"), "GET", 1},
		{"other headers", get("/page", gz, "User-Agent: x", "Accept: */*", "Cookie: a=b"), "GET", 1},
		{"pipelined", get("/page", gz) + get("/page") + get("/missing", gz) + get("/page", gz), "GET", 4},
		{"pipelined behind a miss", get("/new-page", gz) + get("/page", gz) + get("/page"), "GET", 3},
		{"Connection: close", get("/page", gz, "Connection: close"), "GET", 1},
		{"HTTP/1.0", "GET /page HTTP/1.0\r\nHost: example.com\r\n" + gz + "\r\n\r\n", "GET", 1},
		{"HTTP/1.0 keep-alive", "GET /page HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n", "GET", 1},
		{"If-None-Match", get("/page", gz, `If-None-Match: "v1/page"`), "GET", 1},
		{"If-Modified-Since", get("/page", gz, "If-Modified-Since: Fri, 02 Jan 2026 00:00:00 GMT"), "GET", 1},
		{"Range", get("/page", "Range: bytes=0-9"), "GET", 1},
		{"Authorization", get("/page", gz, "Authorization: Basic eDp5"), "GET", 1},
		{"bypass cookie", get("/page", gz, "Cookie: wordpress_logged_in_1=x"), "GET", 1},
		{"Vary: Accept-Language, another language", get("/lang", gz, "Accept-Language: fr"), "GET", 1},
		{"Vary: Accept-Language, none", get("/lang", gz), "GET", 1},
		{"two Accept-Encoding lines", get("/page", "Accept-Encoding: identity", "Accept-Encoding: gzip"), "GET", 1},
		{"percent-encoded path", get("/p%61ge", gz), "GET", 1},
		{"API path", get("/api/revalidate?path=/page"), "GET", 1},
		{"API path, double slash", get("//api/revalidate?path=/page"), "GET", 1},
		{"dot segment", get("/x/../page", gz), "GET", 1},
		{"semicolon in query", get("/q?a=1;b=2", gz), "GET", 1},
		{"absolute-form", "GET http://example.com/page HTTP/1.1\r\nHost: example.com\r\n\r\n", "GET", 1},
		{"leading empty line", "\r\n" + get("/page", gz), "GET", 1},
		{"no Host", "GET /page HTTP/1.1\r\n" + gz + "\r\n\r\n", "GET", 1},
		{"two Hosts", get("/page", "Host: other.example"), "GET", 1},
		{"Expect", get("/page", "Expect: something"), "GET", 1},
		{"Upgrade", get("/page", "Connection: Upgrade", "Upgrade: websocket"), "GET", 1},
		{"body on a GET", get("/page", "Content-Length: 2") + "ab", "GET", 1},
		{"bare LF", "GET /page HTTP/1.1\nHost: example.com\n\n", "GET", 1},
		{"POST", "POST /page HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n", "POST", 1},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", "OPTIONS", 1},
		{"control character in a value", get("/page", "X-A: a\x01b"), "GET", 1},
		{"obs-text in a value", get("/page", gz, "X-A: caf\xc3\xa9"), "GET", 1},
		{"not stored", get("/private", gz), "GET", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := rawExchange(t, dial(slow), tc.raw, tc.method, tc.n)
			got := rawExchange(t, dial(fast), tc.raw, tc.method, tc.n)
			assert.Equal(t, want, got, "with the fast path, then without")
		})
	}
	// The same access-log lines, but for times and durations.
	logLines := func(p *instance) []string {
		var out []string
		require.Eventually(t, func() bool {
			out = out[:0]
			for line := range strings.SplitSeq(p.logs.String(), "\n") {
				if strings.Contains(line, `"msg":"request"`) {
					line = regexp.MustCompile(`"time":"[^"]*"|"duration":\d+`).ReplaceAllString(line, "")
					out = append(out, line)
				}
			}
			return len(out) >= int(p.sent.Load())
		}, 5*time.Second, 5*time.Millisecond)
		return out
	}
	time.Sleep(200 * time.Millisecond) // lines are written after their answers
	assert.ElementsMatch(t, logLines(slow), logLines(fast))
}
