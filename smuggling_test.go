package main

// Request smuggling: a request whose framing could be read two ways is
// refused, and nothing hidden in it is ever read as a request of its own.
// Upgrades are refused for h2c and passed through for WebSocket.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smuggled is a request hidden in a body: if it is ever parsed as a
// request of its own, the origin sees "/smuggled" (assertSmugglingRefused makes
// the path unique per case, keeping its length).
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: www.example.com\r\n\r\n"

// smuggleCase is one raw request. In raw, "/a " and "/smuggled" are
// made unique per case so that what reaches the origin names its case.
type smuggleCase struct{ name, raw string }

// smuggleResult is what one case got: its first answer, how many more
// answers the connection gave (a smuggled request answered), and what the
// origin received for it.
type smuggleResult struct {
	first  rawAnswer
	extra  int
	origin []string
}

// runSmuggleCases sends every case on its own connection, all at once, and
// reads every answer each connection gives until it closes or stays quiet.
func runSmuggleCases(t *testing.T, cases []smuggleCase) []smuggleResult {
	t.Helper()
	return runSmuggleCasesOver(t, cases, false)
}

// runSmuggleCasesOver is runSmuggleCases on the TLS listener when overTLS,
// each case on an HTTP/1.1 connection (ALPN "http/1.1").
func runSmuggleCasesOver(t *testing.T, cases []smuggleCase, overTLS bool) []smuggleResult {
	t.Helper()
	rec := &recorder{}
	o := newTestOrigin(t, rec.wrap(page("<p>origin</p>")))
	dial := func(p *instance) (net.Conn, error) { return net.Dial("tcp", hostPort(p.URL)) }
	var p *instance
	if overTLS {
		var pair testPair
		p, pair = startTLSProxy(t, o.URL, nil)
		dial = func(p *instance) (net.Conn, error) {
			return tls.Dial("tcp", strings.TrimPrefix(p.TLS, "https://"),
				&tls.Config{RootCAs: pair.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		}
	} else {
		p = startProxy(t, o.URL, nil)
	}
	results := make([]smuggleResult, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		raw := strings.ReplaceAll(tc.raw, "/a ", fmt.Sprintf("/a%02d ", i))
		raw = strings.ReplaceAll(raw, "/smuggled", fmt.Sprintf("/smuggl%02d", i))
		method, _, _ := strings.Cut(raw, " ")
		wg.Go(func() {
			conn, err := dial(p)
			if !assert.NoError(t, err) {
				return
			}
			defer conn.Close()
			go io.WriteString(conn, raw) //nolint:errcheck // the server may close first
			br := bufio.NewReader(conn)
			for n := 0; ; n++ {
				conn.SetReadDeadline(time.Now().Add(map[bool]time.Duration{true: 10 * time.Second, false: 300 * time.Millisecond}[n == 0]))
				resp, err := http.ReadResponse(br, &http.Request{Method: method})
				if err != nil {
					if n == 0 {
						results[i].first = rawAnswer{Err: err}
					}
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if n == 0 {
					results[i].first = rawAnswer{Status: resp.StatusCode, Body: string(body)}
				} else {
					results[i].extra++
				}
				if resp.Close {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range rec.all() {
		i, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(s.RequestURI, "/smuggl"), "/a"))
		if err != nil || i < 0 || i >= len(cases) {
			assert.Failf(t, "an unexpected request reached the origin", "%s %s", s.Method, s.RequestURI)
			continue
		}
		results[i].origin = append(results[i].origin, s.Method+" "+s.RequestURI)
	}
	return results
}

// assertSmugglingRefused checks that every case is refused (a 4xx, or Go's own
// 501/505) and that nothing of it reaches the origin. It returns each
// case's first answer, by name.
func assertSmugglingRefused(t *testing.T, cases []smuggleCase) map[string]rawAnswer {
	t.Helper()
	first := make(map[string]rawAnswer, len(cases))
	for i, r := range runSmuggleCases(t, cases) {
		name := cases[i].name
		first[name] = r.first
		assert.True(t, refused(r.first), "%s: answered %d %q, want a 4xx", name, r.first.Status, r.first.Body)
		assert.Zero(t, r.extra, "%s: a smuggled request was answered", name)
		assert.Empty(t, r.origin, "%s reached the origin", name)
	}
	return first
}

// Framing attacks that a bodiless method or isrproxy's own refusals catch:
// each is refused with a 4xx (or Go's own 400/501) before anything reaches
// the origin.
func TestSmugglingFramingAttacksAreRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	sl := strconv.Itoa(len(smuggled))                     // the hidden request as a body
	hexLen := strconv.FormatInt(int64(len(smuggled)), 16) // ... and as one chunk
	whole := strconv.Itoa(len("0\r\n\r\n" + smuggled))    // a Content-Length that hides it, where chunked does not
	got := assertSmugglingRefused(t, []smuggleCase{
		{"GET CL+TE", "GET /a HTTP/1.1\r\n" + h + "Content-Length: " + whole + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"GET TE+CL", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: " + whole + "\r\n\r\n0\r\n\r\n" + smuggled},
		{"HEAD CL+TE", "HEAD /a HTTP/1.1\r\n" + h + "Content-Length: " + whole + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"duplicate Content-Length", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: " + sl + "\r\n\r\nhello" + smuggled},
		{"duplicate Content-Length in one line", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 5, " + sl + "\r\n\r\nhello" + smuggled},
		{"GET duplicate Content-Length", "GET /a HTTP/1.1\r\n" + h + "Content-Length: 0\r\nContent-Length: " + sl + "\r\n\r\n" + smuggled},
		{"Content-Length +5", "POST /a HTTP/1.1\r\n" + h + "Content-Length: +5\r\n\r\nhello" + smuggled},
		{"Content-Length -1", "POST /a HTTP/1.1\r\n" + h + "Content-Length: -1\r\n\r\n" + smuggled},
		{"Content-Length 0x5", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 0x5\r\n\r\nhello" + smuggled},
		{"TE chunked, identity", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE identity, chunked", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE xchunked", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE chunked-false", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked-false\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE two lines", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE quoted", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE header name with space", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE header line folded first", "POST /a HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + h + "Content-Length: 5\r\n\r\n0\r\n\r\n" + smuggled},
		{"TE with NUL", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\x00\r\n\r\n0\r\n\r\n" + smuggled},
		{"GET TE tab", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding:\tchunked\r\nContent-Length: " + whole + "\r\n\r\n0\r\n\r\n" + smuggled},
		{"GET TE space", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding:  chunked\r\nContent-Length: " + whole + "\r\n\r\n0\r\n\r\n" + smuggled},
		{"fat GET", "GET /a HTTP/1.1\r\n" + h + "Content-Length: " + sl + "\r\n\r\n" + smuggled},
		{"fat HEAD", "HEAD /a HTTP/1.1\r\n" + h + "Content-Length: " + sl + "\r\n\r\n" + smuggled},
		{"GET chunked body", "GET /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n" + hexLen + "\r\n" + smuggled + "\r\n0\r\n\r\n"},
		{"Connection: Content-Length", "GET /a HTTP/1.1\r\n" + h + "Content-Length: 0\r\nConnection: Content-Length\r\n\r\n"},
		{"Connection: content-length on POST", "POST /a HTTP/1.1\r\n" + h + "Content-Length: " + sl + "\r\nConnection: keep-alive, content-length\r\n\r\n" + smuggled},
		{"Connection: Host", "GET /a HTTP/1.1\r\n" + h + "Connection: close, Host\r\n\r\n"},
		{"Connection: Transfer-Encoding", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n0\r\n\r\n"},
		{"Connection: Cookie", "GET /a HTTP/1.1\r\n" + h + "Cookie: x=1\r\nConnection: Cookie\r\n\r\n"},
		{"Connection: Authorization", "GET /a HTTP/1.1\r\n" + h + "Authorization: Bearer x\r\nConnection: Authorization\r\n\r\n"},
		{"Connection: Host on a second line", "GET /a HTTP/1.1\r\n" + h + "Connection: keep-alive\r\nConnection: host\r\n\r\n"},
		{"Upgrade: h2c", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"},
		{"Upgrade: H2C on POST", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: H2C\r\n\r\n"},
		{"Upgrade list with h2c", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n"},
		{"Upgrade: h2c on a second line", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n"},
		{"two Host headers", "GET /a HTTP/1.1\r\n" + h + "Host: evil.example\r\n\r\n"},
		{"no Host on HTTP/1.1", "GET /a HTTP/1.1\r\n\r\n"},
		{"space in request target", "GET /a " + smuggled},
		{"HTTP/2.0 request line", "GET /a HTTP/2.0\r\n" + h + "\r\n"},
		{"NUL in request target", "GET /a\x00b HTTP/1.1\r\n" + h + "\r\n"},
		{"CR in header value", "GET /a HTTP/1.1\r\n" + h + "X-A: b\rTransfer-Encoding: chunked\r\n\r\n"},
	})
	// isrproxy refuses these itself, with a 400, whoever would answer.
	for _, name := range []string{
		"fat GET", "fat HEAD", "GET chunked body", "GET CL+TE", "Connection: Content-Length", "Connection: Host",
		"Connection: Transfer-Encoding", "Connection: Cookie", "Connection: Authorization", "Upgrade: h2c",
		"Upgrade: H2C on POST", "Upgrade list with h2c", "Upgrade: h2c on a second line", "duplicate Content-Length",
	} {
		assert.Equal(t, http.StatusBadRequest, got[name].Status, name)
	}
}

// After a request whose end the framing check does not follow itself (a
// chunked body, an Upgrade that is not switched), whoever answers it, the
// connection closes: a request hidden behind it is never read, so it can
// never bypass the check.
func TestNothingIsReadAfterAnUnframedRequest(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	bareLF := strings.ReplaceAll(smuggled, "\r\n", "\n") // refused on a fresh connection
	chunk := "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	cases := []smuggleCase{
		{"Upgrade not switched, page", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: foo\r\n\r\n" + bareLF},
		{"Upgrade not switched, then a well-formed request", "GET /a HTTP/1.1\r\n" + h + "Upgrade: websocket\r\n\r\n" + smuggled},
		{"chunked POST to a page", "POST /a HTTP/1.1\r\n" + h + chunk + bareLF},
		{"chunked POST to the API", "POST /api/revalidate HTTP/1.1\r\n" + h + chunk + bareLF},
		{"chunked PUT to the API (405)", "PUT /api/revalidate HTTP/1.1\r\n" + h + chunk + bareLF},
		{"chunked OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + h + chunk + bareLF},
		{"Upgrade on OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + h + "Upgrade: foo\r\n\r\n" + bareLF},
		{"Upgrade on the API", "GET /api/revalidate/jobs/x HTTP/1.1\r\n" + h + "Upgrade: foo\r\n\r\n" + smuggled},
	}
	for i, r := range runSmuggleCases(t, cases) {
		name := cases[i].name
		assert.NotZero(t, r.first.Status, "%s: no first answer (%v)", name, r.first.Err)
		assert.Zero(t, r.extra, "%s: a request behind it was answered", name)
		for _, got := range r.origin {
			assert.NotContains(t, got, "/smuggl", "%s: the hidden request reached the origin", name)
		}
	}
}

// A malformed chunked body on a pass-through: Go only finds the fault while
// the body streams to the origin, so the origin may see the request begin,
// but the exchange is aborted, the hidden request never reaches it, and
// the visitor's fault is answered 400, not blamed on the origin (502).
func TestMalformedChunkedBodyIsRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	cases := []smuggleCase{
		{"chunk size with bare LF", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + smuggled},
		{"chunk data with bare LF", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n" + smuggled},
		{"chunk size overflow", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + smuggled},
		{"chunk size not hex", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n" + smuggled},
		{"chunk longer than its size", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + smuggled},
	}
	for i, r := range runSmuggleCases(t, cases) {
		name := cases[i].name
		assert.True(t, refused(r.first), "%s: answered %d %q, want a 4xx", name, r.first.Status, r.first.Body)
		assert.Zero(t, r.extra, "%s: a smuggled request was answered", name)
		for _, got := range r.origin {
			assert.NotContains(t, got, "/smuggl", "%s: the hidden request reached the origin", name)
		}
	}
}

// CL.TE and TE.CL: a body framed both ways, with the Transfer-Encoding
// plain or obfuscated in ways some front ends do not recognise (a tab, a
// leading space, a folded line). RFC 9112 §6.1 says such a message "ought
// to be handled as an error"; nginx and Varnish answer 400. A front end
// before isrproxy that frames by Content-Length would otherwise disagree
// with it about where the next request starts.
func TestContentLengthWithTransferEncodingIsRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	body := "0\r\n\r\n" + smuggled
	cl := "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	assertSmugglingRefused(t, []smuggleCase{
		{"POST CL+TE", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: chunked\r\n\r\n" + body},
		{"POST TE+CL", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\n" + cl + "\r\n" + body},
		{"POST CL+TE tab", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding:\tchunked\r\n\r\n" + body},
		{"POST CL+TE leading space", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding:  chunked\r\n\r\n" + body},
		{"POST CL+TE trailing space", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: chunked \r\n\r\n" + body},
		{"POST CL+TE upper case", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: CHUNKED\r\n\r\n" + body},
		{"POST CL+TE folded", "POST /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding:\r\n chunked\r\n\r\n" + body},
		{"PUT CL+TE", "PUT /a HTTP/1.1\r\n" + h + cl + "Transfer-Encoding: chunked\r\n\r\n" + body},
	})
}

// Bare LF line endings: a front end that only ends lines at CRLF sees one
// header where isrproxy sees two. RFC 9112 §2.2 lets a recipient accept a
// bare LF, but isrproxy refuses it, as it refuses every other framing
// ambiguity.
func TestBareLFLineEndingsAreRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	assertSmugglingRefused(t, []smuggleCase{
		{"bare LF everywhere", "GET /a HTTP/1.1\nHost: www.example.com\n\n"},
		{"bare LF after request line", "GET /a HTTP/1.1\n" + h + "\r\n"},
		{"bare LF hides a header", "GET /a HTTP/1.1\r\n" + h + "X-A: b\nConnection: close\r\n\r\n"},
		{"bare LF hides Transfer-Encoding", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 5\r\nX-A: b\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
	})
}

// HTTP/2 over cleartext is refused in both forms: the Upgrade header
// (refused with 400) and prior knowledge, the "PRI * HTTP/2.0" preface, which Go
// hands to the handler with an unbounded body.
func TestH2CPriorKnowledgeIsRefused(t *testing.T) {
	assertSmugglingRefused(t, []smuggleCase{
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + smuggled},
	})
}

// WebSocket upgrades pass through to the origin.
func TestWebSocketUpgradePassesThrough(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if !assert.Equal(t, "websocket", strings.ToLower(r.Header.Get("Upgrade"))) {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		buf.Flush()
		line, err := buf.ReadString('\n')
		if err == nil {
			buf.WriteString("echo " + line)
			buf.Flush()
		}
	})
	p := startProxy(t, o.URL, nil)
	conn, err := net.Dial("tcp", hostPort(p.URL))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: www.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	_, err = io.WriteString(conn, "ping\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "echo ping\n", line)
}
