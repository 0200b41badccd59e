package main

// Age, X-Cache and Cache-Status: every answer says how it was made and how
// old a stored page is; the origin's own cache headers never mislabel it.

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every answer carries Cache-Status (and X-Cache) saying how it was made,
// and an answer from memory carries Age: the origin's own Age plus the
// whole seconds since the page was stored.
func TestAgeAndCacheStatusTellHowAnAnswerWasMade(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"on each kind of answer", ageAndCacheStatusHeaders},
		{"Age arithmetic", ageArithmetic},
	} {
		t.Run(tc.name, tc.run)
	}
}

// Age and Cache-Status on each kind of answer.
func ageAndCacheStatusHeaders(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/aged" {
			w.Header().Set("Age", "100")
		}
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)

	start := time.Now()
	miss := p.get("/fresh")
	assert.Equal(t, "MISS", miss.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=miss; stored", miss.Header.Get("Cache-Status"))
	assert.Empty(t, miss.Header.Values("Age"), "a MISS of a page without Age carries none")
	hit := p.get("/fresh")
	assert.Equal(t, "HIT", hit.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; hit", hit.Header.Get("Cache-Status"))
	age, err := strconv.Atoi(hit.Header.Get("Age"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, age, 0)
	assert.LessOrEqual(t, age, int(time.Since(start)/time.Second))

	bypass := p.get("/fresh", "Authorization", "Bearer x")
	assert.Equal(t, "BYPASS", bypass.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=bypass", bypass.Header.Get("Cache-Status"))
	post := p.request(http.MethodPost, "/fresh", nil)
	assert.Equal(t, "BYPASS", post.Header.Get("X-Cache"))
	assert.Equal(t, "isrproxy; fwd=bypass", post.Header.Get("Cache-Status"))

	// The origin's own Age plus whole seconds since stored.
	start = time.Now()
	p.get("/aged")
	hit = p.get("/aged")
	age, err = strconv.Atoi(hit.Header.Get("Age"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, age, 100)
	assert.LessOrEqual(t, age, 100+int(time.Since(start)/time.Second))
	require.Eventually(t, func() bool {
		resp, err := p.client.Get(p.URL + "/aged")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.Header.Get("Age") == "101"
	}, 5*time.Second, 50*time.Millisecond, "Age grows by the seconds since stored")
}

// Age (RFC 9111 §4.2.3) is the origin's own Age plus the whole
// seconds since the page was stored; a replacement starts again from its
// own fetch; an Age that is not a number counts as none, and one too large
// to represent as 2^31 (RFC 9111 §1.2.2).
func ageArithmetic(t *testing.T) {
	var originAge atomic.Pointer[string]
	setAge := func(s string) { originAge.Store(&s) }
	setAge("100")
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if a := *originAge.Load(); a != "-" {
			w.Header().Set("Age", a)
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<p>aged</p>")
	})
	p := startProxy(t, o.URL, nil)
	age := func(a answer) int64 {
		t.Helper()
		require.Len(t, a.Header.Values("Age"), 1, "one Age line")
		v, err := strconv.ParseInt(a.Header.Get("Age"), 10, 64)
		require.NoError(t, err, "Age %q", a.Header.Get("Age"))
		return v
	}
	inRange := func(what string, got, lo, hi int64) {
		t.Helper()
		assert.True(t, lo <= got && got <= hi, "%s: Age %d not in [%d, %d]", what, got, lo, hi)
	}

	start := time.Now()
	p.get("/age")
	inRange("HIT", age(assertStored(t, p, o, "/age")), 100, 101)
	inRange("HEAD", age(p.request(http.MethodHead, "/age", nil)), 100, 101)
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	inRange("HIT after a second", age(assertStored(t, p, o, "/age")), 101, 102)

	// A replacement starts again from its own fetch and its own Age.
	setAge("5")
	require.Equal(t, http.StatusOK, p.revalidate("path=/age").Status)
	inRange("replaced", age(assertStored(t, p, o, "/age")), 5, 6)
	setAge("-")
	require.Equal(t, http.StatusOK, p.revalidate("path=/age").Status)
	inRange("replaced without Age", age(assertStored(t, p, o, "/age")), 0, 1)

	for i, bad := range []string{"abc", "-5", "1.5", "", " ", "0x10", "1e3"} {
		setAge(bad)
		path := fmt.Sprintf("/age/bad/%d", i)
		p.get(path)
		inRange(fmt.Sprintf("origin Age %q", bad), age(assertStored(t, p, o, path)), 0, 1)
	}
	setAge("99999999999999999999")
	p.get("/age/huge")
	assert.GreaterOrEqual(t, age(assertStored(t, p, o, "/age/huge")), int64(2147483648), "an Age too large to represent counts as 2^31")
}

// The origin's own X-Cache, Cache-Status and Age never mislabel an answer:
// isrproxy's replace them, on stored and pass-through answers.
func TestOriginCacheHeadersAreReplaced(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cache", "HIT from upstream")
		w.Header().Set("Cache-Status", "upstream; hit")
		io.WriteString(w, "page")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/oc")
	hit := p.get("/oc")
	assert.Equal(t, []string{"HIT"}, hit.Header.Values("X-Cache"))
	assert.Equal(t, []string{"isrproxy; hit"}, hit.Header.Values("Cache-Status"))
	bypass := p.get("/oc", "Authorization", "Bearer x")
	assert.Equal(t, []string{"BYPASS"}, bypass.Header.Values("X-Cache"))
	assert.Equal(t, []string{"isrproxy; fwd=bypass"}, bypass.Header.Values("Cache-Status"))
}
