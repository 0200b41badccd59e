package purge_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/purge"
	"github.com/isrproxy/isrproxy/revalidation"
)

// pages is a Revalidator that refetches every key successfully.
type pages struct{}

func (pages) Refetch(_ context.Context, key cache.Key) []revalidation.Result {
	return []revalidation.Result{{Target: key.Target(), Status: http.StatusOK, Outcome: revalidation.Replaced}}
}

func (pages) MarkStale(key cache.Key) []revalidation.Result {
	return []revalidation.Result{{Target: key.Target(), Outcome: revalidation.Marked}}
}

func (pages) Purge(key cache.Key) []revalidation.Result {
	return []revalidation.Result{{Target: key.Target(), Outcome: revalidation.Purged}}
}

func ExampleHandler() {
	h := purge.New(purge.Options{
		Secret:      "0123456789abcdef",
		Revalidator: pages{},
		Now:         func() time.Time { return time.UnixMilli(1767225600000) },
	})
	defer h.Close()

	req := httptest.NewRequest(http.MethodGet, "/api/revalidate?path=/blog/hello&path=/", nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	fmt.Print(w.Code, " ", w.Body.String())
	// Output:
	// 200 {"revalidated":true,"now":1767225600000,"results":[{"path":"/","status":200,"outcome":"replaced"},{"path":"/blog/hello","status":200,"outcome":"replaced"}]}
}
