// Package admin is the admin listener's handler: /healthz for liveness
// checks and load balancers, /readyz for readiness, /metrics for Prometheus.
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
	ready    atomic.Pointer[func() (bool, string)]
}

// New returns the admin handler; metrics come from gatherer.
func New(gatherer prometheus.Gatherer) *Handler {
	h := &Handler{mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return h
}

// Drain makes /healthz answer 503 from now on, so that load balancers look
// elsewhere while the process shuts down.
func (h *Handler) Drain() { h.draining.Store(true) }

// Readiness sets what /readyz asks: whether the replica may take visitors
// yet, and a word on why (a cluster replica catching up on the
// revalidations it missed). Without it /readyz is /healthz.
func (h *Handler) Readiness(check func() (ready bool, state string)) { h.ready.Store(&check) }

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	check := h.ready.Load()
	if check == nil || h.draining.Load() {
		h.healthz(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	ok, state := (*check)()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	io.WriteString(w, state+"\n")
}

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
