package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
)

func getPath(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// /readyz is 503 until Ready, 200 then, and 503 again once draining;
// /healthz is the liveness check and is 200 while warming up.
func TestReadyz(t *testing.T) {
	h := New(prometheus.NewRegistry(), Dashboard{})
	code, body := getPath(h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "warming up\n", body)
	code, _ = getPath(h, "/healthz")
	assert.Equal(t, http.StatusOK, code, "alive while warming up")

	h.Ready()
	code, body = getPath(h, "/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)

	h.Drain()
	code, _ = getPath(h, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
}
