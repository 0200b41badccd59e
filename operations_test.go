package main

// Operations: one access-log line per request, never the secret, and a
// stopped instance leaves no goroutine behind, whatever its clients and
// its origin did.

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// One access-log line per request, with method, path, status, cache
// status, duration and bytes.
func TestAccessLogLinePerRequest(t *testing.T) {
	o := newTestOrigin(t, page("<p>logged</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/logged?a=1")
	p.get("/logged?a=1")
	lines := p.accessLog()
	require.Len(t, lines, 2, "one line per request:\n%s", p.logs.String())
	for i, want := range []string{"MISS", "HIT"} {
		l := lines[i]
		assert.Equal(t, "GET", l["method"])
		assert.Equal(t, "/logged?a=1", l["path"])
		assert.EqualValues(t, 200, l["status"])
		assert.Equal(t, want, l["cache"])
		assert.Contains(t, l, "duration")
		assert.EqualValues(t, len("<p>logged</p>"), l["bytes"])
	}
}

// The secret never appears in a log line, however the query
// spells its parameter name.
func TestAccessLogNeverShowsTheSecret(t *testing.T) {
	o := newTestOrigin(t, page("<p>s</p>"))
	p := startProxy(t, o.URL, map[string]string{"LOG_LEVEL": "debug"})
	p.get("/s")
	for _, q := range []string{"secret=" + apiSecret, "%73ecret=" + apiSecret, "se%63ret=" + apiSecret, "path=/s&secret=" + apiSecret} {
		// Accepted or not, the secret must not be logged.
		p.request(http.MethodPost, "/api/revalidate?"+q+"&path=/s", nil)
	}
	p.request(http.MethodPost, "/api/revalidate?path=/s", nil, "Authorization", "Bearer "+apiSecret)
	p.get("/s?secret=" + apiSecret)
	// Where no parameter is named secret: in a page path, in the value of
	// a target, percent-encoded.
	p.get("/api/revalidate;secret=" + apiSecret)
	p.revalidate("path=/x%3Fsecret%3D" + apiSecret)
	p.revalidate("path=/x%3Fa%3D%74" + apiSecret[1:]) // %74 is the secret's first letter, t
	p.accessLog()                                     // every request's line is written
	for line := range strings.SplitSeq(p.logs.String(), "\n") {
		assert.NotContains(t, line, apiSecret, "the secret is in a log line")
	}
}

// After an instance has lived through origin faults, failed fills and
// refetches, slow readers, abandoned connections and slowloris clients,
// and has been stopped, no goroutine of it is left.
func TestNoGoroutineIsLeftAfterFaultsAndSlowClients(t *testing.T) {
	// Every goroutine that runs now is the test process's own, not the
	// instance's: only those may still run once it has stopped.
	before := goleak.IgnoreCurrent()

	var version atomic.Int64
	version.Store(1)
	o := newRawOrigin(t, nil)
	good := goodScript(&version)
	o.set(good)
	fp := startProxy(t, o.URL(), map[string]string{"LOG_LEVEL": "error", "ORIGIN_TIMEOUT": "300ms", "PASS_TTL": "100ms"})
	p := fp
	pages := map[string]string{}
	// The warm-up is not what this test checks: on a loaded machine a
	// fill may take longer than the short ORIGIN_TIMEOUT the faults need,
	// so each page gets a few tries.
	warm := func(path string) answer {
		var got answer
		for range 5 {
			if got = p.get(path); got.Status == http.StatusOK {
				break
			}
		}
		require.Equal(t, http.StatusOK, got.Status, got.Body)
		return got
	}
	for _, path := range []string{"/stored/0", "/stored/1"} {
		pages[path] = warm(path).Body
	}
	warm("/big")

	during := 0
	for i, f := range originFaults(o) {
		if f.script == nil {
			o.down()
		} else {
			o.set(f.script)
		}
		res := p.revalidate("path=/stored/0")
		assert.Equal(t, http.StatusBadGateway, res.Status, "%s: %s", f.name, res.Body)
		for _, got := range getAll(p, fmt.Sprintf("/cold/%d", i), 4) {
			assert.GreaterOrEqual(t, got.Status, 500, "%s: %s", f.name, got.Body)
		}
		if f.script == nil {
			o.up(t)
		}
		o.set(good)
		during = max(during, runtime.NumGoroutine())
	}

	stopSlow := slowReaders(t, p, 4)
	abandoned := abandonedConns(t, p, 40)
	stopLoris := slowloris(t, p, 10, 10)
	require.Eventually(t, func() bool {
		v, err := metricErr(fp.Admin, "isrproxy_requests_in_flight")
		return err == nil && v >= 4
	}, 10*time.Second, 20*time.Millisecond, "the slow readers hold their handlers")
	assert.Empty(t, checkStoredPages(p.URL, pages, 200))
	during = max(during, runtime.NumGoroutine())
	stopSlow()
	stopLoris()
	for _, c := range abandoned {
		c.Close()
	}
	waitForRequests(t, fp, 0)

	require.NoError(t, fp.stop(), "run returns nil once cancelled")
	o.close()
	http.DefaultClient.CloseIdleConnections() // metricErr's
	goleak.VerifyNone(t, before)              // retries for a while: goroutines take a moment to end
	t.Logf("goroutines: up to %d during, %d after", during, runtime.NumGoroutine())
}

// SIGTERM with a client still reading slowly: run stops within
// SHUTDOWN_TIMEOUT, returns nil (so the process exits 0), and then holds no
// connection and no goroutine for that client: the process really stops
// serving when run returns, whatever its clients do.
func TestShutdownLeavesNothingRunningForASlowReader(t *testing.T) {
	before := goleak.IgnoreCurrent()

	var version atomic.Int64
	o := newRawOrigin(t, nil)
	o.set(goodScript(&version))
	fp := startProxy(t, o.URL(), map[string]string{"LOG_LEVEL": "error", "SHUTDOWN_TIMEOUT": "1s"})
	require.Equal(t, http.StatusOK, fp.get("/big").Status)
	stop := slowReaders(t, fp, 2)
	defer stop()
	require.Eventually(t, func() bool {
		v, err := metricErr(fp.Admin, "isrproxy_requests_in_flight")
		return err == nil && v >= 2
	}, 10*time.Second, 20*time.Millisecond, "the slow readers hold their handlers")
	http.DefaultClient.CloseIdleConnections()

	assert.NoError(t, fp.stop(), "run's answer to a shutdown that outlasts SHUTDOWN_TIMEOUT")
	o.close()
	// The slow readers are still connected and still reading: nothing of
	// the stopped instance may wait on them.
	goleak.VerifyNone(t, before,
		goleak.IgnoreAnyFunction("github.com/isrproxy/isrproxy.slowReaders.func1")) // the two readers' own goroutines
	stop()
}
