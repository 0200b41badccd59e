package main

// Slow and abandoned clients hold up nobody: readers of one byte a second,
// half-sent requests, slowloris headers and trickled uploads leave other
// visitors, fills and revalidations unaffected.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Uploads trickled by anyone hold origin slots for as long as they last:
// they may hold only their share of ORIGIN_MAX_CONCURRENCY, so fills and
// the revalidate API still reach the origin.
func TestSlowUploadsCannotStarveFillsAndRevalidations(t *testing.T) {
	var uploads atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			uploads.Add(1)
			io.Copy(io.Discard, r.Body) // as long as the client trickles
			return
		}
		io.WriteString(w, "<p>page</p>")
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_MAX_CONCURRENCY": "4"})
	for i := range 6 {
		conn, err := net.Dial("tcp", hostPort(p.URL))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "POST /up/%d HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 1000\r\n\r\nabc", i)
	}
	require.Eventually(t, func() bool { return uploads.Load() == 3 }, 5*time.Second, 5*time.Millisecond,
		"pass-through holds 3 of the 4 slots")

	got := p.get("/fresh")
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	res := p.revalidate("path=/fresh2")
	assert.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.EqualValues(t, 3, uploads.Load(), "the other uploads wait their turn")
}

// storeClientPages starts an origin and an instance with a small page
// and the 4 MiB /big stored, for the client-side tests.
func storeClientPages(t *testing.T) (*rawOrigin, *instance, map[string]string) {
	t.Helper()
	var version atomic.Int64
	version.Store(1)
	o := newRawOrigin(t, nil)
	o.set(goodScript(&version))
	p := startProxy(t, o.URL(), quietLogs)
	pages := map[string]string{}
	for _, path := range []string{"/stored/0", "/stored/1"} {
		got := p.get(path)
		require.Equal(t, http.StatusOK, got.Status, got.Body)
		pages[path] = got.Body
	}
	big := p.get("/big")
	require.Equal(t, http.StatusOK, big.Status)
	require.True(t, bytes.Equal(bigBody, []byte(big.Body)), "the big page arrived whole")
	require.Equal(t, "HIT", p.get("/big").Header.Get("X-Cache"), "the big page is stored")
	return o, p, pages
}

// assertVisitorsUnaffected checks that, meanwhile, normal visitors get the
// stored pages (and the big one whole), and a new page fills.
func assertVisitorsUnaffected(t *testing.T, p *instance, pages map[string]string, fresh string) {
	t.Helper()
	assert.Empty(t, checkStoredPages(p.URL, pages, 200), "visitors of stored pages")
	big, err := fetch(p.client, p.URL+"/big")
	if assert.NoError(t, err) {
		assert.Equal(t, http.StatusOK, big.Status)
		assert.Equal(t, "HIT", big.Header.Get("X-Cache"))
		assert.True(t, bytes.Equal(bigBody, []byte(big.Body)), "a normal reader gets the big page whole")
	}
	got := p.get(fresh)
	assert.Equal(t, http.StatusOK, got.Status, got.Body)
	assert.Equal(t, "isrproxy; fwd=miss; stored", got.Header.Get("Cache-Status"))
}

// assertNoHandlerHeld checks that, while the bad clients are still
// connected, no request is in flight. The visitors' own requests end a
// moment after their answers leave (the handler's accounting runs after
// the last byte is written), so it waits for that; a request held by a bad
// client would keep the gauge above zero until the test stops it.
func assertNoHandlerHeld(t *testing.T, p *instance, msg string) {
	t.Helper()
	assert.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, "isrproxy_requests_in_flight")
		return err == nil && v == 0
	}, 10*time.Second, 10*time.Millisecond, msg)
}

// Clients that read a large stored page one byte a second hold a handler
// each (their writes block), and nobody else notices.
func TestSlowReadersDoNotHoldUpOtherVisitors(t *testing.T) {
	_, p, pages := storeClientPages(t)
	stop := slowReaders(t, p, 8)
	defer stop()
	require.Eventually(t, func() bool {
		v, err := metricErr(p.Admin, "isrproxy_requests_in_flight")
		return err == nil && v >= 8
	}, 10*time.Second, 20*time.Millisecond, "the slow readers hold their handlers (their writes block)")

	assertVisitorsUnaffected(t, p, pages, "/fresh/slow-readers")
	stop()
	waitForRequests(t, p, 0)
}

// Connections that send half a request line (or nothing) and are left
// open take no handler and leave other visitors unaffected.
func TestAbandonedConnectionsDoNotHoldUpOtherVisitors(t *testing.T) {
	_, p, pages := storeClientPages(t)
	conns := abandonedConns(t, p, 100)
	assertVisitorsUnaffected(t, p, pages, "/fresh/abandoned")
	assertNoHandlerHeld(t, p, "an abandoned request never reaches a handler")
	for _, c := range conns {
		c.Close()
	}
	waitForRequests(t, p, 0)
}

// Slowloris: clients that send a header line every 100 ms, never ending
// their request; other visitors are unaffected meanwhile.
func TestSlowlorisHeadersDoNotHoldUpOtherVisitors(t *testing.T) {
	_, p, pages := storeClientPages(t)
	stop := slowloris(t, p, 20, 30)
	defer stop()
	assertVisitorsUnaffected(t, p, pages, "/fresh/slowloris")
	time.Sleep(300 * time.Millisecond) // a few more header lines arrive
	assertVisitorsUnaffected(t, p, pages, "/fresh/slowloris-2")
	assertNoHandlerHeld(t, p, "an unfinished header block never reaches a handler")
	stop()
	waitForRequests(t, p, 0)
}
