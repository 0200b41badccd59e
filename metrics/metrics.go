// Package metrics holds isrproxy's Prometheus collectors: page requests by
// cache status, origin requests by reason and status, origin latency, the
// page store's size, evictions and rejections, and revalidations by outcome.
// It also keeps the recent history the admin dashboard draws (history.go).
// A nil *Metrics counts nothing, so that tests and tools can leave it out.
package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// Metrics are the collectors of the public listener and its revalidations.
// A nil *Metrics counts nothing.
type Metrics struct {
	requests      *prometheus.CounterVec
	inFlight      atomic.Int64       // an integer add, not a float CAS loop, on every request
	byVerdict     map[string]verdict // resolved once: no label lookup per hit
	origin        *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	evictions     prometheus.Counter
	rejections    prometheus.Counter
	revalidations *prometheus.CounterVec
	certErrors    *prometheus.CounterVec

	store   func() (entries int, bytes int64)
	now     func() time.Time
	started time.Time
	counts  counters  // running totals for the dashboard's history
	history history   // closed by the ticker of StartHistory
	revals  revalRing // the last revalidations
}

// verdict is one X-Cache value's Prometheus counter and running total.
type verdict struct {
	counter prometheus.Counter
	total   *atomic.Uint64
}

// New registers isrproxy's collectors on reg; store feeds the
// stored bytes and entries gauges.
func New(reg prometheus.Registerer, store func() (entries int, bytes int64)) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "isrproxy_requests_total", Help: "Page requests by cache status (X-Cache).",
		}, []string{"cache"}),
		origin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "isrproxy_origin_requests_total", Help: "Origin requests by reason and status (0: no answer).",
		}, []string{"reason", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "isrproxy_origin_duration_seconds", Help: "Time to a complete origin answer, fills and refetches.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"reason"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "isrproxy_cache_evictions_total", Help: "Pages evicted to stay within CACHE_MAX_BYTES.",
		}),
		rejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "isrproxy_cache_admission_rejections_total", Help: "Pages the cache's admission policy refused.",
		}),
		revalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "isrproxy_revalidations_total", Help: "Revalidated keys by outcome.",
		}, []string{"outcome"}),
		certErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "isrproxy_certificate_errors_total",
			Help: "TLS certificates that could not be obtained, renewed or reloaded, by source (acme, files).",
		}, []string{"source"}),
		byVerdict: make(map[string]verdict),
		store:     store,
		now:       time.Now,
	}
	m.started = m.now()
	m.history.openAt = m.started
	for i, v := range []string{verdictHit: "HIT", verdictMiss: "MISS", verdictStale: "STALE", verdictBypass: "BYPASS"} {
		m.byVerdict[v] = verdict{counter: m.requests.WithLabelValues(v), total: &m.counts.verdict[i]}
	}
	m.certErrors.WithLabelValues("acme")
	m.certErrors.WithLabelValues("files")
	reg.MustRegister(m.requests, m.origin, m.latency, m.evictions, m.rejections, m.revalidations, m.certErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "isrproxy_requests_in_flight", Help: "Page requests being answered now.",
		}, func() float64 { return float64(m.inFlight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "isrproxy_cache_bytes", Help: "Bytes counted by stored pages.",
		}, func() float64 { _, b := store(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "isrproxy_cache_entries", Help: "Stored keys.",
		}, func() float64 { n, _ := store(); return float64(n) }),
	)
	return m
}

// CertificateError counts a certificate that could not be obtained,
// renewed or reloaded; source is "acme" or "files".
func (m *Metrics) CertificateError(source string) {
	if m != nil {
		m.certErrors.WithLabelValues(source).Inc()
	}
}

// StoreHooks returns the callbacks a cache.Config takes to count evictions
// and rejections.
func (m *Metrics) StoreHooks(cfg cache.Config) cache.Config {
	if m != nil {
		cfg.OnEvict = m.evictions.Inc
		cfg.OnReject = m.rejections.Inc
	}
	return cfg
}

// Revalidated counts one revalidated key by outcome.
func (m *Metrics) Revalidated(outcome revalidation.Outcome) {
	if m != nil {
		m.revalidations.WithLabelValues(string(outcome)).Inc()
	}
}

// RequestStarted counts a page request in flight; RequestEnded ends it.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.inFlight.Add(1)
	}
}

// RequestEnded ends a request that RequestStarted counted.
func (m *Metrics) RequestEnded() {
	if m != nil {
		m.inFlight.Add(-1)
	}
}

// Served counts one answer by its X-Cache value: HIT, MISS, STALE or BYPASS.
func (m *Metrics) Served(cacheStatus string) {
	if m == nil {
		return
	}
	v := m.byVerdict[cacheStatus]
	v.counter.Inc()
	v.total.Add(1)
}

// OriginStatus counts one origin request by reason (fill, refetch,
// bypass) and status; status 0 is a request that got no answer.
func (m *Metrics) OriginStatus(reason string, status int) {
	if m != nil {
		m.origin.WithLabelValues(reason, strconv.Itoa(status)).Inc()
	}
}

// OriginDone counts a fill or refetch that took took, with its status (0:
// no answer), and records its latency.
func (m *Metrics) OriginDone(reason string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.OriginStatus(reason, status)
	m.latency.WithLabelValues(reason).Observe(took.Seconds())
	m.counts.originNanos.Add(uint64(max(took, 0)))
	m.counts.originN.Add(1)
}
