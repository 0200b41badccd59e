package main

// Linked pages (README.md#linked-pages): a revalidation with linked=1 also
// refetches the stored pages whose HTML links to a revalidated one.

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The seed case: the CMS names /events/42 only; the listing /events that
// shows it follows.
func TestLinkedRevalidatesTheListingThatShowsAPage(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		v := version.Load()
		switch r.URL.Path {
		case "/events":
			fmt.Fprintf(w, `<html><head><link rel="stylesheet" href="/style.css"></head><body>
<h1>Events</h1><ul><li><a href="/events/42">Concert (v%d)</a></li>
<li><a href="http://%s/events/43?utm_source=x#top">Talk</a></li>
<li><a href="https://elsewhere.example/events/42">elsewhere</a></li></ul></body></html>`, v, r.Host)
		case "/about":
			fmt.Fprintf(w, `<p>about v%d, no links to events</p>`, v)
		case "/old-event":
			w.Header().Set("Location", "/events/42")
			w.WriteHeader(http.StatusMovedPermanently)
		default:
			fmt.Fprintf(w, `<p>%s v%d <a href="../events">all events</a></p>`, r.URL.Path, v)
		}
	})
	p := startProxy(t, o.URL, nil)
	for _, path := range []string{"/events", "/events/42", "/events/43", "/about", "/old-event"} {
		p.get(path)
	}
	version.Store(2)

	got := decodeAPI(t, p.revalidate("path=/events/42&linked=1"))
	outcomes := map[string]string{}
	for _, r := range got.Results {
		outcomes[r.Path] = r.Outcome
	}
	assert.Equal(t, map[string]string{"/events/42": "replaced", "/events": "replaced", "/old-event": "replaced"}, outcomes,
		"the page, the listing that links to it and the redirect to it, once each")
	assert.Contains(t, assertStored(t, p, o, "/events").Body, "Concert (v2)")
	assert.Contains(t, p.get("/about").Body, "about v1")

	// The query's ignored parameters and the fragment do not hide a link.
	version.Store(3)
	got = decodeAPI(t, p.revalidate("path=/events/43&linked=1&mode=soft"))
	outcomes = map[string]string{}
	for _, r := range got.Results {
		outcomes[r.Path] = r.Outcome
	}
	assert.Equal(t, map[string]string{"/events/43": "marked", "/events": "marked"}, outcomes)

	// Without linked, only the page.
	got = decodeAPI(t, p.revalidate("path=/events/42"))
	assert.Len(t, got.Results, 1)
}

// Links leave the index with their page: once /events is purged, or
// replaced by a version without the link, it no longer follows.
func TestLinkedForgetsLinksWithTheirPage(t *testing.T) {
	var linking atomic.Bool
	linking.Store(true)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/events" && linking.Load() {
			fmt.Fprint(w, `<a href="/events/42">42</a>`)
			return
		}
		fmt.Fprint(w, `<p>no links</p>`)
	})
	p := startProxy(t, o.URL, nil)
	p.get("/events")
	p.get("/events/42")
	require.Len(t, decodeAPI(t, p.revalidate("path=/events/42&linked=1")).Results, 2)

	linking.Store(false)
	p.revalidate("path=/events") // stored again, without the link
	assert.Len(t, decodeAPI(t, p.revalidate("path=/events/42&linked=1")).Results, 1)

	linking.Store(true)
	p.revalidate("path=/events")
	require.Len(t, decodeAPI(t, p.revalidate("path=/events/42&linked=1")).Results, 2)
	p.revalidate("path=/events&mode=purge")
	assert.Len(t, decodeAPI(t, p.revalidate("path=/events/42&linked=1")).Results, 1)
}

// The JSON body's "linked": true is the same.
func TestLinkedInTheJSONBody(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<a href="/b">b</a>`)
	})
	p := startProxy(t, o.URL, nil)
	p.get("/a")
	got := p.request(http.MethodPost, "/api/revalidate", strings.NewReader(`{"paths":["/b"],"linked":true}`),
		"Authorization", "Bearer "+apiSecret, "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, got.Status, got.Body)
	assert.Len(t, decodeAPI(t, got).Results, 2)
}
