package main

import "github.com/isrproxy/isrproxy/config"

// fastPathVar is the internal switch of the plain listener's fast path
// (server.SetFast, proxy.Handler.FastPath): "off" turns it off, to compare
// or to rule it out; anything else leaves it on where it applies. It is
// not a setting of isrproxy's configuration and is not documented as one.
const fastPathVar = "ISRPROXY_FASTPATH"

// fastPathOn reports whether the plain listener gets the fast path: only
// where its page requests reach the page handler with nothing in between
// that the fast path does not do itself. Trusted proxies rewrite the
// client and scheme, the HTTPS redirect answers every page request, and
// the ACME challenge owns a path: with any of them, net/http answers all.
func fastPathOn(environ map[string]string, cfg config.Config, acme bool) bool {
	return environ[fastPathVar] != "off" && len(cfg.TrustedProxies) == 0 &&
		cfg.HTTPSRedirect != config.SwitchOn && !acme
}
