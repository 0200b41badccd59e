package purge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/revalidation"
)

func TestModes(t *testing.T) {
	for _, tt := range []struct {
		query, call string
		outcome     revalidation.Outcome
		status      int
	}{
		{"", "refetch", "replaced", 200},
		{"&mode=refetch", "refetch", "replaced", 200},
		{"&mode=soft", "soft", "marked", 0},
		{"&mode=purge", "purge", "purged", 0},
	} {
		t.Run(tt.call+tt.query, func(t *testing.T) {
			e := newEnv(t)
			e.index.keys[e.host()+"/tagged"] = []string{"t"}
			r := e.call(t, http.MethodPost, "/api/revalidate?path=/a&tag=t"+tt.query)
			require.Equal(t, http.StatusOK, r.Status, r.Raw)
			assert.Equal(t, []string{tt.call + " " + e.host() + " /a", tt.call + " " + e.host() + " /tagged"}, e.rev.Calls())
			assert.Equal(t, []Result{
				{Path: "/a", Status: tt.status, Outcome: tt.outcome},
				{Path: "/tagged", Status: tt.status, Outcome: tt.outcome},
			}, r.Results)
		})
	}
	e := newEnv(t)
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/a&mode=hard")
	assert.Equal(t, http.StatusBadRequest, r.Status)
	assert.JSONEq(t, `{"message":"Unknown mode \"hard\": use refetch, soft or purge"}`, r.Raw)
	r = e.call(t, http.MethodGet, "/api/revalidate?path=/a&mode=SOFT")
	assert.Equal(t, http.StatusBadRequest, r.Status)
	assert.Empty(t, e.rev.Calls())
}

func TestSuccessAnswer(t *testing.T) {
	e := newEnv(t, func(_ *Options, f *fakeRevalidator) { f.extra = map[string]int{"/b": 1} })
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/b&path=/a&path=/b")
	require.Equal(t, http.StatusOK, r.Status)
	assert.JSONEq(t, fmt.Sprintf(`{"revalidated":true,"now":%d,"results":[
		{"path":"/a","status":200,"outcome":"replaced"},
		{"path":"/b","status":200,"outcome":"replaced"},
		{"path":"/b","status":200,"outcome":"stored"}]}`, e.clock.Now().UnixMilli()), r.Raw)
	assert.Len(t, e.rev.Calls(), 2, "a key named twice is refetched once")
}

func TestEmptyMatchSucceeds(t *testing.T) {
	e := newEnv(t)
	r := e.call(t, http.MethodGet, "/api/revalidate?tag=nothing&prefix=/none/")
	require.Equal(t, http.StatusOK, r.Status)
	assert.JSONEq(t, fmt.Sprintf(`{"revalidated":true,"now":%d,"results":[]}`, e.clock.Now().UnixMilli()), r.Raw)
}

func TestFailureAnswers(t *testing.T) {
	e := newEnv(t, func(_ *Options, f *fakeRevalidator) { f.fail = map[string]bool{"/b": true, "/d": true} })
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/c&path=/b&path=/a")
	require.Equal(t, http.StatusBadGateway, r.Status)
	assert.JSONEq(t, fmt.Sprintf(`{"revalidated":false,"now":%d,
		"message":"Error revalidating: /b: origin answered 503; previous version kept",
		"results":[
		{"path":"/a","status":200,"outcome":"replaced"},
		{"path":"/b","status":503,"outcome":"failed","error":"origin answered 503; previous version kept"},
		{"path":"/c","status":200,"outcome":"replaced"}]}`, e.clock.Now().UnixMilli()), r.Raw)

	r = e.call(t, http.MethodGet, "/api/revalidate?path=/d&path=/b&path=/a")
	require.Equal(t, http.StatusBadGateway, r.Status)
	assert.Equal(t, "Error revalidating: 2 of 3 failed; first /b: origin answered 503; previous version kept", r.Message)
	assert.False(t, *r.Revalidated)
}

// A call runs its keys concurrently, on a bounded pool. synctest.Wait
// returns once every goroutine is blocked: then exactly maxWorkers
// refetches are held at the gate, neither fewer (serial) nor more.
func TestConcurrentPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rev := &fakeRevalidator{gate: make(chan struct{}), quit: make(chan struct{})}
		index := &fakeIndex{keys: map[string][]string{}}
		for i := range 3 * maxWorkers {
			index.keys[fmt.Sprintf("example.com/p/%02d", i)] = nil
		}
		h := New(Options{Secret: testSecret, Revalidator: rev, Index: index})
		defer h.Close()

		req := httptest.NewRequest(http.MethodGet, "http://example.com/api/revalidate?prefix=/p/", nil)
		req.Header.Set("Authorization", "Bearer "+testSecret)
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			h.ServeHTTP(w, req)
			close(done)
		}()

		synctest.Wait()
		rev.mu.Lock()
		assert.Equal(t, maxWorkers, rev.inFlight, "refetches held at once")
		rev.mu.Unlock()

		close(rev.gate)
		<-done
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Len(t, rev.Calls(), 3*maxWorkers)
		assert.Equal(t, maxWorkers, rev.maxInFlight)
	})
}

// A client that hangs up does not cancel the revalidation it asked for.
func TestDetachedFromClient(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/revalidate?path=/a", nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
	e.rev.mu.Lock()
	defer e.rev.mu.Unlock()
	assert.Equal(t, []bool{true}, e.rev.ctxOK, "Refetch got a live context")
}

// Close cancels a synchronous call in progress; the call answers 502.
func TestCloseCancelsSyncCall(t *testing.T) {
	gate := make(chan struct{}) // never opened
	started := make(chan string, 1)
	e := newEnv(t, func(_ *Options, f *fakeRevalidator) { f.gate, f.started = gate, started })
	done := make(chan apiReply, 1)
	go func() { done <- e.call(t, http.MethodGet, "/api/revalidate?path=/a") }()
	<-started
	e.closeWithin(t)
	var r apiReply
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not cancel the call")
	}
	assert.Equal(t, http.StatusBadGateway, r.Status)
	assert.Equal(t, []string{"/a failed"}, paths(r.Results))
}
