package admin

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/isrproxy/isrproxy/metrics"
)

type fakeLookup struct{}

func (fakeLookup) Status(host, path string) (any, error) {
	if path == "/bad" {
		return nil, errors.New(`"/bad": not a page`)
	}
	return map[string]any{"host": host, "path": path, "stored": true, "variants": []map[string]any{
		{"https": true, "stored_at": "2026-01-02T03:04:05Z", "age": 7, "bytes": 1234, "gzip": true, "tags": []string{"post-1", "news"}, "state": "stale"},
	}}, nil
}

func snapshot() metrics.Snapshot {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return metrics.Snapshot{
		Now: now, Started: now.Add(-time.Hour),
		Totals:  metrics.Totals{Hits: 42, Misses: 6, Stale: 2, Bypass: 9, OriginRequests: 8, OriginNanos: uint64(80 * time.Millisecond)},
		Entries: 12, Bytes: 3 << 20,
		Buckets: []metrics.Bucket{
			{Start: now.Add(-20 * time.Second), End: now.Add(-10 * time.Second), Totals: metrics.Totals{Hits: 40, Misses: 6, OriginRequests: 6, OriginNanos: uint64(60 * time.Millisecond)}},
			{Start: now.Add(-10 * time.Second), End: now, Totals: metrics.Totals{Hits: 2, Stale: 2, Bypass: 9, OriginRequests: 2, OriginNanos: uint64(20 * time.Millisecond)}},
		},
		Revalidations: []metrics.Revalidation{
			{At: now, Host: "example.com", Path: "/<b>x</b>", Mode: "refetch", Outcome: "failed", Status: 503, Error: "origin status 503"},
		},
	}
}

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

func TestDashboardShowsTheSnapshot(t *testing.T) {
	h := New(prometheus.NewRegistry(), Dashboard{Recent: snapshot, Lookup: fakeLookup{}, Host: "example.com"})
	resp, body := get(t, h, "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q, want nothing loaded from anywhere", csp)
	}
	for _, want := range []string{
		`<b id="hits">42</b>`,
		`<b id="ratio">88.0 %</b>`, // 44 from memory of 50
		`<b id="bytes">3.0 MiB</b>`,
		`<b id="origin-mean">10 ms</b>`,
		`<td class="path">/&lt;b&gt;x&lt;/b&gt;</td>`, // escaped
		`<td class="outcome failed">failed</td>`,
		`(1 failed)`,
		`<path class="hit" d="M`,
		`<path class="latency" d="M`,
		`value="example.com"`,
		`http-equiv="refresh"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestDashboardLookup(t *testing.T) {
	h := New(prometheus.NewRegistry(), Dashboard{Recent: snapshot, Lookup: fakeLookup{}})
	resp, body := get(t, h, "/?path=/a%3Fx%3D1&host=example.com")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("lookup = %d", resp.StatusCode)
	}
	for _, want := range []string{"example.com/a?x=1</b> is stored: 1 variant(s)", "<td>1234</td>", "post-1 news", ">stale</td>", "https"} {
		if !strings.Contains(body, want) {
			t.Errorf("lookup lacks %q", want)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("a lookup reloads itself")
	}
	resp, body = get(t, h, "/?path=/bad&host=example.com")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not a page") {
		t.Errorf("bad lookup = %d, want 400 with the reason", resp.StatusCode)
	}
}

func TestNoDashboardWithoutRecent(t *testing.T) {
	h := New(prometheus.NewRegistry(), Dashboard{})
	if resp, _ := get(t, h, "/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / without a dashboard = %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, h, "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 3: 5, 7: 10, 12: 20, 480: 500, 1001: 2000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%g) = %g, want %g", in, got, want)
		}
	}
}

// In a cluster the dashboard lists the live replicas and names this one.
func TestDashboardListsTheReplicas(t *testing.T) {
	recent := func() metrics.Snapshot { return metrics.Snapshot{Now: time.Now(), Started: time.Now()} }
	single := New(prometheus.NewRegistry(), Dashboard{Recent: recent})
	_, body := get(t, single, "/")
	assert.Contains(t, body, "Single node")

	cluster := New(prometheus.NewRegistry(), Dashboard{Recent: recent, Node: "web-2:8080",
		Replicas: func() []string { return []string{"web-1:8080", "web-2:8080", "web-3:8080"} }})
	_, body = get(t, cluster, "/")
	assert.NotContains(t, body, "Single node")
	assert.Contains(t, body, "3 live")
	assert.Contains(t, body, "<b>web-2:8080</b>")
	for _, n := range []string{"web-1:8080", "web-3:8080"} {
		assert.Contains(t, body, "<li>"+n+"</li>")
	}
}
