// Command isrproxy is a caching reverse proxy with on-demand revalidation:
// Next.js's "On-demand ISR" for any origin. It answers every stored page from
// memory and refetches exactly the pages a CMS names on /api/revalidate.
//
// Usage:
//
//	isrproxy              serve, configured by the environment (see README.md)
//	isrproxy demo         serve in front of a built-in slow sample site
//	isrproxy healthcheck  exit 0 when the admin listener answers /healthz
//	isrproxy revalidate   call the revalidate API of ISRPROXY_URL (cron, deploys, CI)
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/isrproxy/isrproxy/admin"
	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/certs"
	"github.com/isrproxy/isrproxy/cluster"
	"github.com/isrproxy/isrproxy/config"
	"github.com/isrproxy/isrproxy/forwarded"
	"github.com/isrproxy/isrproxy/gctune"
	"github.com/isrproxy/isrproxy/logging"
	"github.com/isrproxy/isrproxy/metrics"
	"github.com/isrproxy/isrproxy/proxy"
	"github.com/isrproxy/isrproxy/purge"
	"github.com/isrproxy/isrproxy/revalidation"
	"github.com/isrproxy/isrproxy/server"
)

// The page handler is what the revalidate API acts on, and the page store
// is its index: main adapts one package to the other.
var (
	_ purge.Revalidator = (*proxy.Handler)(nil)
	_ purge.InFlight    = (*proxy.Handler)(nil)
	_ purge.Index       = (*cache.Store)(nil)
	_ admin.Lookup      = (*purge.Handler)(nil)
	_ purge.HostIndex   = (*cache.Store)(nil)
	_ purge.LinkIndex   = (*cache.Store)(nil)
	_ purge.Inspector   = (*proxy.Handler)(nil)
	_ proxy.Shared      = (*cluster.Cluster)(nil)
	_ cluster.Applier   = (*proxy.Handler)(nil)
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
	case "revalidate":
		return revalidateCmd(ctx, args[1:], environ, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, version())
		return 0
	case "help", "-h", "-help", "--help":
		io.WriteString(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "isrproxy: unknown command %q\n%s", cmd, usage)
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
	TLS    string // "" when TLS is not configured
}

// acmeOverrides, when not nil, adjusts the ACME options before use: tests
// shorten the retry and leave a challenge type out.
var acmeOverrides func(*certs.ACMEOptions)

// run serves until ctx ends, then shuts down gracefully. ready, if not nil,
// learns the listening addresses. It is wiring only: each part is built
// from the configuration and handed to the next.
func run(ctx context.Context, environ map[string]string, stdout io.Writer, ready func(Listeners)) error {
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	log := logging.New(stdout, string(cfg.RevalidateSecret), cfg.LogLevel.Level(), cfg.LogFormat)
	if _, set := environ["GOMEMLIMIT"]; !set {
		// Bounded memory: the heap is kept near the page budget plus headroom.
		debug.SetMemoryLimit(int64(cfg.CacheMaxBytes) + 96<<20)
	}

	// SIGHUP, which an operator sends to nginx, never stops isrproxy: it
	// re-reads the certificate files, and nothing else.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var store *cache.Store
	counters := metrics.New(reg, func() (int, int64) { return store.Stats() })
	// A sixteenth of the budget (at most 64 MiB) keeps decompressed copies of
	// pages that clients without gzip ask for again and again; the pages
	// themselves get the rest, so the two together stay within the budget.
	decompressed := min(int64(cfg.CacheMaxBytes)/16, 64<<20)
	// Certificates are checked before anything listens: a pair that does
	// not load is a configuration error.
	var background sync.WaitGroup
	defer background.Wait()
	var tlsConfig *tls.Config
	var files *certs.Files
	var acme *certs.ACME
	switch {
	case !cfg.TLSEnabled():
	case len(cfg.ACMEDomains) > 0:
		opts := certs.ACMEOptions{
			Domains: cfg.ACMEDomains, Email: cfg.ACMEEmail, CA: cfg.ACMECA, CARoot: cfg.ACMECARoot,
			Storage: cfg.ACMEStorage, HTTPAddr: cfg.ListenAddr, TLSAddr: cfg.TLSAddr,
			Logger: log, OnError: func() { counters.CertificateError("acme") },
		}
		if acmeOverrides != nil {
			acmeOverrides(&opts)
		}
		if acme, err = certs.NewACME(opts); err != nil {
			return configError(err)
		}
		defer acme.Close()
		tlsConfig = &tls.Config{GetCertificate: acme.GetCertificate, NextProtos: acme.NextProtos()}
	default:
		files, err = certs.LoadFiles(cfg.TLSCertFile, cfg.TLSKeyFile, log, func() { counters.CertificateError("files") })
		if err != nil {
			return configError(err)
		}
		tlsConfig = &tls.Config{GetCertificate: files.GetCertificate}
		background.Go(func() { files.Watch(ctx, certs.PollInterval) })
	}
	background.Go(func() {
		for {
			select {
			case <-hup:
				if files != nil {
					files.Reload("SIGHUP")
				} else {
					log.Info("SIGHUP: nothing to reload")
				}
			case <-ctx.Done():
				return
			}
		}
	})

	store, err = cache.New(counters.StoreHooks(cache.Config{MaxBytes: int64(cfg.CacheMaxBytes) - decompressed}))
	if err != nil {
		return err
	}
	defer store.Close()
	stopHistory := counters.StartHistory() // the dashboard's last 15 minutes
	defer stopHistory()

	// Cluster mode (REDIS_URL): the replicas share Redis, and nothing else.
	var shared proxy.Shared
	var peers *cluster.Cluster
	if cfg.RedisURL != "" {
		peers, err = cluster.New(cluster.Options{
			URL: cfg.RedisURL, Name: cfg.ClusterName, Node: cfg.NodeID, Logger: log, Registerer: reg,
			LockLease: time.Duration(cfg.OriginTimeout) + 2*time.Second,
		})
		if err != nil {
			return err
		}
		shared = peers
	}

	invalidation, err := proxy.ParseInvalidation(cfg.UnsafeInvalidation)
	if err != nil {
		return err // config.Load has already ruled this out
	}
	pages, err := proxy.New(proxy.Options{
		Origin:                cfg.OriginURL.URL(),
		OriginHost:            cfg.OriginHost,
		Store:                 store,
		OriginTimeout:         time.Duration(cfg.OriginTimeout),
		MaxObjectBytes:        int64(cfg.MaxObjectBytes),
		CacheStatuses:         cfg.CacheStatuses,
		CompressTypes:         cfg.CompressTypes,
		CompressMinBytes:      int64(cfg.CompressMinBytes),
		BypassCookies:         cache.NewMatcher(cfg.BypassCookies),
		IgnoreParams:          cache.NewMatcher(cfg.IgnoreQueryParams),
		KeepParams:            cache.NewMatcher(cfg.KeepQueryParams),
		BypassPaths:           cache.NewMatcher(cfg.BypassPaths),
		TagHeaders:            cfg.TagHeaders,
		Invalidation:          invalidation,
		AllowedHosts:          cfg.AllowedHosts,
		RevalidateAfter:       time.Duration(cfg.RevalidateAfter),
		NegativeTTL:           time.Duration(cfg.NegativeTTL),
		PassTTL:               time.Duration(cfg.PassTTL),
		OriginMaxConcurrency:  cfg.OriginMaxConcurrency,
		RevalidateConcurrency: cfg.RevalidateConcurrency,
		DecompressedBytes:     decompressed,
		HTTPSOnly:             cfg.HTTPSRedirect == config.SwitchOn,
		Logger:                log,
		Metrics:               counters,
		Shared:                shared,
	})
	if err != nil {
		return err
	}
	defer pages.Close()
	// Warm start: the snapshot is loaded before any listener accepts.
	snaps := loadSnapshot(cfg, store, log)
	if _, set := environ["GOGC"]; !set {
		// A fixed headroom above the stored pages; started after the
		// load, which runs with the GC percentage off.
		go gctune.Run(ctx)
	}
	// A cluster replica catches up on what it missed after the snapshot
	// is loaded, before any listener accepts.
	if peers != nil {
		peers.Start(pages)
		defer peers.Close()
	}
	api := purge.New(purge.Options{
		Secret:       string(cfg.RevalidateSecret),
		Path:         cfg.RevalidatePath,
		AllowedHosts: cfg.AllowedHosts,
		Ignore:       cache.NewMatcher(cfg.IgnoreQueryParams),
		Keep:         cache.NewMatcher(cfg.KeepQueryParams),
		Revalidator:  counters.KeepRevalidations(pages), // the dashboard lists the last results
		InFlight:     pages,
		Index:        store,
		Logger:       log,
		OnResult:     counters.Revalidated,
		PurgeAllow:   cfg.PurgeAllow,
		PurgeMode:    revalidation.Mode(cfg.PurgeMode),
		Inspector:    pages,
	})
	defer api.Close()

	// Behind a balancer that terminates TLS, the client and the scheme are
	// those the trusted proxies vouch for, for everything after them.
	trusted := forwarded.New(cfg.TrustedProxies)
	var servers []*server.Server
	closeAll := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	var addrs Listeners
	// PURGE and BAN, as Varnish's CMS plugins send them, on any path of
	// either listener: answered here, never forwarded.
	varnish := http.HandlerFunc(api.ServeVarnish)
	plainPages := http.Handler(pages)
	if tlsConfig != nil {
		secure, err := server.TLS("TLS_ADDR", cfg.TLSAddr, forwarded.OverTLS(
			trusted.Handler(proxy.AccessLog(server.Purge(varnish, server.Route(cfg.RevalidatePath, api, pages)), log))), tlsConfig, log)
		if err != nil {
			return err
		}
		if fastPathOn(environ, cfg, false, false) {
			secure.SetFast(pages.FastPath(proxy.FastOptions{Reserved: []string{cfg.RevalidatePath}, Log: log, HTTPS: true}))
		}
		servers = append(servers, secure)
		addrs.TLS = secure.Addr()
		if cfg.HTTPSRedirect == config.SwitchOn {
			// Only https pages are stored then: an http page request is
			// redirected before it reaches the store.
			_, port, _ := net.SplitHostPort(secure.Addr())
			if _, p, err := net.SplitHostPort(cfg.TLSAddr); err == nil && p != "0" {
				port = p // as configured: a port published by a container may differ
			}
			plainPages = server.RedirectHTTPS(port, pages)
		}
	}
	// The revalidate API and the ACME HTTP-01 challenge are served on
	// plain HTTP too, never redirected.
	plain := server.Route(cfg.RevalidatePath, api, plainPages)
	if acme != nil {
		plain = acme.HTTPHandler(plain)
	}
	public, err := server.Public("LISTEN_ADDR", cfg.ListenAddr, trusted.Handler(proxy.AccessLog(server.Purge(varnish, plain), log)), log)
	if err != nil {
		closeAll()
		return err
	}
	if fastPathOn(environ, cfg, true, acme != nil) {
		public.SetFast(pages.FastPath(proxy.FastOptions{Reserved: []string{cfg.RevalidatePath}, Log: log}))
	}
	servers = append([]*server.Server{public}, servers...)
	addrs.Public = public.Addr()
	dash := admin.Dashboard{
		Recent: counters.Snapshot,
		Lookup: api, // the revalidate API's status call, without the secret on the private listener
		Host:   oneHost(cfg.AllowedHosts),
	}
	if peers != nil {
		dash.Replicas, dash.Node = peers.Live, cfg.NodeID
	}
	adminHandler := admin.New(reg, dash)
	if peers != nil {
		adminHandler.Readiness(peers.Ready)
	}
	if cfg.AdminAddr != "" {
		a, err := server.Plain("ADMIN_ADDR", cfg.AdminAddr, adminHandler, log)
		if err != nil {
			closeAll()
			return err
		}
		servers = append(servers, a)
		addrs.Admin = a.Addr()
	}

	if acme != nil {
		acme.Start(ctx) // what storage holds now; the rest in the background
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.Serve() }()
	}
	log.Info("isrproxy serving", "listen", addrs.Public, "admin", addrs.Admin, "tls", addrs.TLS,
		"origin", cfg.OriginURL.URL().String())
	warmed := warmUp(ctx, cfg, pages, adminHandler, log)
	if snaps != nil {
		snaps.every(time.Duration(cfg.SnapshotInterval))
	}
	if ready != nil {
		ready(addrs)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	}
	adminHandler.Drain()
	log.Info("shutting down", "timeout", time.Duration(cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	pageServers := servers[:1]
	if addrs.TLS != "" {
		pageServers = servers[:2]
	}
	var stopping sync.WaitGroup
	for _, s := range pageServers {
		stopping.Go(func() {
			if err := s.Shutdown(sctx); err != nil {
				// SHUTDOWN_TIMEOUT is spent: the requests still running (a
				// client reading at a byte a second) were cut off.
				log.Warn("shutdown timeout: closed remaining connections", "err", err)
			}
		})
	}
	stopping.Wait()
	for _, s := range servers[len(pageServers):] {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		s.Shutdown(actx)
		acancel()
	}
	<-warmed
	if snaps != nil {
		snaps.close() // every page served, once nothing is served any more
	}
	return nil
}

// configError makes certificate problems configuration errors: one line
// each, exit code 2.
func configError(err error) error {
	var p certs.Problems
	if errors.As(err, &p) {
		return &config.Error{Problems: p}
	}
	return err
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
