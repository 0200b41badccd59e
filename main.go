// Command isrproxy is a caching reverse proxy with on-demand revalidation:
// Next.js's "On-demand ISR" for any origin. It answers every stored page from
// memory and refetches exactly the pages a CMS names on /api/revalidate.
//
// Usage:
//
//	isrproxy              serve, configured by the environment (see README.md)
//	isrproxy demo         serve in front of a built-in slow sample site
//	isrproxy healthcheck  exit 0 when the admin listener answers /healthz
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/coalesce"
	"github.com/isrproxy/isrproxy/config"
	"github.com/isrproxy/isrproxy/demo"
	"github.com/isrproxy/isrproxy/framing"
	"github.com/isrproxy/isrproxy/proxy"
	"github.com/isrproxy/isrproxy/purge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], environMap(os.Environ()), os.Stdout, os.Stderr))
}

// cli runs a subcommand and returns the process's exit code: 2 for bad
// configuration or usage, 1 for any other failure.
func cli(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	var err error
	switch cmd {
	case "", "serve":
		err = run(ctx, environ, stdout, nil)
	case "demo":
		err = runDemo(ctx, environ, stdout)
	case "healthcheck":
		err = healthcheck(environ)
	default:
		fmt.Fprintf(stderr, "isrproxy: unknown command %q (want serve, demo or healthcheck)\n", cmd)
		return 2
	}
	var cfgErr *config.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &cfgErr):
		for _, p := range cfgErr.Problems {
			fmt.Fprintf(stderr, "isrproxy: config: %s\n", p)
		}
		return 2
	default:
		fmt.Fprintf(stderr, "isrproxy: %v\n", err)
		return 1
	}
}

// Listeners are the addresses run serves on, once both listen.
type Listeners struct {
	Public string
	Admin  string // "" when ADMIN_ADDR is off
}

// run serves until ctx ends, then shuts down gracefully. ready, if not nil,
// learns the listening addresses.
func run(ctx context.Context, environ map[string]string, stdout io.Writer, ready func(Listeners)) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	if _, set := environ["GOMEMLIMIT"]; !set {
		// The heap is kept near the page budget plus headroom, so the
		// process stays within a container memory limit sized for the budget.
		debug.SetMemoryLimit(int64(cfg.CacheMaxBytes) + 96<<20)
	}
	if _, set := environ["GOGC"]; !set {
		go tuneGC(ctx) // a fixed headroom above the stored pages
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var store *cache.Store
	metrics := proxy.NewMetrics(reg, func() (int, int64) { return store.Stats() })
	// A sixteenth of the budget (at most 64 MiB) keeps decompressed copies of
	// pages that clients without gzip ask for again and again; the pages
	// themselves get the rest, so the two together stay within the budget.
	decompressed := min(int64(cfg.CacheMaxBytes)/16, 64<<20)
	store, err = cache.New(metrics.StoreHooks(cache.Config{MaxBytes: int64(cfg.CacheMaxBytes) - decompressed}))
	if err != nil {
		return err
	}
	defer store.Close()

	pages, err := proxy.New(proxy.Options{
		Origin:                cfg.OriginURL.URL(),
		OriginHost:            cfg.OriginHost,
		Store:                 store,
		OriginTimeout:         time.Duration(cfg.OriginTimeout),
		MaxObjectBytes:        int64(cfg.MaxObjectBytes),
		CacheStatuses:         cfg.CacheStatuses,
		CompressTypes:         cfg.CompressTypes,
		BypassCookies:         cache.NewMatcher(cfg.BypassCookies),
		IgnoreParams:          cache.NewMatcher(cfg.IgnoreQueryParams),
		AllowedHosts:          cfg.AllowedHosts,
		RevalidateAfter:       time.Duration(cfg.RevalidateAfter),
		NegativeTTL:           time.Duration(cfg.NegativeTTL),
		PassTTL:               time.Duration(cfg.PassTTL),
		OriginMaxConcurrency:  cfg.OriginMaxConcurrency,
		RevalidateConcurrency: cfg.RevalidateConcurrency,
		DecompressedBytes:     decompressed,
		Logger:                log,
		Metrics:               metrics,
	})
	if err != nil {
		return err
	}
	defer pages.Close()
	api := purge.New(purge.Options{
		Secret:       string(cfg.RevalidateSecret),
		Path:         cfg.RevalidatePath,
		AllowedHosts: cfg.AllowedHosts,
		Ignore:       cache.NewMatcher(cfg.IgnoreQueryParams),
		Revalidator:  pages,
		Index:        store,
		Logger:       log,
		OnResult:     metrics.Revalidated,
	})
	defer api.Close()

	var active atomic.Int64 // requests in flight on the public listener
	public := newServer(counted(&active, proxy.AccessLog(framing.CloseUnframed(route(cfg.RevalidatePath, api, pages)), log)), log)
	public.DisableGeneralOptionsHandler = true // "OPTIONS *" too must reach CloseUnframed
	publicLn, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR: %w", err)
	}
	// Request heads are checked strictly before net/http's lenient parser
	// reads them: no request can hide inside another (smuggling).
	publicLn = framing.Listen(publicLn)
	// A stored page's answer leaves in one write, not two (see coalesce).
	publicLn = coalesce.Listen(publicLn)
	public.ConnContext = coalesce.ConnContext
	var admin *http.Server
	var adminLn net.Listener
	var draining atomic.Bool // set at SIGTERM: /healthz tells load balancers to look elsewhere
	if cfg.AdminAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			if draining.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "draining\n")
				return
			}
			io.WriteString(w, "ok\n")
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		admin = newServer(mux, log)
		if adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			publicLn.Close()
			return fmt.Errorf("ADMIN_ADDR: %w", err)
		}
	}

	errc := make(chan error, 2)
	go func() { errc <- serve(public, publicLn) }()
	addrs := Listeners{Public: publicLn.Addr().String()}
	if admin != nil {
		go func() { errc <- serve(admin, adminLn) }()
		addrs.Admin = adminLn.Addr().String()
	}
	log.Info("isrproxy serving", "listen", addrs.Public, "admin", addrs.Admin, "origin", cfg.OriginURL.String())
	if ready != nil {
		ready(addrs)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	}
	draining.Store(true)
	log.Info("shutting down", "timeout", time.Duration(cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	if err := shutdown(sctx, public, &active); err != nil {
		// SHUTDOWN_TIMEOUT is spent: the requests still running (a client
		// reading at a byte a second) are cut off, and the stop is still
		// a clean one.
		log.Warn("shutdown timeout: closing remaining connections", "err", err)
		public.Close()
	}
	if admin != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		defer acancel()
		if admin.Shutdown(actx) != nil {
			admin.Close()
		}
	}
	return nil
}

// shutdown stops s gracefully: no new connections, in-flight requests
// finish. http.Server.Shutdown alone waits up to 5 s for connections that
// never sent a request (browsers open them ahead of time); once no request
// is in flight, those are closed at once.
func shutdown(ctx context.Context, s *http.Server, active *atomic.Int64) error {
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if active.Load() == 0 {
				s.Close()
			}
		}
	}
}

// counted counts the requests in flight through h.
func counted(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		defer n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// route sends the revalidate API (its path and everything under it, in any
// spelling that cleans to it) to api and every other request to pages, as
// they are. A ServeMux is not used: it would clean and redirect page paths
// that the origin must receive as they are.
func route(apiPath string, api, pages http.Handler) http.Handler {
	isAPI := func(p string) bool { return p == apiPath || strings.HasPrefix(p, apiPath+"/") }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == apiPath {
			api.ServeHTTP(w, r)
			return
		}
		// A CMS with a trailing slash in its base URL calls
		// //api/revalidate: as nginx (merge_slashes, dot segments) would,
		// that is the API, never a page request that carries the secret
		// to the origin and answers 200 without revalidating anything.
		clean := path.Clean(r.URL.Path)
		if !isAPI(clean) {
			pages.ServeHTTP(w, r)
			return
		}
		if clean != r.URL.Path {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = clean, ""
			r2.URL = &u
			r = &r2
		}
		api.ServeHTTP(w, r)
	})
}

// newServer builds a server with timeouts against slow clients.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    framing.MaxHeaderBytes, // framing's limit follows it
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	w = newRedactingWriter(w, string(cfg.RevalidateSecret))
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runDemo serves isrproxy in front of the built-in sample site, on loopback
// unless the environment says otherwise.
func runDemo(ctx context.Context, environ map[string]string, stdout io.Writer) error {
	site := httptest.NewServer(&demo.Site{Delay: 300 * time.Millisecond})
	defer site.Close()
	env := map[string]string{
		"ORIGIN_URL":        site.URL,
		"REVALIDATE_SECRET": "demo-secret-change-me",
		"LISTEN_ADDR":       "127.0.0.1:8080",
		"ADMIN_ADDR":        "127.0.0.1:9090",
		"LOG_FORMAT":        "text",
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
		fmt.Fprintf(stdout, `
isrproxy demo: a slow sample site (300 ms a page) behind isrproxy on http://%[1]s
Try, in another terminal:

  curl -s -o /dev/null -w '%%{time_total}s\n' -D - http://%[1]s/events/42   # X-Cache: MISS, ~0.3 s
  curl -s -o /dev/null -w '%%{time_total}s\n' -D - http://%[1]s/events/42   # X-Cache: HIT, ~0.001 s
  curl -s -X POST http://%[1]s/events/42 >/dev/null                          # the "editor" saves (version 2)
  curl -s 'http://%[1]s/api/revalidate?secret=%[2]s&path=/events/42'        # swap the new page in
  curl -s http://%[1]s/events/42 | grep version                              # version 2, from memory
  curl -s http://%[3]s/metrics | grep isrproxy_requests                      # the counters

Ctrl-C stops it.
`, l.Public, secret, l.Admin)
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

// environMap turns os.Environ's "K=V" list into a map.
func environMap(kv []string) map[string]string {
	m := make(map[string]string, len(kv))
	for _, s := range kv {
		if k, v, ok := strings.Cut(s, "="); ok {
			m[k] = v
		}
	}
	return m
}
