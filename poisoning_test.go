package main

// No visitor can change the stored page that others get: what is not part
// of the key never reaches the origin on a fill.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unkeyed headers that an origin might trust never reach it on a fill, so
// a value injected on the filling request can never be stored: the stored
// page, fetched cleanly afterwards, holds no trace of it.
func TestUnkeyedHeadersNeverReachTheStoredPage(t *testing.T) {
	o := newTestOrigin(t, reflectOrigin)
	p := startProxy(t, o.URL, nil)
	visitorHost := hostPort(p.URL)
	injected := []string{
		"X-Forwarded-Host", "X-Forwarded-Scheme", "X-Forwarded-Proto", "X-Forwarded-Port",
		"X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-For", "Forwarded",
		"X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
		// CGI and PHP read underscores as dashes; frameworks trust these too.
		"X_Original_URL", "X_Rewrite_URL", "X_HTTP_Method_Override",
		"X-Host", "X-Original-Host", "X-Forwarded", "Forwarded-For", "Front-End-Https", "X-Url-Scheme",
		"X-Real-IP", "True-Client-IP",
	}
	for i, name := range injected {
		for j, viaConnection := range []bool{false, true} {
			marker := fmt.Sprintf("mark%d-%d.evil.example", i, j)
			value := marker
			switch name {
			case "Forwarded":
				value = "for=6.6.6.6;host=" + marker + ";proto=https"
			case "X-Original-URL", "X-Rewrite-URL", "X_Original_URL", "X_Rewrite_URL":
				value = "/" + marker
			}
			path := fmt.Sprintf("/poison/%d/%d", i, j)
			header := []string{name, value}
			if viaConnection {
				// A Connection header naming a header isrproxy sets has no
				// effect on it: the fresh value is still sent.
				header = append(header, "Connection", name)
			}
			hits := o.hits.Load()
			fill := p.get(path, header...)
			require.Equal(t, http.StatusOK, fill.Status, "%s: %s", name, fill.Body)
			assert.NotContains(t, fill.Body, marker, "%s reached the origin", name)
			assert.Equal(t, hits+1, o.hits.Load())

			r := o.lastRequest()
			require.NotNil(t, r)
			assert.Equal(t, http.MethodGet, r.Method, name)
			assert.Equal(t, path, r.RequestURI, name)
			assert.Equal(t, visitorHost, r.Host, name)
			assert.Equal(t, []string{visitorHost}, r.Header.Values("X-Forwarded-Host"), name)
			assert.Equal(t, []string{"http"}, r.Header.Values("X-Forwarded-Proto"), name)
			assert.Equal(t, []string{"127.0.0.1"}, r.Header.Values("X-Forwarded-For"), name)
			for _, dropped := range []string{
				"X-Forwarded-Scheme", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server",
				"Forwarded", "X-Original-Url", "X-Rewrite-Url",
				"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
			} {
				assert.Empty(t, r.Header.Values(dropped), "%s: the origin got %s", name, dropped)
			}

			clean := p.get(path)
			assert.Equal(t, "HIT", clean.Header.Get("X-Cache"), name)
			assert.NotContains(t, clean.Body, marker, "%s poisoned the stored page", name)
			assert.Equal(t, fill.Body, clean.Body)
			assert.Equal(t, hits+1, o.hits.Load(), "the clean visitor is answered from memory")
		}
	}

	// Everything at once, with a Host that differs from X-Forwarded-Host.
	all := []string{"Host", "www.example.com"}
	for i, name := range injected {
		all = append(all, name, fmt.Sprintf("/all%d.evil.example", i))
	}
	fill := p.get("/poison/all", all...)
	assert.NotContains(t, fill.Body, "evil.example")
	clean := p.get("/poison/all", "Host", "www.example.com")
	assert.Equal(t, "HIT", clean.Header.Get("X-Cache"))
	assert.NotContains(t, clean.Body, "evil.example")
	assert.Contains(t, clean.Body, "X-Forwarded-Host: www.example.com\n")
}

// Ignored parameters (utm_*, gclid, fbclid) are removed from what the origin
// receives, however they are spelled, so a reflected value never lands in a
// stored page that a clean URL is answered with.
func TestParameterCloakingNeverPoisonsTheCleanURL(t *testing.T) {
	rec := &recorder{}
	o := newTestOrigin(t, rec.wrap(reflectOrigin))
	p := startProxy(t, o.URL, nil)
	for i, tc := range []struct {
		query string // "MARK" is replaced by a unique marker
		want  string // the query the origin receives, and the clean URL's
	}{
		{"utm_source=MARK&id=1", "id=1"},
		{"id=1&utm_source=MARK", "id=1"},
		{"utm_source=MARK", ""},
		{"id=1&utm_source=x;evil=MARK", "id=1"},
		{"id=1&utm_source=x%26evil%3DMARK", "id=1"},
		{"id=1&utm_source%3Dx%26evil%3DMARK", "id=1"},
		{"%75tm_source=MARK&id=1", "id=1"},
		{"%75%74%6D_source=MARK&id=1", "id=1"},
		{"utm_%73ource=MARK&id=1", "id=1"},
		{"utm_source=MARK&utm_source=MARK2&id=1&utm_medium=MARK3", "id=1"},
		{"gclid=MARK&fbclid=MARK&id=1", "id=1"},
		{"utm_source=&id=1", "id=1"},
		{"utm_source&id=1", "id=1"},
		{"utm_=MARK&id=1", "id=1"},
		{"&&id=1&&utm_medium=MARK&", "id=1"},
		{"utm_source=MARK&&id=1&id=2", "id=1&id=2"},
		{"b=2&utm_source=MARK&a=1", "a=1&b=2"},
		{"utm_source=a+MARK+b&id=1", "id=1"},
	} {
		marker := fmt.Sprintf("cloak%dmark", i)
		path := fmt.Sprintf("/cloak/%d", i)
		query := strings.ReplaceAll(tc.query, "MARK", marker)
		clean := path
		if tc.want != "" {
			clean += "?" + tc.want
		}
		fill := p.get(path + "?" + query)
		require.Equal(t, http.StatusOK, fill.Status, "%s: %s", query, fill.Body)
		assert.NotContains(t, fill.Body, marker, "%s: the marker reached the origin", query)
		all := rec.all()
		require.NotEmpty(t, all)
		assert.Equal(t, clean, all[len(all)-1].RequestURI, "%s: what the origin received", query)

		hits := o.hits.Load()
		got := p.get(clean)
		assert.Equal(t, "HIT", got.Header.Get("X-Cache"), "%s: the clean URL is the same key", query)
		assert.NotContains(t, got.Body, marker, "%s poisoned %s", query, clean)
		assert.Equal(t, hits, o.hits.Load())
	}

	// A ";" is not a separator: "id=1;utm_source=..." is one parameter named
	// "id", kept whole in the key and at the origin, so it never reaches the
	// page of "?id=1".
	p.get("/semi?id=1")
	got := p.get("/semi?id=1;utm_source=semimark")
	assert.Equal(t, "MISS", got.Header.Get("X-Cache"))
	assert.Contains(t, got.Body, "RequestURI: /semi?id=1;utm_source=semimark\n")
	clean := p.get("/semi?id=1")
	assert.Equal(t, "HIT", clean.Header.Get("X-Cache"))
	assert.NotContains(t, clean.Body, "semimark")

	// Pass-through GETs drop ignored parameters too.
	p.get("/cloak/bypass?utm_source=bypassmark&id=1", "Authorization", "Bearer x")
	all := rec.all()
	assert.Equal(t, "/cloak/bypass?id=1", all[len(all)-1].RequestURI)

	// A malformed escape in an ignored parameter is refused, not dropped.
	hits := o.hits.Load()
	bad := p.get("/cloak/bad?utm_source=%zz&id=1")
	assert.Equal(t, http.StatusBadRequest, bad.Status)
	assert.Equal(t, hits, o.hits.Load())
}

// A client's X-Forwarded-* and Forwarded never reach the origin as sent:
// they are set afresh, on fills and pass-throughs, and a Connection header
// naming them cannot strip them.
func TestClientForwardedHeadersNeverReachOrigin(t *testing.T) {
	o := newTestOrigin(t, page("<p>page</p>"))
	p := startProxy(t, o.URL, nil)
	spoof := []string{
		"Host", "www.example.com",
		"X-Forwarded-Host", "evil.example",
		"X-Forwarded-For", "6.6.6.6",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Port", "444",
		"Forwarded", "for=6.6.6.6;host=evil.example;proto=https",
		"Connection", "X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto",
	}
	for _, tc := range []struct {
		name, method string
		extra        []string
	}{
		{"fill", http.MethodGet, nil},
		{"bypass", http.MethodGet, []string{"Authorization", "Bearer x"}},
		{"post", http.MethodPost, nil},
	} {
		p.request(tc.method, "/fwd-"+tc.name, nil, append(append([]string{}, spoof...), tc.extra...)...)
		r := o.lastRequest()
		require.NotNil(t, r)
		assert.Equal(t, "/fwd-"+tc.name, r.URL.Path)
		assert.Equal(t, []string{"www.example.com"}, r.Header.Values("X-Forwarded-Host"), tc.name)
		assert.Equal(t, []string{"127.0.0.1"}, r.Header.Values("X-Forwarded-For"), tc.name)
		assert.Equal(t, []string{"http"}, r.Header.Values("X-Forwarded-Proto"), tc.name)
		assert.Empty(t, r.Header.Values("X-Forwarded-Port"), tc.name)
		assert.Empty(t, r.Header.Values("Forwarded"), tc.name)
	}
}

// An origin that builds absolute links from X-Forwarded-Host cannot be made
// to store a page pointing elsewhere.
func TestForwardedHostCannotPoisonPage(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		host := r.Header.Get("X-Forwarded-Host")
		if host == "" {
			host = r.Host
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<script src="https://%s/app.js"></script>`, host)
	})
	p := startProxy(t, o.URL, nil)
	attack := p.get("/home", "Host", "www.example.com", "X-Forwarded-Host", "evil.example",
		"Forwarded", "host=evil.example")
	assert.NotContains(t, attack.Body, "evil")
	victim := assertStored(t, p, o, "/home", "Host", "www.example.com")
	assert.Equal(t, `<script src="https://www.example.com/app.js"></script>`, victim.Body)
}
