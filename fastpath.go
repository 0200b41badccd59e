package main

import "github.com/isrproxy/isrproxy/config"

// fastPathVar is the internal switch of the fast path of the listeners'
// HTTP/1.1 connections (server.Server.SetFast, proxy.Handler.FastPath):
// "off" turns it off, to compare or to rule it out; anything else leaves
// it on where it applies. It is not a setting of isrproxy's configuration
// and is not documented as one.
const fastPathVar = "ISRPROXY_FASTPATH"

// fastPathOn reports whether a listener gets the fast path: only where
// its page requests reach the page handler with nothing in between that
// the fast path does not do itself. Trusted proxies rewrite the client and
// scheme; on the plain listener, the HTTPS redirect answers every page
// request and the ACME challenge owns a path. With any of them, net/http
// answers all.
func fastPathOn(environ map[string]string, cfg config.Config, plain, acme bool) bool {
	if environ[fastPathVar] == "off" || len(cfg.TrustedProxies) > 0 {
		return false
	}
	return !plain || (cfg.HTTPSRedirect != config.SwitchOn && !acme)
}
