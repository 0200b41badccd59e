package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/admin"
	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/metrics"
)

// storeLookup answers the dashboard's lookup box from the page store and
// the revalidations the metrics keep. It stands in for the revalidate
// API's status call (same field names) until that call is wired here.
type storeLookup struct {
	store   *cache.Store
	metrics *metrics.Metrics
	ignore  cache.Matcher
	keep    cache.Matcher
	hosts   []string // ALLOWED_HOSTS: with exactly one, it is the default host
	now     func() time.Time
}

var _ admin.Lookup = storeLookup{}

type keyStatus struct {
	Host             string            `json:"host"`
	Path             string            `json:"path"`
	Stored           bool              `json:"stored"`
	Variants         []variantStatus   `json:"variants,omitempty"`
	LastRevalidation *lastRevalidation `json:"last_revalidation,omitempty"`
}

type variantStatus struct {
	HTTPS    bool              `json:"https"`
	Vary     map[string]string `json:"vary,omitempty"`
	Status   int               `json:"status"`
	StoredAt string            `json:"stored_at"`
	Age      int64             `json:"age"`
	Bytes    int               `json:"bytes"`
	Gzip     bool              `json:"gzip"`
	Tags     []string          `json:"tags,omitempty"`
	State    string            `json:"state"`
}

type lastRevalidation struct {
	At      string `json:"at"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// Status reports what is stored under the key of host and path ("/a?x=1",
// escaped or not), normalised as a request's key is.
func (l storeLookup) Status(host, path string) (any, error) {
	if host == "" {
		if len(l.hosts) != 1 {
			return nil, errors.New("name the host whose page to look up")
		}
		host = l.hosts[0]
	}
	p, q, _ := strings.Cut(path, "?")
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return nil, fmt.Errorf("%q: a path begins with one /", path)
	}
	key, err := cache.NewKey(cache.NormalizeHost(host, false), p, q, l.ignore, l.keep)
	if errors.Is(err, cache.ErrNotEscaped) {
		key, err = cache.NewKey(cache.NormalizeHost(host, false), cache.EscapePath(p), q, l.ignore, l.keep)
	}
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	st := keyStatus{Host: key.Host, Path: key.Target()}
	if e := l.store.Get(key); e != nil {
		now := l.now()
		st.Stored = true
		for _, pg := range e.Variants {
			v := variantStatus{
				HTTPS: pg.HTTPS, Status: pg.Status, StoredAt: pg.StoredAt.UTC().Format(time.RFC3339),
				Age:   int64(now.Sub(pg.StoredAt)/time.Second) + pg.OriginAge,
				Bytes: len(pg.Body), Gzip: pg.Gzip, Tags: pg.Tags, State: "fresh",
			}
			if pg.StaleMarked() {
				v.State = "stale"
			}
			for i, name := range pg.Vary {
				if v.Vary == nil {
					v.Vary = map[string]string{}
				}
				if i < len(pg.VaryValues) {
					v.Vary[name] = pg.VaryValues[i]
				}
			}
			st.Variants = append(st.Variants, v)
		}
	}
	if r, ok := l.metrics.LastRevalidation(key.Host, key.Target()); ok {
		st.LastRevalidation = &lastRevalidation{At: r.At.UTC().Format(time.RFC3339), Outcome: r.Outcome, Error: r.Error}
	}
	return st, nil
}

// oneHost is the host the lookup box proposes: the allowed host, when
// ALLOWED_HOSTS names exactly one.
func oneHost(hosts []string) string {
	if len(hosts) == 1 {
		return hosts[0]
	}
	return ""
}
