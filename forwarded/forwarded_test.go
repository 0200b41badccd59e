package forwarded

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTrustedProxiesVouchForTheClientAndScheme(t *testing.T) {
	trusted := New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	for _, tt := range []struct {
		name       string
		peer       string
		header     http.Header
		wantRemote string
		wantHTTPS  bool
	}{
		{"an untrusted peer is the client whatever it says", "203.0.113.7:4000",
			http.Header{"X-Forwarded-For": {"1.2.3.4"}, "X-Forwarded-Proto": {"https"}}, "203.0.113.7:4000", false},
		{"a trusted balancer names the client and the scheme", "10.0.0.2:4000",
			http.Header{"X-Forwarded-For": {"198.51.100.9"}, "X-Forwarded-Proto": {"https"}}, "198.51.100.9:0", true},
		{"the last untrusted hop, not what the client made up", "10.0.0.2:4000",
			http.Header{"X-Forwarded-For": {"6.6.6.6, 198.51.100.9, 10.1.1.1"}}, "198.51.100.9:0", false},
		{"several lines are one list", "10.0.0.2:4000",
			http.Header{"X-Forwarded-For": {"6.6.6.6", "198.51.100.9"}}, "198.51.100.9:0", false},
		{"only trusted hops: the leftmost", "10.0.0.2:4000",
			http.Header{"X-Forwarded-For": {"10.9.9.9, 10.1.1.1"}}, "10.9.9.9:0", false},
		{"garbage stops the walk", "10.0.0.2:4000",
			http.Header{"X-Forwarded-For": {"198.51.100.9, junk"}}, "10.0.0.2:0", false},
		{"Forwarded when there is no X-Forwarded-For", "[::1]:4000",
			http.Header{"Forwarded": {`for="[2001:db8::5]:1234";proto=https`}}, "[2001:db8::5]:0", true},
		{"a trusted peer without headers is the client", "10.0.0.2:4000", http.Header{}, "10.0.0.2:0", false},
		{"the scheme alone", "10.0.0.2:4000", http.Header{"X-Forwarded-Proto": {"HTTPS"}}, "10.0.0.2:0", true},
		{"the nearest proxy's scheme", "10.0.0.2:4000", http.Header{"X-Forwarded-Proto": {"https, http"}}, "10.0.0.2:0", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var gotRemote string
			var gotHTTPS bool
			h := trusted.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				gotRemote, gotHTTPS = r.RemoteAddr, HTTPS(r)
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr, r.Header = tt.peer, tt.header
			h.ServeHTTP(httptest.NewRecorder(), r)
			assert.Equal(t, tt.wantRemote, gotRemote)
			assert.Equal(t, tt.wantHTTPS, gotHTTPS)
		})
	}
}

func TestNoTrustedProxiesChangesNothing(t *testing.T) {
	called := false
	h := Trusted{}.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		called = true
		assert.Equal(t, "10.0.0.2:4000", r.RemoteAddr)
		assert.False(t, HTTPS(r))
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.2:4000"
	r.Header.Set("X-Forwarded-For", "1.2.3.4")
	r.Header.Set("X-Forwarded-Proto", "https")
	h.ServeHTTP(httptest.NewRecorder(), r)
	assert.True(t, called)
}
