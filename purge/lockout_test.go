package purge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockout(t *testing.T) {
	e := newEnv(t)
	wrong := func() apiReply {
		return e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate?path=/a", nil, "Authorization", "Bearer wrong"))
	}
	// Ten failures, one a second, then the 11th: all 401.
	for i := range lockoutLimit {
		if i > 0 {
			e.clock.Advance(time.Second)
		}
		r := wrong()
		require.Equal(t, http.StatusUnauthorized, r.Status, "failure %d", i+1)
		assert.Empty(t, r.Header.Get("Retry-After"))
	}
	// Locked: even the right secret gets 429, until the first failure is
	// 60 s old: 49.75 s from now, rounded up.
	e.clock.Advance(250 * time.Millisecond)
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/a")
	assert.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Equal(t, "50", r.Header.Get("Retry-After"))
	// Jobs and unknown sub-paths too; forwarded headers change nothing.
	assert.Equal(t, http.StatusTooManyRequests, e.call(t, http.MethodGet, "/api/revalidate/jobs/0123456789abcdef0123456789abcdef").Status)
	assert.Equal(t, http.StatusTooManyRequests, e.call(t, http.MethodGet, "/api/revalidate/nope").Status)
	assert.Equal(t, http.StatusTooManyRequests,
		e.call(t, http.MethodGet, "/api/revalidate?path=/a", "X-Forwarded-For", "203.0.113.9", "X-Real-Ip", "203.0.113.9").Status)
	// The method is checked before the lockout.
	assert.Equal(t, http.StatusMethodNotAllowed, e.call(t, http.MethodPut, "/api/revalidate?path=/a").Status)

	e.clock.Advance(49*time.Second + 250*time.Millisecond) // 0.5 s before the first failure leaves the window
	r = e.call(t, http.MethodGet, "/api/revalidate?path=/a")
	assert.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Equal(t, "1", r.Header.Get("Retry-After"), "rounded up, never 0")
	assert.Empty(t, e.rev.Calls(), "nothing ran while locked")

	e.clock.Advance(500 * time.Millisecond) // ten failures left in the window
	r = e.call(t, http.MethodGet, "/api/revalidate?path=/a")
	assert.Equal(t, http.StatusOK, r.Status, r.Raw)

	// One more failure makes eleven in the window again: 401, then locked
	// until the second failure (at +1 s) is 60 s old.
	assert.Equal(t, http.StatusUnauthorized, wrong().Status)
	r = e.call(t, http.MethodGet, "/api/revalidate?path=/a")
	assert.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Equal(t, "1", r.Header.Get("Retry-After"))
	assert.JSONEq(t, `{"message":"Too many failed attempts; retry later"}`, r.Raw)
}

// The lockout is per TCP peer address, not per forwarded header.
func TestLockoutPerPeer(t *testing.T) {
	e := newEnv(t)
	serve := func(peer, secret string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/revalidate?path=/a", nil)
		req.RemoteAddr = peer
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		return w
	}
	for i := range lockoutLimit {
		assert.Equal(t, http.StatusUnauthorized, serve(fmt.Sprintf("192.0.2.1:%d", 40000+i), "wrong").Code)
	}
	assert.Equal(t, http.StatusTooManyRequests, serve("192.0.2.1:50000", testSecret).Code, "any port of the address")
	assert.Equal(t, http.StatusOK, serve("192.0.2.2:40000", testSecret).Code, "another address")
	assert.Equal(t, http.StatusOK, serve("[2001:db8::1]:40000", testSecret).Code)
}

func TestLockoutTable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLockout(3)
	for i := range 5 {
		l.fail(fmt.Sprintf("10.0.0.%d", i), t0)
	}
	assert.Len(t, l.peers, 3, "bounded")

	for range 2 * lockoutLimit {
		l.fail("10.0.0.9", t0)
	}
	assert.Len(t, l.peers["10.0.0.9"], lockoutLimit, "an address keeps its last failures only")
	wait, locked := l.check("10.0.0.9", t0.Add(30*time.Second))
	assert.True(t, locked)
	assert.Equal(t, 30*time.Second, wait)

	l.fail("10.0.0.10", t0.Add(lockoutWindow)) // a sweep forgets every expired address
	assert.Equal(t, []string{"10.0.0.10"}, keys(l.peers))
	_, locked = l.check("10.0.0.9", t0.Add(lockoutWindow))
	assert.False(t, locked)
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
