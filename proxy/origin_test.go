package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/semaphore"
)

// A body is counted against the buffer budget from before its first byte
// is read until its page is stored (done): a fill that cannot have its
// declared size allocates nothing and fails at once, to be passed through.
func TestFetchHoldsTheBufferBudgetUntilDone(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write([]byte(strings.Repeat("x", n)))
	}))
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	o := &origin{base: base, transport: newTransport(5*time.Second, 4),
		slots: semaphore.NewWeighted(4), buffers: semaphore.NewWeighted(1000), timeout: 5 * time.Second}
	get := func(n int) (*fetched, error) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/"+strconv.Itoa(n), nil)
		require.NoError(t, err)
		return o.fetch(context.Background(), req, 1<<20)
	}

	_, err := get(2000)
	assert.ErrorIs(t, err, errBuffersFull, "a body larger than the whole budget")
	got, err := get(600)
	require.NoError(t, err)
	assert.Len(t, got.body, 600)
	_, err = get(600)
	assert.ErrorIs(t, err, errBuffersFull, "the first body is still counted")
	got.done()
	got, err = get(600)
	require.NoError(t, err, "done gave the budget back")
	got.done()
	assert.True(t, o.buffers.TryAcquire(1000), "all of it")
}
