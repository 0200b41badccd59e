// HTTPS and HTTP/2 (see docs/promises.md): the TLS listener speaks HTTP/2
// and HTTP/1.1 as ALPN picks, TLS 1.2 at least, never h2c; every core
// promise holds over each protocol; certificate files are re-read without
// a restart; plain page requests are redirected to https.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/isrproxy/isrproxy/certs"
)

// testPair is a self-signed certificate and key written to files.
type testPair struct {
	certFile, keyFile string
	pool              *x509.CertPool // trusts the certificate
	serial            string
}

// writePair writes a fresh self-signed pair for 127.0.0.1 and localhost
// under dir as name.crt and name.key.
func writePair(t *testing.T, dir, name string) testPair {
	t.Helper()
	certPEM, keyPEM, err := certs.SelfSigned([]string{"localhost", "127.0.0.1", "www.example.com"}, 24*time.Hour)
	require.NoError(t, err)
	p := testPair{certFile: filepath.Join(dir, name+".crt"), keyFile: filepath.Join(dir, name+".key"),
		pool: x509.NewCertPool()}
	require.NoError(t, os.WriteFile(p.certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(p.keyFile, keyPEM, 0o600))
	require.True(t, p.pool.AppendCertsFromPEM(certPEM))
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	p.serial = c.Leaf.SerialNumber.String()
	return p
}

// startTLSProxy starts isrproxy with HTTPS on a loopback port, from a
// self-signed pair, env added (HTTPS_REDIRECT is off unless env says).
func startTLSProxy(t *testing.T, originURL string, env map[string]string) (*instance, testPair) {
	t.Helper()
	pair := writePair(t, t.TempDir(), "site")
	environ := map[string]string{
		"TLS_ADDR":       "127.0.0.1:0",
		"TLS_CERT_FILE":  pair.certFile,
		"TLS_KEY_FILE":   pair.keyFile,
		"HTTPS_REDIRECT": "off",
	}
	for k, v := range env {
		environ[k] = v
	}
	p := startProxy(t, originURL, environ)
	require.NotEmpty(t, p.TLS)
	return p, pair
}

// tlsClient speaks proto ("h2" or "http/1.1") over TLS, trusting pool.
func tlsClient(pool *x509.CertPool, proto string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{proto}},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
	}
	if proto == "h2" {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// over returns a copy of p whose helpers speak proto to its TLS listener.
func (in *instance) over(t *testing.T, pool *x509.CertPool, proto string) *instance {
	c := *in.on(t)
	c.URL = in.TLS
	c.client = tlsClient(pool, proto)
	t.Cleanup(c.client.CloseIdleConnections)
	return &c
}

// protocols are the ways a visitor reaches isrproxy.
var protocols = []struct {
	name  string
	alpn  string // "" for plain HTTP
	proto string // the answer's Proto
}{
	{"HTTP/1.1", "", "HTTP/1.1"},
	{"HTTP/1.1 over TLS", "http/1.1", "HTTP/1.1"},
	{"HTTP/2 over TLS", "h2", "HTTP/2.0"},
}

// TestCorePromisesOverEveryProtocol runs the core promises over plain
// HTTP/1.1, HTTP/1.1 over TLS and HTTP/2.
func TestCorePromisesOverEveryProtocol(t *testing.T) {
	promises := []struct {
		name string
		run  func(t *testing.T, start func(h http.HandlerFunc) (*instance, *testOrigin), proto string)
	}{
		{"served from memory", func(t *testing.T, start func(http.HandlerFunc) (*instance, *testOrigin), proto string) {
			p, o := start(page("<p>stored</p>"))
			first := p.get("/page")
			assert.Equal(t, proto, first.Proto)
			assert.Equal(t, "MISS", first.Header.Get("X-Cache"))
			for range 3 {
				got := assertStored(t, p, o, "/page")
				assert.Equal(t, "<p>stored</p>", got.Body)
				assert.Equal(t, proto, got.Proto)
			}
			assert.Equal(t, int64(1), o.hits.Load())
		}},
		{"one fetch per key", func(t *testing.T, start func(http.HandlerFunc) (*instance, *testOrigin), proto string) {
			g := newGate()
			p, o := start(func(w http.ResponseWriter, r *http.Request) {
				g.wait(r)
				page("<p>once</p>")(w, r)
			})
			g.openAtCleanup(t)
			wait := launchGets(t, p, "/once", 10)
			waitForRequests(t, p, 10)
			g.open()
			for _, a := range wait() {
				assert.Equal(t, http.StatusOK, a.Status)
				assert.Equal(t, "<p>once</p>", a.Body)
			}
			assert.Equal(t, int64(1), o.hits.Load(), "ten concurrent misses, one origin request")
		}},
		{"nothing personal stored", func(t *testing.T, start func(http.HandlerFunc) (*instance, *testOrigin), proto string) {
			p, o := start(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/cookie" {
					w.Header().Set("Set-Cookie", "session=secret")
				}
				page("<p>page</p>")(w, r)
			})
			p.get("/cookie")
			got := assertNotStored(t, p, o, "/cookie")
			assert.Equal(t, "session=secret", got.Header.Get("Set-Cookie"), "given to the request that fetched it only")
			p.get("/page")
			assertStored(t, p, o, "/page")
			got = assertNotStored(t, p, o, "/page", "Authorization", "Bearer x")
			assert.Equal(t, "BYPASS", got.Header.Get("X-Cache"))
			assert.Empty(t, o.lastRequest().Header.Get("Cookie"))
		}},
		{"read-your-writes revalidation", func(t *testing.T, start func(http.HandlerFunc) (*instance, *testOrigin), proto string) {
			var version atomic.Int64
			p, o := start(editableOrigin(&version))
			assert.Contains(t, p.get("/post").Body, "version 0")
			version.Add(1)
			api := p.revalidate("path=/post")
			require.Equal(t, http.StatusOK, api.Status, api.Body)
			assert.Equal(t, proto, api.Proto)
			got := assertStored(t, p, o, "/post")
			assert.Contains(t, got.Body, "version 1")
		}},
		{"Vary", func(t *testing.T, start func(http.HandlerFunc) (*instance, *testOrigin), proto string) {
			var version atomic.Int64
			p, o := start(editableOrigin(&version))
			p.get("/v", "X-Lang", "en")
			p.get("/v", "X-Lang", "fr")
			assert.Equal(t, int64(2), o.hits.Load())
			assert.Contains(t, assertStored(t, p, o, "/v", "X-Lang", "en").Body, " en ")
			assert.Contains(t, assertStored(t, p, o, "/v", "X-Lang", "fr").Body, " fr ")
		}},
		{"compression", func(t *testing.T, start func(http.HandlerFunc) (*instance, *testOrigin), proto string) {
			body := strings.Repeat("<p>compress me</p>\n", 300)
			p, o := start(page(body))
			gz := p.get("/big", "Accept-Encoding", "gzip")
			assert.Equal(t, "gzip", gz.Header.Get("Content-Encoding"))
			assert.Equal(t, body, gunzip(t, gz.Body))
			plain := assertStored(t, p, o, "/big")
			assert.Empty(t, plain.Header.Get("Content-Encoding"))
			assert.Equal(t, body, plain.Body)
			assert.Equal(t, proto, plain.Proto)
		}},
		{"refusals", func(t *testing.T, start func(http.HandlerFunc) (*instance, *testOrigin), proto string) {
			p, o := start(page("<p>page</p>"))
			assert.Equal(t, http.StatusBadRequest, p.request(http.MethodGet, "/a", strings.NewReader("body")).Status,
				"a GET with a body")
			assert.Equal(t, http.StatusBadRequest, p.request(http.MethodGet, "/a", io.MultiReader(strings.NewReader("body"))).Status,
				"a GET with a body of unknown length")
			assert.Equal(t, http.StatusBadRequest, p.get("/a%01b").Status, "an encoded control character")
			assert.Equal(t, http.StatusBadRequest, p.get("/a%7f").Status, "an encoded DEL")
			assert.Zero(t, o.hits.Load(), "nothing reached the origin")
		}},
	}
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			for _, promise := range promises {
				t.Run(promise.name, func(t *testing.T) {
					start := func(h http.HandlerFunc) (*instance, *testOrigin) {
						o := newTestOrigin(t, h)
						p, pair := startTLSProxy(t, o.URL, nil)
						if proto.alpn == "" {
							return p.on(t), o
						}
						return p.over(t, pair.pool, proto.alpn), o
					}
					promise.run(t, start, proto.proto)
				})
			}
		})
	}
}

// The TLS listener negotiates HTTP/2 or HTTP/1.1 by ALPN, refuses TLS
// older than 1.2, and answers a plain-HTTP request on its port with 400.
func TestTLSListenerNegotiatesProtocols(t *testing.T) {
	o := newTestOrigin(t, page("<p>p</p>"))
	p, pair := startTLSProxy(t, o.URL, nil)
	addr := strings.TrimPrefix(p.TLS, "https://")

	for _, tt := range []struct {
		offer []string
		want  string
	}{
		{[]string{"h2", "http/1.1"}, "h2"},
		{[]string{"http/1.1"}, "http/1.1"},
		{nil, ""},
	} {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pair.pool, ServerName: "localhost", NextProtos: tt.offer})
		require.NoError(t, err, "%v", tt.offer)
		assert.Equal(t, tt.want, c.ConnectionState().NegotiatedProtocol, "%v", tt.offer)
		c.Close()
	}
	_, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pair.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS11})
	assert.Error(t, err, "TLS 1.1 is refused")
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pair.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	require.NoError(t, err, "TLS 1.2 is spoken")
	c.Close()

	// HTTP/1.1 with no ALPN at all is served.
	c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: pair.pool, ServerName: "localhost"})
	require.NoError(t, err)
	fmt.Fprint(c, "GET /p HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	c.Close()

	// Plain HTTP on the TLS port.
	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer raw.Close()
	fmt.Fprint(raw, "GET /p HTTP/1.1\r\nHost: localhost\r\n\r\n")
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(raw), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// The scheme is part of the key: a page rendered for an https visitor is
// stored apart from the http one, and the origin learns which it is.
func TestHTTPSPagesAreStoredApart(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		page("<p>"+r.Header.Get("X-Forwarded-Proto")+"</p>")(w, r)
	})
	p, pair := startTLSProxy(t, o.URL, nil)
	s := p.over(t, pair.pool, "h2")
	host := []string{"Host", "www.example.com"}
	assert.Equal(t, "<p>http</p>", p.get("/page", host...).Body)
	assert.Equal(t, "<p>https</p>", s.get("/page", host...).Body)
	assert.Equal(t, "<p>http</p>", assertStored(t, p, o, "/page", host...).Body)
	assert.Equal(t, "<p>https</p>", assertStored(t, s, o, "/page", host...).Body)
	// One revalidation covers both.
	api := p.request(http.MethodPost, "/api/revalidate?path=/page", nil, "Authorization", "Bearer "+apiSecret, host[0], host[1])
	require.Equal(t, http.StatusOK, api.Status, api.Body)
	assert.Equal(t, int64(4), o.hits.Load())
}

// HTTPS_REDIRECT: plain page requests get 308 to the same URL on https;
// the revalidate API is served on plain HTTP, and a request that a trusted
// proxy says was https is served, not redirected. Only https pages are
// stored.
func TestPlainPageRequestsAreRedirectedToHTTPS(t *testing.T) {
	o := newTestOrigin(t, page("<p>page</p>"))
	p, pair := startTLSProxy(t, o.URL, map[string]string{"HTTPS_REDIRECT": "", "TRUSTED_PROXIES": "127.0.0.1/32"})
	_, tlsPort, _ := net.SplitHostPort(strings.TrimPrefix(p.TLS, "https://"))

	for _, tt := range []struct{ host, target, want string }{
		{"www.example.com", "/a/b%2Fc?x=1&y&utm_source=z", "https://www.example.com:" + tlsPort + "/a/b%2Fc?x=1&y&utm_source=z"},
		{"Www.Example.com:8080", "/", "https://Www.Example.com:" + tlsPort + "/"},
		{"[::1]:8080", "/p?", "https://[::1]:" + tlsPort + "/p?"},
	} {
		req, err := http.NewRequest(http.MethodGet, p.URL, nil)
		require.NoError(t, err)
		req.Host = tt.host
		req.URL.Opaque = tt.target // sent exactly as written
		got := p.do(req)
		assert.Equal(t, http.StatusPermanentRedirect, got.Status, tt.target)
		assert.Equal(t, tt.want, got.Header.Get("Location"), tt.target)
	}
	head := p.request(http.MethodHead, "/page", nil)
	assert.Equal(t, http.StatusPermanentRedirect, head.Status)
	post := p.request(http.MethodPost, "/form", strings.NewReader("a=1"))
	assert.Equal(t, http.StatusPermanentRedirect, post.Status, "308 keeps the method and body")
	assert.Zero(t, o.hits.Load(), "no http page reached the origin")

	host := []string{"Host", "www.example.com"}
	api := p.request(http.MethodPost, "/api/revalidate?path=/page", nil, "Authorization", "Bearer "+apiSecret, host[0], host[1])
	assert.Equal(t, http.StatusOK, api.Status, "the API is served on plain HTTP: %s", api.Body)
	assert.Equal(t, int64(1), o.hits.Load(), "a page not stored is fetched")
	s := p.over(t, pair.pool, "h2")
	assert.Equal(t, "HIT", s.get("/page", host...).Header.Get("X-Cache"), "... as the https page")

	// Behind a balancer that terminated TLS: served, and the https page.
	got := p.get("/page", "X-Forwarded-Proto", "https", host[0], host[1])
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
	got = p.get("/other", "X-Forwarded-Proto", "https", host[0], host[1])
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	assert.Equal(t, "HIT", s.get("/other", host...).Header.Get("X-Cache"))
	assert.Equal(t, int64(2), o.hits.Load())
}

// Smuggling over TLS: the HTTP/1.1-over-TLS path refuses what the plain
// path refuses, and nothing of it reaches the origin.
func TestSmugglingOverTLSIsRefused(t *testing.T) {
	const h = "Host: www.example.com\r\n"
	sl := fmt.Sprint(len(smuggled))
	whole := fmt.Sprint(len("0\r\n\r\n" + smuggled))
	cases := []smuggleCase{
		{"GET CL+TE", "GET /a HTTP/1.1\r\n" + h + "Content-Length: " + whole + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"duplicate Content-Length", "POST /a HTTP/1.1\r\n" + h + "Content-Length: 5\r\nContent-Length: " + sl + "\r\n\r\nhello" + smuggled},
		{"TE identity, chunked", "POST /a HTTP/1.1\r\n" + h + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"bare LF", strings.ReplaceAll("GET /a HTTP/1.1\r\n"+h+"\r\n", "\r\n", "\n")},
		{"fat GET", "GET /a HTTP/1.1\r\n" + h + "Content-Length: " + sl + "\r\n\r\n" + smuggled},
		{"Connection: Host", "GET /a HTTP/1.1\r\n" + h + "Connection: close, Host\r\n\r\n"},
		{"Upgrade: h2c", "GET /a HTTP/1.1\r\n" + h + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"},
		{"h2 preface over http/1.1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + smuggled},
		{"NUL in request target", "GET /a\x00b HTTP/1.1\r\n" + h + "\r\n"},
	}
	for i, r := range runSmuggleCasesOver(t, cases, true) {
		name := cases[i].name
		assert.True(t, refused(r.first), "%s: answered %d %q, want a 4xx", name, r.first.Status, r.first.Body)
		assert.Zero(t, r.extra, "%s: a smuggled request was answered", name)
		assert.Empty(t, r.origin, "%s reached the origin", name)
	}
}

// TestCertificateFilesAreReloaded: new files are picked up when they
// change, and on SIGHUP, without a restart; open connections keep
// working; a pair that does not load leaves the one in use, logged and
// counted.
func TestCertificateFilesAreReloaded(t *testing.T) {
	o := newTestOrigin(t, page("<p>p</p>"))
	p, first := startTLSProxy(t, o.URL, nil)
	addr := strings.TrimPrefix(p.TLS, "https://")
	serial := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	require.Equal(t, first.serial, serial())

	// Connections opened before the swap, over each protocol.
	h1 := p.over(t, first.pool, "http/1.1")
	h2 := p.over(t, first.pool, "h2")
	assert.Equal(t, http.StatusOK, h1.get("/p").Status)
	assert.Equal(t, http.StatusOK, h2.get("/p").Status)

	second := writePair(t, t.TempDir(), "new")
	replace(t, second, first)
	require.Eventually(t, func() bool { return serial() == second.serial }, 15*time.Second, 50*time.Millisecond,
		"the next handshake shows the new certificate")
	assert.Contains(t, p.logs.String(), "TLS certificate reloaded")
	// The old connections are still open and keep working (a new one
	// would fail: the clients trust the first certificate only).
	for _, c := range []*instance{h1, h2} {
		got := c.get("/p")
		assert.Equal(t, http.StatusOK, got.Status)
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
	}

	// A broken pair: a key that does not match.
	third := writePair(t, t.TempDir(), "third")
	require.NoError(t, os.WriteFile(first.keyFile, mustRead(t, third.keyFile), 0o600))
	require.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, `isrproxy_certificate_errors_total{source="files"}`)
		return err == nil && v >= 1
	}, 15*time.Second, 50*time.Millisecond, "the failed reload is counted")
	assert.Contains(t, p.logs.String(), "TLS certificate not reloaded")
	assert.Equal(t, second.serial, serial(), "the pair in use is kept")
}

// replace copies the pair from into the files of to, each by a rename, as
// certbot or a deploy would.
func replace(t *testing.T, from, to testPair) {
	t.Helper()
	for src, dst := range map[string]string{from.certFile: to.certFile, from.keyFile: to.keyFile} {
		tmp := dst + ".tmp"
		require.NoError(t, os.WriteFile(tmp, mustRead(t, src), 0o600))
		require.NoError(t, os.Rename(tmp, dst))
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

// SIGHUP re-reads the certificate files, in a process of its own.
func TestSIGHUPReloadsCertificateFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	o := newTestOrigin(t, page("<p>p</p>"))
	first := writePair(t, t.TempDir(), "site")
	c := startExitChild(t, map[string]string{
		"ORIGIN_URL":        o.URL,
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"TLS_ADDR":          "127.0.0.1:0",
		"TLS_CERT_FILE":     first.certFile,
		"TLS_KEY_FILE":      first.keyFile,
		"LOG_FORMAT":        "json",
	})
	serving := c.waitLog(t, "isrproxy serving")
	addr, _ := serving["tls"].(string)
	require.NotEmpty(t, addr)
	second := writePair(t, t.TempDir(), "new")
	// The files change but keep their times, so only the signal tells.
	fi, err := os.Stat(first.certFile)
	require.NoError(t, err)
	replace(t, second, first)
	for _, f := range []string{first.certFile, first.keyFile} {
		require.NoError(t, os.Chtimes(f, fi.ModTime(), fi.ModTime()))
	}
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGHUP))
	line := c.waitLog(t, "TLS certificate reloaded")
	assert.Equal(t, "SIGHUP", line["why"])
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: second.pool, ServerName: "localhost"})
	require.NoError(t, err, "the new certificate is served")
	conn.Close()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, c.exitCode(t))
}

// Certificate files that cannot be used are configuration errors: exit 2,
// one line per problem, each naming its variable.
func TestBadCertificateFilesExitTwo(t *testing.T) {
	dir := t.TempDir()
	good := writePair(t, dir, "good")
	other := writePair(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not PEM\n"), 0o600))
	missing := filepath.Join(dir, "missing.pem")
	for _, tt := range []struct {
		name       string
		cert, key  string
		wantPrefix []string
	}{
		{"a missing certificate", missing, good.keyFile, []string{"isrproxy: config: TLS_CERT_FILE: cannot read"}},
		{"a missing key", good.certFile, missing, []string{"isrproxy: config: TLS_KEY_FILE: cannot read"}},
		{"both missing", missing, missing + "2", []string{"isrproxy: config: TLS_CERT_FILE:", "isrproxy: config: TLS_KEY_FILE:"}},
		{"no certificate in the file", garbage, good.keyFile, []string{"isrproxy: config: TLS_CERT_FILE: " + fmt.Sprintf("%q", garbage) + " holds no PEM certificate"}},
		{"no key in the file", good.certFile, garbage, []string{"isrproxy: config: TLS_KEY_FILE:"}},
		{"a key that does not match", good.certFile, other.keyFile, []string{"isrproxy: config: TLS_KEY_FILE: the key in"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := exitValidEnviron()
			env["TLS_ADDR"] = "127.0.0.1:0"
			env["TLS_CERT_FILE"], env["TLS_KEY_FILE"] = tt.cert, tt.key
			code, _, stderr := exitCLI(t, env)
			assert.Equal(t, 2, code)
			lines := exitLines(stderr)
			require.Len(t, lines, len(tt.wantPrefix), stderr)
			for i, want := range tt.wantPrefix {
				assert.True(t, strings.HasPrefix(lines[i], want), "%q does not start with %q", lines[i], want)
			}
		})
	}
	env := exitValidEnviron()
	env["TLS_ADDR"] = "127.0.0.1:0"
	env["TLS_CERT_FILE"], env["TLS_KEY_FILE"] = good.certFile, good.keyFile
	code, _, stderr := exitCLI(t, env)
	assert.Equal(t, 0, code, stderr)
}

// h2Exchange sends one HTTP/2 request made of the given header fields
// (pseudo-headers first) and, if body is not nil, one DATA frame, on a
// fresh connection to addr; it returns the answer's :status, or 0 and
// the error code when the server reset the stream or the connection.
func h2Exchange(t *testing.T, addr string, pool *x509.CertPool, fields [][2]string, body []byte) (status int, reset string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, "h2", c.ConnectionState().NegotiatedProtocol)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(c, http2.ClientPreface)
	require.NoError(t, err)
	fr := http2.NewFramer(c, c)
	require.NoError(t, fr.WriteSettings())
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		require.NoError(t, enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}))
	}
	require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(),
		EndHeaders: true, EndStream: body == nil}))
	if body != nil {
		require.NoError(t, fr.WriteData(1, true, body))
	}
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return 0, err.Error()
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			return 0, f.ErrCode.String()
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				return 0, f.ErrCode.String()
			}
		case *http2.HeadersFrame:
			hf, err := dec.DecodeFull(f.HeaderBlockFragment())
			require.NoError(t, err)
			for _, h := range hf {
				if h.Name == ":status" {
					n, _ := strconv.Atoi(h.Value)
					return n, ""
				}
			}
		}
	}
}

// HTTP/2 requests whose fields would be refused over HTTP/1.1 are refused
// (400 from isrproxy, or a stream reset by Go's HTTP/2 server, which
// forbids connection-specific fields), and none reaches the origin.
func TestHTTP2RefusesWhatHTTP1Refuses(t *testing.T) {
	o := newTestOrigin(t, page("<p>p</p>"))
	p, pair := startTLSProxy(t, o.URL, nil)
	addr := strings.TrimPrefix(p.TLS, "https://")
	get := func(path string, extra ...[2]string) [][2]string {
		return append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "www.example.com"}, {":path", path}}, extra...)
	}
	status, reset := h2Exchange(t, addr, pair.pool, get("/ok"), nil)
	require.Equal(t, http.StatusOK, status, reset)
	require.Equal(t, int64(1), o.hits.Load())

	for _, tt := range []struct {
		name   string
		fields [][2]string
		body   []byte
	}{
		{"a GET with a body", get("/a"), []byte("smuggled")},
		{"a GET with a body and its length", get("/a", [2]string{"content-length", "8"}), []byte("smuggled")},
		{"Connection naming Host", get("/a", [2]string{"connection", "host"}), nil},
		{"Connection naming Cookie", get("/a", [2]string{"cookie", "a=1"}, [2]string{"connection", "cookie"}), nil},
		{"Transfer-Encoding", get("/a", [2]string{"transfer-encoding", "chunked"}), []byte("0\r\n\r\n")},
		{"Upgrade: h2c", get("/a", [2]string{"upgrade", "h2c"}), nil},
		{"an encoded control character in the path", get("/a%0ab"), nil},
		{"an encoded NUL in the path", get("/a%00b"), nil},
		{"a raw control character in the path", get("/a\x01b"), nil},
		{"a raw DEL in the path", get("/a\x7fb"), nil},
	} {
		status, reset := h2Exchange(t, addr, pair.pool, tt.fields, tt.body)
		assert.True(t, status == http.StatusBadRequest || reset != "", "%s: answered %d", tt.name, status)
	}
	assert.Equal(t, int64(1), o.hits.Load(), "no refused request reached the origin")
}
