package main

// A failure keeps the last good page: whatever the origin does (errors,
// resets, stalls, broken framing, or being gone), stored pages are still
// served, nothing partial is stored, and the API reports every failure.

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A body cut short (Content-Length larger than sent, or a chunked body
// without its last chunk) is never stored and answers 502.
func TestTruncatedOriginBodyIsNeverStoredAndAnswers502(t *testing.T) {
	for name, raw := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n<p>partial page",
		"chunked":        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n<p>partial page \r\n",
	} {
		t.Run(name, func(t *testing.T) {
			o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if !assert.NoError(t, err) {
					return
				}
				buf.WriteString(raw)
				buf.Flush()
				conn.Close()
			})
			p := startProxy(t, o.URL, nil)
			for i := range 2 {
				got := p.get("/cut")
				assert.Equal(t, http.StatusBadGateway, got.Status)
				assert.NotContains(t, got.Body, "partial page")
				assert.EqualValues(t, i+1, o.hits.Load(), "never stored: each request tries the origin")
			}
			assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
		})
	}
}

// An origin that cannot be reached answers 502 on a miss.
func TestOriginDownAnswers502OnMiss(t *testing.T) {
	o := newTestOrigin(t, page("never"))
	o.Close() // nothing listens on ORIGIN_URL any more
	p := startProxy(t, o.URL, nil)
	got := p.get("/down")
	assert.Equal(t, http.StatusBadGateway, got.Status)
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"), "a failed fill is a miss")
	assert.Equal(t, "isrproxy; fwd=miss", got.Header.Get("Cache-Status"))
	bypass := p.get("/down", "Authorization", "Bearer x")
	assert.Equal(t, http.StatusBadGateway, bypass.Status, "bypass too")
	assert.Equal(t, "BYPASS", bypass.Header.Get("X-Cache"))
}

// An origin slower than ORIGIN_TIMEOUT answers 504, on a fill and on a
// pass-through; the failure stores nothing and marks nothing.
func TestOriginTimeoutAnswers504(t *testing.T) {
	gate := newGate()
	var slow atomic.Bool
	slow.Store(true)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() && !gate.wait(r) {
			return
		}
		io.WriteString(w, "late page")
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_TIMEOUT": "200ms"})
	gate.openAtCleanup(t)

	got := p.get("/slow")
	assert.Equal(t, http.StatusGatewayTimeout, got.Status)
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	got = p.get("/slow", "Authorization", "Bearer x")
	assert.Equal(t, http.StatusGatewayTimeout, got.Status, "pass-through")

	slow.Store(false)
	got = p.get("/slow")
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"), "a timeout marks no pass-through")
}

// ORIGIN_TIMEOUT bounds the whole fill, body included: an origin that
// stalls mid-body answers 504 and stores nothing.
func TestOriginStallingMidBodyTimesOut(t *testing.T) {
	gate := newGate()
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "<p>the first part")
		w.(http.Flusher).Flush()
		gate.wait(r)
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_TIMEOUT": "200ms"})
	gate.openAtCleanup(t)
	got := p.get("/stall")
	assert.Equal(t, http.StatusGatewayTimeout, got.Status)
	assert.NotContains(t, got.Body, "the first part")
	assert.EqualValues(t, 0, metric(t, p, "isrproxy_cache_entries"))
}

// startReaders reads the stored pages in a loop from 4 goroutines until
// stop is called, which reports how many answers there were and describes
// (up to 20 of) those that were not 200 HIT with the stored body.
func startReaders(base string, pages map[string]string) (stop func() (int64, []string)) {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}, Timeout: 15 * time.Second}
	paths := make([]string, 0, len(pages))
	for p := range pages {
		paths = append(paths, p)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	var mu sync.Mutex
	var bad []string
	deadline := time.Now().Add(60 * time.Second) // a bound, should stop never come
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; time.Now().Before(deadline); i++ {
				select {
				case <-quit:
					return
				default:
				}
				path := paths[i%len(paths)]
				msg := checkPage(client, base, path, pages[path])
				served.Add(1)
				if msg != "" {
					mu.Lock()
					if len(bad) < 20 {
						bad = append(bad, msg)
					}
					mu.Unlock()
				}
			}
		}()
	}
	return func() (int64, []string) {
		close(quit)
		wg.Wait()
		client.CloseIdleConnections()
		mu.Lock()
		defer mu.Unlock()
		return served.Load(), bad
	}
}

// Stored pages stay served and a failure keeps the last good page, against
// a misbehaving origin: while every fault runs,
// 100 % of the requests for stored pages are 200 HIT with the stored body;
// every failed refetch is reported (502, one "failed" result per key) and
// keeps the stored page; a fill during the fault answers 502 or 504 and
// stores nothing, so the next good fetch is what gets stored; and the
// process never stops serving.
func TestStoredPagesStayServedWhileTheOriginMisbehaves(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	o := newRawOrigin(t, nil)
	good := goodScript(&version)
	o.set(good)
	p := startProxy(t, o.URL(), map[string]string{"LOG_LEVEL": "error", "ORIGIN_TIMEOUT": "300ms", "PASS_TTL": "100ms"})

	stored := map[string]string{}
	for i := range 4 {
		path := fmt.Sprintf("/stored/%d", i)
		got := p.get(path)
		require.Equal(t, http.StatusOK, got.Status, got.Body)
		require.Equal(t, versionedBody(path, 1), got.Body)
		stored[path] = got.Body
	}
	require.Empty(t, checkStoredPages(p.URL, stored, 8), "the pages are stored")
	stopReaders := startReaders(p.URL, stored)
	defer func() {
		if stopReaders != nil {
			stopReaders()
		}
	}()

	for i, f := range originFaults(o) {
		version.Store(int64(10 + i))
		ok := t.Run(f.name, func(t *testing.T) {
			p := p.on(t)
			if f.script == nil {
				o.down()
			} else {
				o.set(f.script)
			}
			cold := fmt.Sprintf("/cold/%d", i)
			coldRV := fmt.Sprintf("/cold-revalidated/%d", i)

			// The API reports every failed key; the stored pages stay.
			res := p.revalidate("path=/stored/0&path=/stored/1&path=" + coldRV)
			assert.Equal(t, http.StatusBadGateway, res.Status, res.Body)
			api := decodeAPI(t, res)
			assert.False(t, api.Revalidated)
			assert.Contains(t, api.Message, "Error revalidating")
			if assert.Len(t, api.Results, 3, res.Body) {
				for _, r := range api.Results {
					assert.Equal(t, "failed", r.Outcome, "%s: %s", r.Path, res.Body)
					assert.Contains(t, r.Error, f.refetchError, r.Path)
					if f.fill == 0 {
						assert.GreaterOrEqual(t, r.Status, 500, "the origin's status is reported")
					}
				}
			}
			if f.fill == 0 {
				// A storm of revalidations into the storm: every one is
				// reported as failed.
				var wrong atomic.Int64
				var wg sync.WaitGroup
				for range 12 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest(http.MethodPost, p.URL+"/api/revalidate?path=/stored/2&path=/stored/3", nil)
						req.Header.Set("Authorization", "Bearer "+apiSecret)
						resp, err := p.client.Do(req)
						if err != nil {
							wrong.Add(1)
							return
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusBadGateway || strings.Count(string(b), `"outcome":"failed"`) != 2 {
							wrong.Add(1)
						}
					}()
				}
				wg.Wait()
				assert.Zero(t, wrong.Load(), "revalidations during the storm not answered 502 with two failed results")
			}

			// Concurrent fills during the fault: an error, never a partial
			// page, and nothing stored.
			for _, got := range getAll(p, cold, 6) {
				if f.fill == 0 {
					assert.GreaterOrEqual(t, got.Status, 500, got.Body)
				} else {
					assert.Equal(t, f.fill, got.Status, got.Body)
				}
				assert.NotEqual(t, "HIT", got.Header.Get("X-Cache"))
				assert.NotContains(t, got.Body, "partial")
			}
			for path, body := range stored {
				got := p.get(path)
				assert.Equal(t, "HIT", got.Header.Get("X-Cache"), path)
				assert.Equal(t, body, got.Body, path)
			}

			// The origin heals: the next good fetch is what gets stored.
			if f.script == nil {
				o.up(t)
			}
			o.set(good)
			want := versionedBody(cold, version.Load())
			if f.fill == 0 {
				// A complete 5xx made the key pass-through for PASS_TTL.
				assert.Eventually(t, func() bool {
					got, err := fetch(p.client, p.URL+cold)
					return err == nil && got.Header.Get("X-Cache") == "HIT" && got.Body == want
				}, 5*time.Second, 20*time.Millisecond, "%s is stored once the origin is good", cold)
			} else {
				got := p.get(cold)
				assert.Equal(t, http.StatusOK, got.Status)
				assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"), "a failed fill stored nothing and marked nothing")
				assert.Equal(t, want, got.Body)
				got = p.get(cold)
				assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
				assert.Equal(t, want, got.Body)
			}
			got := p.get(coldRV)
			assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"), "a failed revalidation stored nothing")
			assert.Equal(t, versionedBody(coldRV, version.Load()), got.Body)
		})
		if !ok {
			o.set(good)
		}
	}

	served, bad := stopReaders()
	stopReaders = nil
	assert.Empty(t, bad, "stored pages answered other than 200 HIT while the origin misbehaved")
	assert.Positive(t, served)
	t.Logf("%d requests for stored pages during the faults, %d not 200 HIT", served, len(bad))

	// Still serving, and a good refetch now replaces the page.
	assert.False(t, p.exited(), "run returned while faults ran")
	health, err := http.Get(p.Admin + "/healthz")
	if assert.NoError(t, err) {
		health.Body.Close()
		assert.Equal(t, http.StatusOK, health.StatusCode)
	}
	version.Store(99)
	res := p.revalidate("path=/stored/0")
	assert.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, versionedBody("/stored/0", 99), p.get("/stored/0").Body)
	assert.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, "isrproxy_requests_in_flight")
		return err == nil && v == 0
	}, 5*time.Second, 20*time.Millisecond, "no page request left in flight")
}

// Every kind of failed refetch keeps the stored page, and the
// API reports it with 502 and a result per key.
func TestFailedRefetchKeepsTheLastGoodPage(t *testing.T) {
	failures := []struct {
		name    string
		handler http.HandlerFunc
		error   string
	}{
		{"origin 503", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, "origin answered 503; previous version kept"},
		{"empty 200", func(w http.ResponseWriter, r *http.Request) {}, "previous version kept"},
		{"Set-Cookie", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Set-Cookie", "session=abc")
			io.WriteString(w, "personal")
		}, "previous version kept"},
		{"private", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "PRIVATE, max-age=60")
			io.WriteString(w, "personal")
		}, "previous version kept"},
		{"no-store", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Cache-Control", "public")
			w.Header().Add("Cache-Control", `no-store`)
			io.WriteString(w, "uncacheable")
		}, "previous version kept"},
		{"truncated body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, "only part of it")
			hijackClose(w)
		}, "previous version kept"},
		{"reset", func(w http.ResponseWriter, r *http.Request) {
			hijackClose(w)
		}, "previous version kept"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // longer than ORIGIN_TIMEOUT
		}, "origin timed out; previous version kept"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			o := newTestOrigin(t, page("good page"))
			p := startProxy(t, o.URL, map[string]string{"ORIGIN_TIMEOUT": "300ms"})
			require.Equal(t, "good page", p.get("/k").Body)

			o.set(f.handler)
			res := p.revalidate("path=/k")
			assert.Equal(t, http.StatusBadGateway, res.Status)
			api := decodeAPI(t, res)
			assert.False(t, api.Revalidated)
			assert.Contains(t, api.Message, "Error revalidating")
			require.Len(t, api.Results, 1)
			assert.Equal(t, "failed", api.Results[0].Outcome)
			assert.Contains(t, api.Results[0].Error, f.error)

			got := p.get("/k")
			assert.Equal(t, "HIT", got.Header.Get("X-Cache"))
			assert.Equal(t, "good page", got.Body)
		})
	}
}

// hijackClose drops the connection without finishing the response.
func hijackClose(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a clean close
		}
		conn.Close()
	}
}
