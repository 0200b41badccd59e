package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/isrproxy/isrproxy/certs"
	"github.com/isrproxy/isrproxy/config"
	"github.com/isrproxy/isrproxy/demo"
)

// usage is what "isrproxy help" prints.
const usage = `Usage: isrproxy [command]

Commands:
  serve        serve, configured by the environment (the default)
  demo         serve in front of a built-in slow sample site, on loopback
  healthcheck  exit 0 when the admin listener answers /healthz
  revalidate   call the revalidate API of ISRPROXY_URL: isrproxy revalidate -h
  version      print the version
  help         print this help

Configuration is read from environment variables: ORIGIN_URL and
REVALIDATE_SECRET are required; see README.md for the others.
`

// version names the build: the module version and, when the binary was
// built from a checkout, its commit.
func version() string {
	v, rev, dirty := "(devel)", "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "isrproxy " + v
	if rev != "" {
		out += " " + rev[:min(12, len(rev))]
		if dirty {
			out += "+dirty"
		}
	}
	return out + " " + runtime.Version()
}

// runDemo serves isrproxy in front of the built-in sample site, on loopback
// unless the environment says otherwise, over HTTP and, with a
// self-signed certificate made at start, over HTTPS and HTTP/2.
func runDemo(ctx context.Context, environ map[string]string, stdout io.Writer) error {
	site := httptest.NewServer(&demo.Site{Delay: 300 * time.Millisecond})
	defer site.Close()
	env := map[string]string{
		"ORIGIN_URL":        site.URL,
		"REVALIDATE_SECRET": "demo-secret-change-me",
		"LISTEN_ADDR":       "127.0.0.1:8080",
		"ADMIN_ADDR":        "127.0.0.1:9090",
		"TLS_ADDR":          "127.0.0.1:8443",
		"HTTPS_REDIRECT":    "off", // the demo's plain-HTTP steps keep working
		"LOG_FORMAT":        "text",
	}
	if environ["TLS_CERT_FILE"] == "" && environ["ACME_DOMAINS"] == "" {
		dir, err := os.MkdirTemp("", "isrproxy-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		certPEM, keyPEM, err := certs.SelfSigned([]string{"localhost", "127.0.0.1", "::1"}, 30*24*time.Hour)
		if err != nil {
			return err
		}
		env["TLS_CERT_FILE"], env["TLS_KEY_FILE"] = filepath.Join(dir, "demo.crt"), filepath.Join(dir, "demo.key")
		if err := os.WriteFile(env["TLS_CERT_FILE"], certPEM, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(env["TLS_KEY_FILE"], keyPEM, 0o600); err != nil {
			return err
		}
	}
	for k, v := range environ {
		if k != "ORIGIN_URL" { // the demo's origin is the sample site
			env[k] = v
		}
	}
	return run(ctx, env, stdout, func(l Listeners) {
		secret := env["REVALIDATE_SECRET"]
		if _, own := environ["REVALIDATE_SECRET"]; own {
			secret = "$REVALIDATE_SECRET"
		}
		// The editor saves on the CMS itself, never through isrproxy: what
		// the demo shows is the webhook swapping the new page in.
		fmt.Fprintf(stdout, `
isrproxy demo: a slow sample site (300 ms a page) on %[4]s
behind isrproxy on http://%[1]s
Try, in another terminal:

  curl -s -o /dev/null -w '%%{time_total}s\n' -D - http://%[1]s/events/42   # X-Cache: MISS, ~0.3 s
  curl -s -o /dev/null -w '%%{time_total}s\n' -D - http://%[1]s/events/42   # X-Cache: HIT, ~0.001 s
  curl -s -X POST %[4]s/events/42 >/dev/null                    # the editor saves on the CMS (version 2)
  curl -s http://%[1]s/events/42 | grep version                              # still version 1, from memory
  curl -s 'http://%[1]s/api/revalidate?secret=%[2]s&path=/events/42'        # the CMS's webhook: "outcome":"replaced"
  curl -s http://%[1]s/events/42 | grep version                              # version 2, from memory
  curl -s http://%[3]s/metrics | grep isrproxy_requests                      # the counters
  curl -k --http2 -s -o /dev/null -D - https://%[5]s/events/42        # HTTP/2 over TLS (self-signed: -k); the https page is stored apart

Ctrl-C stops it.
`, l.Public, secret, l.Admin, site.URL, l.TLS)
	})
}

// healthcheck asks the admin listener for /healthz: the Docker HEALTHCHECK,
// which needs no shell or curl in the image.
func healthcheck(environ map[string]string) error {
	addr := environ["ADMIN_ADDR"]
	if addr == "" {
		addr = config.DefaultAdminAddr
	}
	if addr == "off" {
		return errors.New("healthcheck: ADMIN_ADDR is off")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: ADMIN_ADDR: %w", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /healthz answered %d", resp.StatusCode)
	}
	return nil
}
