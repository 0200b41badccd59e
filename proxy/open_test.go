package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"
)

// openOrigin serves body with Content-Length on /sized, chunked on any
// other path, and waits pause before sending the second half.
func openOrigin(t *testing.T, body []byte, pause time.Duration) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sized" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.Header().Set("Connection", "close, X-Hop")
		w.Header().Set("X-Hop", "hop")
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case <-time.After(pause):
		case <-r.Context().Done():
			return
		}
		w.Write(body[len(body)/2:])
	}))
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	return base
}

func testOrigin(base *url.URL, timeout time.Duration, budget int64) *origin {
	return &origin{base: base, transport: newTransport(5*time.Second, 4),
		slots: semaphore.NewWeighted(4), buffers: semaphore.NewWeighted(budget),
		pass: semaphore.NewWeighted(3), timeout: timeout}
}

// A response too large to buffer is handed on open, whatever made it so
// (its declared length, the bytes read, the budget spent): its body gives
// the bytes read before and then the rest, byte-exact; ORIGIN_TIMEOUT no
// longer cuts it off; the bytes read before stay counted in the budget
// until given out; and its origin slot comes back when it is closed.
func TestFetchOpenHandsOnAResponseTooLargeToBuffer(t *testing.T) {
	const limit = 64 << 10
	body := bytes.Repeat([]byte("0123456789abcdef"), 3*limit/16)
	for _, tc := range []struct {
		name   string
		path   string
		budget int64
		want   error
	}{
		{"declared too large", "/sized", 1 << 20, errTooLarge},
		{"read too large", "/chunked", 1 << 20, errTooLarge},
		{"budget spent up front", "/sized", limit / 4, errBuffersFull},
		{"budget spent while reading", "/chunked", limit / 4, errBuffersFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := body
			if tc.want == errBuffersFull {
				body = body[:limit] // not too large: the budget is too small
			}
			base := openOrigin(t, body, 300*time.Millisecond)
			o := testOrigin(base, 100*time.Millisecond, tc.budget)
			req, err := http.NewRequest(http.MethodGet, base.String()+tc.path, nil)
			require.NoError(t, err)
			got, open, err := o.fetchOpen(context.Background(), req, limit)
			require.ErrorIs(t, err, tc.want)
			assert.Nil(t, got)
			require.NotNil(t, open, "the response is handed on open")
			assert.Equal(t, http.StatusOK, open.StatusCode)
			assert.Empty(t, open.Header.Get("X-Hop"), "hop-by-hop headers are removed")
			assert.False(t, o.slots.TryAcquire(4), "the open response holds its origin slot")
			if len(open.Body.(*openBody).read) > 0 {
				assert.False(t, o.buffers.TryAcquire(tc.budget), "the bytes read before are still counted")
			}
			all, err := io.ReadAll(open.Body) // the second half comes after ORIGIN_TIMEOUT
			require.NoError(t, err, "ORIGIN_TIMEOUT does not cut off a response handed on")
			assert.True(t, bytes.Equal(body, all), "whole and byte-exact: %d bytes of %d", len(all), len(body))
			assert.True(t, o.buffers.TryAcquire(tc.budget), "the budget is back once the bytes are given out")
			o.buffers.Release(tc.budget)
			require.NoError(t, open.Body.Close())
			require.NoError(t, open.Body.Close(), "closing twice is harmless")
			assert.True(t, o.slots.TryAcquire(4), "closing gave the slot back")
		})
	}
}

// A response handed on open and closed unread gives back its slot and
// its budget, and its origin connection is ended.
func TestAnOpenResponseClosedUnreadGivesAllBack(t *testing.T) {
	const limit = 16 << 10
	body := bytes.Repeat([]byte("x"), 8*limit)
	base := openOrigin(t, body, time.Hour)
	o := testOrigin(base, 5*time.Second, 1<<20)
	req, err := http.NewRequest(http.MethodGet, base.String()+"/chunked", nil)
	require.NoError(t, err)
	_, open, err := o.fetchOpen(context.Background(), req, limit)
	require.ErrorIs(t, err, errTooLarge)
	require.NotNil(t, open)
	assert.False(t, o.buffers.TryAcquire(1<<20), "the bytes read are counted")
	open.Body.(*openBody).takeShare(o.pass)
	assert.False(t, o.pass.TryAcquire(3), "it holds a pass-through share")
	open.Body.Close()
	assert.True(t, o.slots.TryAcquire(4))
	assert.True(t, o.buffers.TryAcquire(1<<20))
	assert.True(t, o.pass.TryAcquire(3))
}

// fetch, for refetches, never hands a response on: a too large one is
// closed, its slot given back.
func TestFetchClosesAResponseTooLargeToBuffer(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 64<<10)
	base := openOrigin(t, body, time.Hour)
	o := testOrigin(base, 5*time.Second, 1<<20)
	req, err := http.NewRequest(http.MethodGet, base.String()+"/chunked", nil)
	require.NoError(t, err)
	got, err := o.fetch(context.Background(), req, 1<<10)
	assert.ErrorIs(t, err, errTooLarge)
	assert.Nil(t, got)
	assert.True(t, o.slots.TryAcquire(4))
	assert.True(t, o.buffers.TryAcquire(1<<20))
}

// A fetch cut off by ORIGIN_TIMEOUT reads as a timeout (504), waiting for
// a slot or for the origin.
func TestFetchTimeoutIsATimeout(t *testing.T) {
	base := openOrigin(t, []byte("0123456789"), time.Hour)
	o := testOrigin(base, 50*time.Millisecond, 1<<20)
	req, err := http.NewRequest(http.MethodGet, base.String()+"/sized", nil)
	require.NoError(t, err)
	_, err = o.fetch(context.Background(), req, 1<<20)
	require.Error(t, err)
	assert.Equal(t, http.StatusGatewayTimeout, statusFor(err), "%v", err)
	assert.True(t, o.slots.TryAcquire(4))
	o.slots.Release(4)

	require.True(t, o.slots.TryAcquire(4)) // every slot taken
	_, err = o.fetch(context.Background(), req, 1<<20)
	require.Error(t, err)
	assert.Equal(t, http.StatusGatewayTimeout, statusFor(err), "%v", err)
}

// The handoff gives an open response to the visitor who waits, or tells
// the fill that the visitor has gone: exactly one side owns it.
func TestHandoff(t *testing.T) {
	resp := &http.Response{}
	var h handoff
	require.True(t, h.give(resp), "the visitor still waits")
	assert.Same(t, resp, h.take())
	assert.Nil(t, h.take(), "taken once")

	var gone handoff
	assert.Nil(t, gone.take(), "the visitor went away before anything came")
	assert.False(t, gone.give(resp), "then the fill keeps (and closes) what it has")
}
