package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The redirect keeps host, path and query as sent, and names the TLS port
// unless it is 443.
func TestRedirectHTTPS(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tt := range []struct{ port, host, target, want string }{
		{"443", "www.example.com", "/a%2Fb?x=1&x=2", "https://www.example.com/a%2Fb?x=1&x=2"},
		{"443", "www.example.com:80", "/", "https://www.example.com/"},
		{"8443", "127.0.0.1:8080", "/p", "https://127.0.0.1:8443/p"},
		{"443", "[2001:db8::1]:80", "/p", "https://[2001:db8::1]/p"},
		{"443", "www.example.com", "http://www.example.com/abs?q", "https://www.example.com/abs?q"},
	} {
		r := httptest.NewRequest(http.MethodGet, tt.target, nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		RedirectHTTPS(tt.port, next).ServeHTTP(w, r)
		if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != tt.want {
			t.Errorf("%s %s: %d %q, want 308 %q", tt.host, tt.target, w.Code, w.Header().Get("Location"), tt.want)
		}
	}
	r := httptest.NewRequest(http.MethodOptions, "*", nil)
	w := httptest.NewRecorder()
	RedirectHTTPS("443", next).ServeHTTP(w, r)
	if w.Code != http.StatusTeapot {
		t.Errorf("OPTIONS * was redirected: %d", w.Code)
	}
}
