// Package admin is the admin listener's handler: /healthz for liveness
// checks and load balancers, /readyz for readiness (the snapshot loaded and
// the warm-up done), /metrics for Prometheus, and at / a small read-only
// HTML dashboard (dashboard.go).
package admin

import (
	"io"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the admin endpoints. Build it with [New].
type Handler struct {
	mux      *http.ServeMux
	draining atomic.Bool
	dash     Dashboard
	ready    atomic.Bool
	check    atomic.Pointer[func() (bool, string)] // a cluster replica in sync; nil: none
}

// New returns the admin handler; metrics come from gatherer, and the
// dashboard at / from dash (none when dash.Recent is nil).
func New(gatherer prometheus.Gatherer, dash Dashboard) *Handler {
	h := &Handler{mux: http.NewServeMux(), dash: dash}
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	if dash.Recent != nil {
		h.mux.HandleFunc("GET /{$}", h.dashboard)
	}
	return h
}

// Drain makes /healthz answer 503 from now on, so that load balancers look
// elsewhere while the process shuts down.
func (h *Handler) Drain() { h.draining.Store(true) }

// Ready makes /readyz answer 200 (until Drain): the snapshot is loaded and
// every warm-up path has been tried once.
func (h *Handler) Ready() { h.ready.Store(true) }

// Readiness adds what /readyz also asks once Ready: whether the replica may
// take visitors yet, and a word on why (a cluster replica catching up on
// the revalidations it missed).
func (h *Handler) Readiness(check func() (ready bool, state string)) { h.check.Store(&check) }

// ServeHTTP answers an admin request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "draining\n")
		return
	}
	io.WriteString(w, "ok\n")
}

func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case h.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "draining\n")
	case !h.ready.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "warming up\n")
	case h.check.Load() != nil:
		ok, state := (*h.check.Load())()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, state+"\n")
	default:
		io.WriteString(w, "ready\n")
	}
}
