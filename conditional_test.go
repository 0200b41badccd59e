package main

// Conditional requests (If-None-Match, If-Modified-Since) are answered from
// memory, with the comparison rules of HTTP semantics.

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Conditional requests are answered from memory, 304 when the stored page
// matches: If-None-Match with weak comparison decides over
// If-Modified-Since.
func TestConditionalRequestsAreAnsweredFromMemory(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"basic validators", conditionalRequestsAreAnsweredFromMemory},
		{"strong and weak validators", conditionalAnswersForStrongAndWeakValidators},
	} {
		t.Run(tc.name, tc.run)
	}
}

// Conditional requests are answered 304 from memory.
func conditionalRequestsAreAnsweredFromMemory(t *testing.T) {
	const lastMod = "Mon, 01 Jan 2024 10:00:00 GMT"
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", lastMod)
		io.WriteString(w, "<p>page</p>")
	})
	p := startProxy(t, o.URL, nil)
	p.get("/c")
	gate := newGate()
	gate.openAtCleanup(t)
	o.set(func(w http.ResponseWriter, r *http.Request) { gate.wait(r) }) // the origin answers nothing now

	for _, tc := range []struct {
		header []string
		want   int
	}{
		{[]string{"If-None-Match", `"v1"`}, http.StatusNotModified},
		{[]string{"If-None-Match", `W/"v1"`}, http.StatusNotModified},
		{[]string{"If-None-Match", `"x", W/"v1"`}, http.StatusNotModified},
		{[]string{"If-None-Match", `*`}, http.StatusNotModified},
		{[]string{"If-None-Match", `"v1"`, "Accept-Encoding", "gzip"}, http.StatusNotModified},
		{[]string{"If-None-Match", `"v2"`}, http.StatusOK},
		{[]string{"If-Modified-Since", lastMod}, http.StatusNotModified},
		{[]string{"If-Modified-Since", "Tue, 02 Jan 2024 10:00:00 GMT"}, http.StatusNotModified},
		{[]string{"If-Modified-Since", "Sun, 31 Dec 2023 10:00:00 GMT"}, http.StatusOK},
		{[]string{"If-None-Match", `"v2"`, "If-Modified-Since", lastMod}, http.StatusOK}, // If-None-Match decides
	} {
		got := assertStored(t, p, o, "/c", tc.header...)
		assert.Equal(t, tc.want, got.Status, "%q", tc.header)
		if tc.want == http.StatusNotModified {
			assert.Empty(t, got.Body)
			assert.NotEmpty(t, got.Header.Get("ETag"))
		} else {
			assert.NotEmpty(t, got.Body)
		}
	}
	assert.EqualValues(t, 1, o.hits.Load())
}

// Conditional requests are answered from memory (docs/behaviour.md#conditional-requests, RFC 9110 §13):
// If-None-Match with weak comparison, in list and wildcard forms, takes
// precedence over If-Modified-Since, which compares with Last-Modified.
// Validators for an uncompressed body are kept strong; a body isrproxy
// compressed has a weak ETag, which weak comparison still matches.
func conditionalAnswersForStrongAndWeakValidators(t *testing.T) {
	const lastMod = "Mon, 01 Jan 2024 10:00:00 GMT"
	const before = "Mon, 01 Jan 2024 09:59:59 GMT"
	const after = "Mon, 01 Jan 2024 10:00:01 GMT"
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"} {
			assert.Empty(t, r.Header.Values(name), "a fill carried %s", name)
		}
		h := w.Header()
		h.Set("Last-Modified", lastMod)
		switch r.URL.Path {
		case "/cond/strong":
			h.Set("ETag", `"v1"`)
			h.Set("Content-Type", "application/octet-stream")
		case "/cond/weak":
			h.Set("ETag", `W/"v1"`)
			h.Set("Content-Type", "application/octet-stream")
		case "/cond/compressed":
			h.Set("ETag", `"v1"`)
			h.Set("Content-Type", "text/html")
		case "/cond/missing":
			h.Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, strings.Repeat("<p>conditional</p>", 10))
	})
	p := startProxy(t, o.URL, map[string]string{"COMPRESS_MIN_BYTES": "0"}) // its small pages stored gzipped

	// The fill never forwards the visitor's conditions; the visitor still
	// gets its 304, and the page is stored whole.
	fill := p.get("/cond/strong", "If-None-Match", `"v1"`, "If-Modified-Since", lastMod)
	assert.Equal(t, http.StatusNotModified, fill.Status)
	assert.Equal(t, "MISS", fill.Header.Get("X-Cache"))
	full := assertStored(t, p, o, "/cond/strong")
	assert.Equal(t, http.StatusOK, full.Status)
	assert.Equal(t, `"v1"`, full.Header.Get("ETag"), "an uncompressed body keeps its strong ETag")
	p.get("/cond/weak")
	p.get("/cond/compressed")
	p.get("/cond/missing")

	cases := []struct {
		header []string
		want   int
	}{
		{[]string{"If-None-Match", `"v1"`}, 304},
		{[]string{"If-None-Match", `W/"v1"`}, 304},
		{[]string{"If-None-Match", `"v0", "v1"`}, 304},
		{[]string{"If-None-Match", `"v0","v1"`}, 304},
		{[]string{"If-None-Match", `W/"v0", W/"v1", "v2"`}, 304},
		{[]string{"If-None-Match", `"v0"`, "If-None-Match", `"v1"`}, 304},
		{[]string{"If-None-Match", `*`}, 304},
		{[]string{"If-None-Match", `"v0"`}, 200},
		{[]string{"If-None-Match", `"V1"`}, 200},
		{[]string{"If-None-Match", `v1`}, 200},
		{[]string{"If-None-Match", `"v1`}, 200},
		{[]string{"If-None-Match", `W/"v0"`}, 200},
		{[]string{"If-None-Match", `"v0"`, "If-None-Match", `"v2"`}, 200},
		{[]string{"If-Modified-Since", lastMod}, 304},
		{[]string{"If-Modified-Since", after}, 304},
		{[]string{"If-Modified-Since", before}, 200},
		{[]string{"If-Modified-Since", "Sunday, 31-Dec-23 10:00:00 GMT"}, 200},
		{[]string{"If-Modified-Since", "Tue, 02 Jan 2024 10:00:00 GMT"}, 304},
		{[]string{"If-Modified-Since", "not a date"}, 200},
		{[]string{"If-None-Match", `"v0"`, "If-Modified-Since", after}, 200},
		{[]string{"If-None-Match", `"v1"`, "If-Modified-Since", before}, 304},
	}
	for _, path := range []string{"/cond/strong", "/cond/weak", "/cond/compressed"} {
		for _, ae := range []string{"", "gzip"} {
			for _, tc := range cases {
				header := append([]string{"Accept-Encoding", ae}, tc.header...)
				got := assertStored(t, p, o, path, header...)
				assert.Equal(t, tc.want, got.Status, "%s %q", path, header)
				if tc.want == http.StatusNotModified {
					assert.Empty(t, got.Body)
					assert.NotEmpty(t, got.Header.Get("ETag"), "a 304 carries the ETag")
				} else {
					assert.NotEmpty(t, got.Body)
				}
			}
			head := p.request(http.MethodHead, path, nil, "Accept-Encoding", ae, "If-None-Match", `"v1"`)
			assert.Equal(t, http.StatusNotModified, head.Status, "HEAD %s", path)
		}
	}
	compressed := assertStored(t, p, o, "/cond/compressed", "Accept-Encoding", "gzip")
	assert.Equal(t, `W/"v1"`, compressed.Header.Get("ETag"), "a compressed body's ETag is weak")
	notModified := assertStored(t, p, o, "/cond/compressed", "Accept-Encoding", "gzip", "If-None-Match", `"v1"`)
	assert.Contains(t, notModified.Header.Get("Vary"), "Accept-Encoding", "a 304 carries the Vary of its 200")

	// Only a 200 is answered 304; a stored 404 stays a 404.
	missing := assertStored(t, p, o, "/cond/missing", "If-None-Match", `"v1"`)
	assert.Equal(t, http.StatusNotFound, missing.Status)
}
