package main

// The admin listener and the revalidate API's input: /healthz, /metrics,
// and a query that cannot break the request line of a refetch.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A revalidate path whose query holds a space (possible in JSON and in an
// encoded query string) never breaks the request line of the refetch: it
// is refused, or escaped so the origin reads one request target.
func TestRevalidateQueryCannotBreakTheRequestLine(t *testing.T) {
	rec := &recorder{}
	o := newTestOrigin(t, rec.wrap(page("<p>origin</p>")))
	p := startProxy(t, o.URL, nil)
	for _, target := range []string{"/x?a=b HTTP/1.0", "/x?q=hello world", "/x?a= /admin"} {
		for _, form := range []string{"query", "json"} {
			var got answer
			if form == "query" {
				got = p.revalidate("path=" + url.QueryEscape(target))
			} else {
				b, err := json.Marshal(map[string]any{"paths": []string{target}})
				require.NoError(t, err)
				got = p.request(http.MethodPost, "/api/revalidate", bytes.NewReader(b),
					"Authorization", "Bearer "+apiSecret, "Content-Type", "application/json")
			}
			assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, got.Status, "%s %q: %s", form, target, got.Body)
		}
	}
	for _, s := range rec.all() {
		assert.NotContains(t, s.RequestURI, " ", "the origin read a request target with a space")
	}
}

func TestHealthzAnswers200(t *testing.T) {
	p := startProxy(t, newTestOrigin(t, page("x")).URL, nil)
	resp, err := http.Get(p.Admin + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// /metrics counts requests by cache status and origin requests by reason and status.
func TestMetricsCountRequestsAndOriginFetches(t *testing.T) {
	o := newTestOrigin(t, page("<p>m</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/m")
	p.get("/m")
	p.get("/m")
	p.get("/m", "Authorization", "Bearer x")
	assert.EqualValues(t, 2, metric(t, p, `isrproxy_requests_total{cache="HIT"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_requests_total{cache="MISS"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_requests_total{cache="BYPASS"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_origin_requests_total{reason="fill",status="200"}`))
	assert.EqualValues(t, 1, metric(t, p, `isrproxy_origin_requests_total{reason="bypass",status="200"}`))
	assert.EqualValues(t, 1, metric(t, p, "isrproxy_cache_entries"))
	assert.Positive(t, metric(t, p, "isrproxy_cache_bytes"))
}
