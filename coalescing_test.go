package main

// One fetch per key: visitors who miss at once wait on a single fill, which
// completes even when the visitor who started it leaves, and the origin
// never sees more than ORIGIN_MAX_CONCURRENCY requests at once.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A visitor who hangs up does not stop the fill: it completes and stores
// the page for the next visitor.
func TestFillContinuesWhenVisitorLeaves(t *testing.T) {
	gate := newGate()
	arrived := make(chan struct{}, 10)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		gate.wait(r)
		io.WriteString(w, "filled")
	})
	p := startProxy(t, o.URL, nil)
	gate.openAtCleanup(t)

	req, err := http.NewRequest(http.MethodGet, p.URL+"/leave", nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		resp, err := p.client.Do(req.WithContext(ctx))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	assert.Error(t, <-errc)
	waitForRequests(t, p, 0)
	gate.open()
	require.Eventually(t, func() bool {
		return p.get("/leave").Header.Get("X-Cache") == "HIT"
	}, 5*time.Second, 10*time.Millisecond)
	assert.EqualValues(t, 1, o.hits.Load())
}

// The visitor whose request started a fill hanging up does not fail the
// visitors waiting on it.
func TestFetcherLeavingDoesNotFailWaiters(t *testing.T) {
	gate := newGate()
	arrived := make(chan struct{}, 10)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		gate.wait(r)
		io.WriteString(w, "shared")
	})
	p := startProxy(t, o.URL, nil)
	gate.openAtCleanup(t)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/lead", nil)
		resp, err := p.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	wait := launchGets(t, p, "/lead", 3)
	waitForRequests(t, p, 4)
	cancel()
	assert.Error(t, <-errc)
	waitForRequests(t, p, 3)
	gate.open()
	for _, a := range wait() {
		assert.Equal(t, http.StatusOK, a.Status)
		assert.Equal(t, "shared", a.Body)
	}
	assert.EqualValues(t, 1, o.hits.Load())
}

// ORIGIN_MAX_CONCURRENCY: at most that many origin requests are in flight;
// the others wait their turn and are then answered.
func TestOriginMaxConcurrencyLimitsOriginRequests(t *testing.T) {
	gate := newGate()
	var now, peak atomic.Int64
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		gate.wait(r)
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_MAX_CONCURRENCY": "2"})
	gate.openAtCleanup(t)

	var waits []func() []answer
	for i := range 3 {
		waits = append(waits, launchGets(t, p, fmt.Sprintf("/m/%d", i), 1))
	}
	waits = append(waits, launchGets(t, p, "/m/x", 2, "Authorization", "Bearer x")) // pass-through counts too
	waitForRequests(t, p, 5)
	require.Eventually(t, func() bool { return o.hits.Load() == 2 }, 5*time.Second, 5*time.Millisecond)
	assert.Never(t, func() bool { return o.hits.Load() > 2 }, 300*time.Millisecond, 10*time.Millisecond,
		"more origin requests than ORIGIN_MAX_CONCURRENCY")
	gate.open()
	for _, w := range waits {
		for _, a := range w() {
			assert.Equal(t, http.StatusOK, a.Status)
		}
	}
	assert.EqualValues(t, 2, peak.Load())
	assert.EqualValues(t, 5, o.hits.Load())
}
