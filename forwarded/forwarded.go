// Package forwarded decides who a request comes from and over which scheme
// when isrproxy runs behind a load balancer or CDN that terminates TLS.
// Only the peers listed as trusted proxies are believed: from them, the
// client is the last untrusted hop of X-Forwarded-For (or Forwarded), and
// the scheme is the one they report; from anyone else, those headers mean
// nothing and the TCP peer is the client.
package forwarded

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted is the list of trusted proxies (TRUSTED_PROXIES). The zero value
// trusts no one.
type Trusted struct {
	prefixes []netip.Prefix
}

// New trusts the peers within prefixes.
func New(prefixes []netip.Prefix) Trusted { return Trusted{prefixes: prefixes} }

// trusts reports whether addr is a trusted proxy.
func (t Trusted) trusts(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

type httpsKey struct{}

// Handler wraps next: for a request from a trusted proxy, the request's
// RemoteAddr becomes the client's address (port 0) and its scheme the one
// the proxy reports, for everything after it (the access log, the
// revalidate API's lockout, the page handler's key and origin requests).
// Requests from anyone else are passed on as they are.
func (t Trusted) Handler(next http.Handler) http.Handler {
	if len(t.prefixes) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, ok := addrOf(r.RemoteAddr)
		if !ok || !t.trusts(peer) {
			next.ServeHTTP(w, r)
			return
		}
		client, https := t.client(peer, r.Header)
		r2 := r.WithContext(context.WithValue(r.Context(), httpsKey{}, https))
		r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
		next.ServeHTTP(w, r2)
	})
}

// OverTLS wraps next, the handler of isrproxy's own TLS listener, so that
// work started for its requests (a revalidation's fetch of a page not
// stored yet) knows them as https too: [FromContext] reports true. A
// trusted proxy's word, when [Trusted.Handler] comes after, still wins.
func OverTLS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			r = r.WithContext(context.WithValue(r.Context(), httpsKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

// client reads the client's address and scheme from the headers a trusted
// peer sent: X-Forwarded-For and X-Forwarded-Proto, or else Forwarded.
func (t Trusted) client(peer netip.Addr, h http.Header) (netip.Addr, bool) {
	var hops []string
	var proto string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			hops = append(hops, strings.Split(line, ",")...)
		}
		proto = last(h.Values("X-Forwarded-Proto"))
	} else if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		for _, line := range fwd {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					name, value, _ := strings.Cut(strings.TrimSpace(pair), "=")
					value = strings.Trim(value, `"`)
					switch strings.ToLower(name) {
					case "for":
						hops = append(hops, value)
					case "proto":
						proto = value
					}
				}
			}
		}
	} else {
		proto = last(h.Values("X-Forwarded-Proto"))
	}
	client := peer
	// From the right: each trusted hop vouches for the one before it.
	for i := len(hops) - 1; i >= 0; i-- {
		addr, ok := addrOf(strings.TrimSpace(hops[i]))
		if !ok {
			break // garbage: believe nothing further left
		}
		client = addr
		if !t.trusts(addr) {
			break
		}
	}
	return client, strings.EqualFold(strings.TrimSpace(proto), "https")
}

// last returns the last item of comma-separated lines: the value the
// nearest proxy added.
func last(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	items := strings.Split(lines[len(lines)-1], ",")
	return items[len(items)-1]
}

// addrOf parses an address with or without a port, IPv6 with or without
// brackets ("[::1]:80", "::1", "10.0.0.1:5", "10.0.0.1").
func addrOf(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// HTTPS reports whether r reached isrproxy over HTTPS: on its own TLS
// listener, or through a trusted proxy that says so.
func HTTPS(r *http.Request) bool {
	return r.TLS != nil || FromContext(r.Context())
}

// FromContext reports what a trusted proxy said of the scheme of the
// request whose context (or a context derived from it) ctx is.
func FromContext(ctx context.Context) bool {
	https, _ := ctx.Value(httpsKey{}).(bool)
	return https
}
