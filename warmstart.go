package main

// The warm-start wiring of run: the snapshot loaded before any listener
// accepts, written every SNAPSHOT_INTERVAL and on shutdown, and the
// warm-up that runs once the listeners serve (docs/behaviour.md#restarts-and-deploys).

import (
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/admin"
	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/config"
	"github.com/isrproxy/isrproxy/proxy"
	"github.com/isrproxy/isrproxy/snapshot"
	"github.com/isrproxy/isrproxy/warm"
)

// snapshots writes the store to SNAPSHOT_PATH, one write at a time.
type snapshots struct {
	path  string
	store *cache.Store
	log   *slog.Logger
	mu    sync.Mutex // one write at a time
	stop  context.CancelFunc
	done  chan struct{}
}

// loadSnapshot restores SNAPSHOT_PATH into store, logging what it loaded
// and what it skipped, and returns what writes it from then on; nil when
// SNAPSHOT_PATH is not set. It never fails: a bad snapshot is logged and
// isrproxy starts with what it could load.
func loadSnapshot(cfg config.Config, store *cache.Store, log *slog.Logger) *snapshots {
	if cfg.SnapshotPath == "" {
		return nil
	}
	for _, f := range snapshot.RemoveTemp(cfg.SnapshotPath) {
		log.Warn("removed a snapshot a stopped process left unfinished", "file", f)
	}
	if debug.SetMemoryLimit(-1) != math.MaxInt64 {
		// Nearly all that a load allocates stays (the pages): collections
		// at every few percent of growth would mark the growing heap
		// again and again, and take most of the load's time. The memory
		// limit still bounds the process meanwhile.
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
	}
	res := snapshot.Load(cfg.SnapshotPath, store, snapshot.Options{MaxBodyBytes: int64(cfg.CacheMaxBytes)})
	attrs := []any{"file", cfg.SnapshotPath, "pages", res.Pages, "bytes", res.Bytes,
		"seconds", res.Took.Seconds(), "complete", res.Complete}
	if !res.WrittenAt.IsZero() {
		attrs = append(attrs, "written", res.WrittenAt.UTC().Format(time.RFC3339))
	}
	if res.Corrupt > 0 || res.OverBudget > 0 || len(res.Problems) > 0 {
		attrs = append(attrs, "corrupt", res.Corrupt, "over_budget", res.OverBudget, "skipped", res.Problems)
		log.Warn("snapshot loaded in part", attrs...)
	} else {
		log.Info("snapshot loaded", attrs...)
	}
	return &snapshots{path: cfg.SnapshotPath, store: store, log: log}
}

// save writes the snapshot now; why says what asked for it. A write while
// serving is paced, so that hits keep their speed; the one at shutdown,
// when nothing is served any more, goes as fast as it can.
func (s *snapshots) save(why string, opts snapshot.WriteOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Info("writing snapshot", "file", s.path, "reason", why)
	w, err := snapshot.WriteWith(s.path, s.store, opts)
	if err != nil {
		s.log.Error("snapshot not written; the previous one is kept", "file", s.path, "err", err)
		return
	}
	s.log.Info("snapshot written", "file", s.path, "pages", w.Pages, "bytes", w.Bytes, "seconds", w.Took.Seconds())
}

// every writes the snapshot every interval (never when 0) until close.
func (s *snapshots) every(interval time.Duration) {
	ctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go func() {
		defer close(s.done)
		if interval <= 0 {
			return
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.save("interval", snapshot.PacedWriteOptions)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// close stops the periodic writes and writes the last snapshot: call it
// once the listeners have stopped, so that it holds every page served.
func (s *snapshots) close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	s.save("shutdown", snapshot.WriteOptions{})
}

// warmUp fills the pages of WARM_PATHS_FILE and WARM_SITEMAP, then makes
// /readyz answer 200; the returned channel is closed when it is done (or
// ctx ended).
func warmUp(ctx context.Context, cfg config.Config, pages *proxy.Handler, ready *admin.Handler, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	if cfg.WarmSitemap == "" && cfg.WarmPathsFile == "" {
		ready.Ready()
		close(done)
		return done
	}
	go func() {
		defer close(done)
		log.Info("warm-up started", "sitemap", cfg.WarmSitemap, "paths_file", cfg.WarmPathsFile, "rate", float64(cfg.WarmRate))
		res := warm.Run(ctx, warm.Options{
			Pages: pages,
			Hosts: cfg.AllowedHosts,
			// With HTTPS_REDIRECT on only https pages are stored; https
			// visitors are known on the TLS listener or through trusted
			// proxies.
			HTTP:        cfg.HTTPSRedirect != config.SwitchOn,
			HTTPS:       cfg.TLSEnabled() || len(cfg.TrustedProxies) > 0,
			Sitemap:     cfg.WarmSitemap,
			PathsFile:   cfg.WarmPathsFile,
			Rate:        float64(cfg.WarmRate),
			MaxInFlight: max(1, cfg.OriginMaxConcurrency/4), // visitors keep most origin slots
			Logger:      log,
		})
		if ctx.Err() != nil {
			return // shutting down: not ready
		}
		log.Info("warm-up done", "pages", res.Targets, "already_stored", res.Stored, "filled", res.Filled,
			"failed", res.Failed, "skipped", res.Skipped, "bad_lines", res.BadLines, "seconds", res.Took.Seconds())
		ready.Ready()
	}()
	return done
}
