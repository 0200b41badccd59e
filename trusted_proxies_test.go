// Behind a load balancer or CDN that terminates TLS, the peers listed in
// TRUSTED_PROXIES are believed about the client and the scheme; nobody else
// is. A page rendered for https is stored apart from the http one, and a
// revalidation covers both.
package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// schemeOrigin renders the scheme it was told into the page, as a CMS
// writes its links and redirects for it.
func schemeOrigin(version *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<a href=%q>v%d</a>", r.Header.Get("X-Forwarded-Proto")+"://"+r.Host+"/next", version.Load())
	}
}

func TestTrustedProxySetsTheSchemeAndClientOfFills(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, schemeOrigin(&version))
	p := startProxy(t, o.URL, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})

	https := p.get("/post", "X-Forwarded-Proto", "https", "X-Forwarded-For", "6.6.6.6, 198.51.100.9")
	require.Equal(t, http.StatusOK, https.Status)
	assert.Contains(t, https.Body, `"https://`)
	last := o.lastRequest()
	assert.Equal(t, "https", last.Header.Get("X-Forwarded-Proto"), "the balancer's scheme reaches the origin")
	assert.Equal(t, []string{"198.51.100.9"}, last.Header.Values("X-Forwarded-For"), "the last untrusted hop is the client")

	plain := p.get("/post")
	assert.Equal(t, "MISS", plain.Header.Get("X-Cache"), "the https page is not served to an http visitor")
	assert.Contains(t, plain.Body, `"http://`)
	assert.Equal(t, "http", o.lastRequest().Header.Get("X-Forwarded-Proto"))

	again := p.get("/post", "X-Forwarded-Proto", "https")
	assert.Equal(t, "HIT", again.Header.Get("X-Cache"))
	assert.Contains(t, again.Body, `"https://`)
	assert.Equal(t, "HIT", p.get("/post").Header.Get("X-Cache"))
	assert.Equal(t, int64(2), o.hits.Load(), "one fill per scheme")

	// One revalidation of the key refetches both schemes' pages.
	version.Store(1)
	res := p.revalidate("path=/post")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, 2, countOf(res.Body, `"outcome":"replaced"`), res.Body)
	assert.Contains(t, p.get("/post", "X-Forwarded-Proto", "https").Body, `"https://`)
	assert.Contains(t, p.get("/post", "X-Forwarded-Proto", "https").Body, "v1")
	assert.Contains(t, p.get("/post").Body, `"http://`)
	assert.Contains(t, p.get("/post").Body, "v1")
}

func TestUntrustedPeersCannotClaimHTTPS(t *testing.T) {
	var version atomic.Int64
	o := newTestOrigin(t, schemeOrigin(&version))
	p := startProxy(t, o.URL, map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8"})

	got := p.get("/post", "X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.9")
	assert.Contains(t, got.Body, `"http://`)
	last := o.lastRequest()
	assert.Equal(t, "http", last.Header.Get("X-Forwarded-Proto"))
	assert.Equal(t, []string{"127.0.0.1"}, last.Header.Values("X-Forwarded-For"), "the TCP peer is the client")
	assert.Equal(t, "HIT", p.get("/post").Header.Get("X-Cache"), "one page: the claim changed nothing")
}

// The lockout counts the client a trusted balancer names, not the balancer:
// eleven wrong guesses from anyone must not lock the CMS itself out.
func TestLockoutCountsTheClientBehindATrustedProxy(t *testing.T) {
	o := newTestOrigin(t, page("<p>a page</p>"))
	p := startProxy(t, o.URL, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})
	for range 11 {
		res := p.request(http.MethodPost, "/api/revalidate?path=/a", nil,
			"Authorization", "Bearer wrong-secret-0123456789", "X-Forwarded-For", "203.0.113.66")
		require.Equal(t, http.StatusUnauthorized, res.Status)
	}
	locked := p.request(http.MethodPost, "/api/revalidate?path=/a", nil,
		"Authorization", "Bearer "+apiSecret, "X-Forwarded-For", "203.0.113.66")
	assert.Equal(t, http.StatusTooManyRequests, locked.Status, "the guesser is locked out")
	cms := p.request(http.MethodPost, "/api/revalidate?path=/a", nil,
		"Authorization", "Bearer "+apiSecret, "X-Forwarded-For", "198.51.100.9")
	assert.Equal(t, http.StatusOK, cms.Status, "the CMS behind the same balancer is not: %s", cms.Body)
}

// countOf counts the occurrences of sub in s.
func countOf(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			n++
		}
	}
	return n
}
