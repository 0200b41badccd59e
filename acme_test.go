// Certificates over ACME, end to end against Let's Encrypt's test CA,
// pebble, on loopback: pebble and its DNS server (pebble-challtestsrv,
// which maps the test names to 127.0.0.1) are built from their Go module
// at the version pinned here, and pebble validates the challenges on the
// ports isrproxy listens on, without skipping validation.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/certs"
)

// pebbleModule is the pebble release the tests build; its test
// certificates (the CA's own HTTPS) come from the same version.
const pebbleModule = "github.com/letsencrypt/pebble/v2@v2.10.3"

var pebbleBuild struct {
	once           sync.Once
	bin, moduleDir string
	err            error
}

// buildPebble builds pebble and pebble-challtestsrv once per test binary,
// into a directory of the system's temp dir kept for later runs.
func buildPebble(t *testing.T) (bin, moduleDir string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds pebble")
	}
	b := &pebbleBuild
	b.once.Do(func() {
		version := pebbleModule[strings.LastIndex(pebbleModule, "@")+1:]
		b.bin = filepath.Join(os.TempDir(), "isrproxy-test-pebble-"+version)
		run := func(args ...string) ([]byte, error) {
			cmd := exec.Command("go", args...)
			cmd.Dir = os.TempDir() // outside this module
			cmd.Env = append(os.Environ(), "GOBIN="+b.bin, "GOFLAGS=", "CGO_ENABLED=0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			return out, err
		}
		var out []byte
		if out, b.err = run("mod", "download", "-json", pebbleModule); b.err != nil {
			return
		}
		var mod struct{ Dir string }
		if b.err = json.Unmarshal(out, &mod); b.err != nil {
			return
		}
		b.moduleDir = mod.Dir
		pkg, _, _ := strings.Cut(pebbleModule, "@")
		_, b.err = run("install", pkg+"/cmd/pebble@"+version, pkg+"/cmd/pebble-challtestsrv@"+version)
	})
	require.NoError(t, b.err, "building pebble from the module proxy")
	return b.bin, b.moduleDir
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startCommand starts a program, its output kept for failures, and stops
// it by its PID when the test ends (or earlier, by the returned stop).
func startCommand(t *testing.T, env []string, name string, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	return stop
}

// waitDial waits until addr accepts connections.
func waitDial(t *testing.T, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "%s does not listen", addr)
}

// testCA is pebble and its DNS server, for one test.
type testCA struct {
	t          *testing.T
	bin        string
	moduleDir  string
	configFile string
	dnsAddr    string
	acmePort   int
	mgmtPort   int
	stopPebble func()
}

// newTestCA starts the DNS server, naming domain 127.0.0.1, and prepares
// pebble to validate challenges on httpPort and tlsPort; start runs it.
func newTestCA(t *testing.T, domain string, httpPort, tlsPort int) *testCA {
	t.Helper()
	bin, moduleDir := buildPebble(t)
	ca := &testCA{t: t, bin: bin, moduleDir: moduleDir, acmePort: freePort(t), mgmtPort: freePort(t)}
	dnsPort, dnsMgmt := freePort(t), freePort(t)
	ca.dnsAddr = fmt.Sprintf("127.0.0.1:%d", dnsPort)
	// DNS only: its own challenge servers would take the ports the
	// challenges must reach isrproxy on.
	startCommand(t, nil, filepath.Join(bin, "pebble-challtestsrv"),
		"-dnsserver", ca.dnsAddr, "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmt),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	waitDial(t, fmt.Sprintf("127.0.0.1:%d", dnsMgmt))
	body, _ := json.Marshal(map[string]any{"host": domain, "addresses": []string{"127.0.0.1"}})
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/add-a", dnsMgmt), "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	config, _ := json.MarshalIndent(map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", ca.acmePort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", ca.mgmtPort),
		"certificate":                    filepath.Join(moduleDir, "test/certs/localhost/cert.pem"),
		"privateKey":                     filepath.Join(moduleDir, "test/certs/localhost/key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles":                       map[string]any{"default": map[string]any{"description": "test", "validityPeriod": 7776000}},
	}}, "", "  ")
	ca.configFile = filepath.Join(t.TempDir(), "pebble-config.json")
	require.NoError(t, os.WriteFile(ca.configFile, config, 0o600))
	return ca
}

// root is the PEM file that pebble's own HTTPS chains to.
func (ca *testCA) root() string { return filepath.Join(ca.moduleDir, "test/certs/pebble.minica.pem") }

// directory is the ACME directory URL, on a name pebble's certificate holds.
func (ca *testCA) directory() string { return fmt.Sprintf("https://localhost:%d/dir", ca.acmePort) }

// start runs pebble and waits until it listens.
func (ca *testCA) start() {
	ca.t.Helper()
	ca.stopPebble = startCommand(ca.t,
		[]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"},
		filepath.Join(ca.bin, "pebble"), "-config", ca.configFile, "-dnsserver", ca.dnsAddr, "-strict")
	waitDial(ca.t, fmt.Sprintf("127.0.0.1:%d", ca.acmePort))
	waitDial(ca.t, fmt.Sprintf("127.0.0.1:%d", ca.mgmtPort))
}

func (ca *testCA) stop() { ca.stopPebble() }

// issuerPool trusts the root pebble issues under (made anew at each start).
func (ca *testCA) issuerPool() *x509.CertPool {
	ca.t.Helper()
	rootPEM, err := os.ReadFile(ca.root())
	require.NoError(ca.t, err)
	minica := x509.NewCertPool()
	minica.AppendCertsFromPEM(rootPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: minica}}, Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("https://localhost:%d/roots/0", ca.mgmtPort))
	require.NoError(ca.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(ca.t, err)
	pool := x509.NewCertPool()
	require.True(ca.t, pool.AppendCertsFromPEM(b), "pebble's issuing root")
	return pool
}

// withACMEOverrides sets the test's ACME adjustments for the run() calls
// it makes; the tests that use it do not run in parallel.
func withACMEOverrides(t *testing.T, f func(*certs.ACMEOptions)) {
	acmeOverrides = f
	t.Cleanup(func() { acmeOverrides = nil })
}

// acmeEnv is isrproxy's environment for ACME with ca, on fixed ports.
func acmeEnv(ca *testCA, domain string, httpPort, tlsPort int, storage string) map[string]string {
	return map[string]string{
		"LISTEN_ADDR":      fmt.Sprintf("127.0.0.1:%d", httpPort),
		"TLS_ADDR":         fmt.Sprintf("127.0.0.1:%d", tlsPort),
		"ACME_DOMAINS":     domain,
		"ACME_EMAIL":       "ops@example.com",
		"ACME_CA":          ca.directory(),
		"ACME_CA_ROOT":     ca.root(),
		"ACME_STORAGE":     storage,
		"LOG_LEVEL":        "info",
		"SHUTDOWN_TIMEOUT": "5s",
	}
}

// handshake connects to addr for domain, verifying the chain with pool.
func handshake(addr, domain string, pool *x509.CertPool) (*x509.Certificate, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: domain, RootCAs: pool})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// domainClient reaches addr for domain over HTTP/2, trusting pool.
func domainClient(addr, domain string, pool *x509.CertPool) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr) // the name resolves to isrproxy
		},
	}}
}

// TestACMECertificatesByEachChallenge obtains a certificate from pebble
// by HTTP-01 only (on the plain listener, with HTTPS_REDIRECT on), then by
// TLS-ALPN-01 only (on the TLS listener), serves pages with it over
// HTTP/2, and after a restart serves it again from ACME_STORAGE with the
// CA stopped.
func TestACMECertificatesByEachChallenge(t *testing.T) {
	for _, tt := range []struct {
		name    string
		disable func(*certs.ACMEOptions)
	}{
		{"HTTP-01", func(o *certs.ACMEOptions) { o.DisableTLSALPNChallenge = true }},
		{"TLS-ALPN-01", func(o *certs.ACMEOptions) { o.DisableHTTPChallenge = true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const domain = "site.test"
			withACMEOverrides(t, func(o *certs.ACMEOptions) { o.RetryAfter = 500 * time.Millisecond; tt.disable(o) })
			httpPort, tlsPort := freePort(t), freePort(t)
			ca := newTestCA(t, domain, httpPort, tlsPort)
			ca.start()
			o := newTestOrigin(t, page("<p>over https</p>"))
			storage := t.TempDir()
			env := acmeEnv(ca, domain, httpPort, tlsPort, storage)
			p := startProxy(t, o.URL, env)
			addr := strings.TrimPrefix(p.TLS, "https://")

			pool := ca.issuerPool()
			var leaf *x509.Certificate
			require.Eventually(t, func() bool {
				var err error
				leaf, err = handshake(addr, domain, pool)
				return err == nil
			}, 60*time.Second, 100*time.Millisecond, "a certificate from the CA:\n%s", p.logs.String())
			assert.Equal(t, []string{domain}, leaf.DNSNames)

			c := domainClient(addr, domain, pool)
			for _, want := range []string{"MISS", "HIT"} {
				resp, err := c.Get("https://" + domain + "/page")
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, 2, resp.ProtoMajor)
				assert.Equal(t, "<p>over https</p>", string(body))
				assert.Equal(t, want, resp.Header.Get("X-Cache"))
			}
			c.CloseIdleConnections()
			// The plain listener redirects pages, and answered the
			// HTTP-01 challenge all the same.
			redirect := p.get("/page", "Host", domain)
			assert.Equal(t, http.StatusPermanentRedirect, redirect.Status)

			// A restart with the CA gone: the certificate comes from storage.
			require.NoError(t, p.stop())
			ca.stop()
			p2 := startProxy(t, o.URL, env)
			again, err := handshake(strings.TrimPrefix(p2.TLS, "https://"), domain, pool)
			require.NoError(t, err, "served from ACME_STORAGE:\n%s", p2.logs.String())
			assert.Equal(t, leaf.SerialNumber, again.SerialNumber, "the same certificate, not a new one")
			assert.Zero(t, metric(t, p2, `isrproxy_certificate_errors_total{source="acme"}`))
		})
	}
}

// TestACMEUnavailableCAKeepsServing: with the CA down at start, the plain
// listener and stored pages keep serving; the failure is logged, counted
// and retried, and once the CA is up the certificate arrives without a
// restart.
func TestACMEUnavailableCAKeepsServing(t *testing.T) {
	const domain = "down.test"
	withACMEOverrides(t, func(o *certs.ACMEOptions) { o.RetryAfter = 300 * time.Millisecond })
	httpPort, tlsPort := freePort(t), freePort(t)
	ca := newTestCA(t, domain, httpPort, tlsPort)
	o := newTestOrigin(t, page("<p>plain</p>"))
	env := acmeEnv(ca, domain, httpPort, tlsPort, t.TempDir())
	env["HTTPS_REDIRECT"] = "off"
	p := startProxy(t, o.URL, env)
	assert.Equal(t, "MISS", p.get("/page").Header.Get("X-Cache"))

	require.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, `isrproxy_certificate_errors_total{source="acme"}`)
		return err == nil && v >= 2
	}, 30*time.Second, 50*time.Millisecond, "failures counted, and retried")
	assert.Contains(t, p.logs.String(), "TLS certificate not obtained")
	got := p.get("/page")
	assert.Equal(t, "HIT", got.Header.Get("X-Cache"), "stored pages keep serving")
	assert.Equal(t, int64(1), o.hits.Load())
	_, err := handshake(strings.TrimPrefix(p.TLS, "https://"), domain, x509.NewCertPool())
	assert.Error(t, err, "no certificate yet")

	ca.start()
	pool := ca.issuerPool()
	require.Eventually(t, func() bool {
		_, err := handshake(strings.TrimPrefix(p.TLS, "https://"), domain, pool)
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "the certificate, without a restart:\n%s", p.logs.String())
	assert.Equal(t, "HIT", p.get("/page").Header.Get("X-Cache"))
}
