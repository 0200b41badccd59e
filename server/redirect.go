package server

import (
	"net"
	"net/http"
	"strings"

	"github.com/isrproxy/isrproxy/forwarded"
)

// RedirectHTTPS answers a page request that reached isrproxy over plain
// HTTP with 308 Permanent Redirect to the same URL on https://, at tlsPort
// (left out when it is 443): host, path and query exactly as the request
// had them. A request that came over HTTPS, or that a trusted proxy says
// did (see package forwarded), goes to next. The revalidate API and ACME
// challenges are to be routed around it (see [Route]).
func RedirectHTTPS(tlsPort string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if forwarded.HTTPS(r) || r.RequestURI == "*" {
			next.ServeHTTP(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host == "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte("400 Bad Request: a Host header is needed for the redirect to https\n"))
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6
		}
		if tlsPort != "443" {
			host += ":" + tlsPort
		}
		target := r.RequestURI // as sent: no decoding, no re-encoding
		if !strings.HasPrefix(target, "/") {
			// An absolute-form target ("GET http://host/path"): its path
			// and query.
			target = r.URL.EscapedPath()
			if target == "" {
				target = "/"
			}
			if r.URL.RawQuery != "" || r.URL.ForceQuery {
				target += "?" + r.URL.RawQuery
			}
		}
		w.Header().Set("Location", "https://"+host+target)
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}
