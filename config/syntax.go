package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

// validListenAddr reports whether s is "host:port" with an optional host
// and a numeric port, 0 included (a free one).
func validListenAddr(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && validPort(port, true) && (host == "" || validHost(host))
}

// validHostPort reports whether s is a host name, an IPv4 address or a
// bracketed IPv6 address, optionally followed by ":port" (1 to 65535, or 0
// too when allowZero is set).
func validHostPort(s string, allowZero bool) bool {
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if !validPort(port, allowZero) {
			return false
		}
		host = h
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if strings.HasPrefix(s, "[") {
		a, err := netip.ParseAddr(host)
		return err == nil && a.Is6()
	}
	return validHost(host)
}

// validHost reports whether h is an IP address (IPv6 without brackets) or a
// host name: dot-separated labels of letters, digits, "-" and "_" (as in
// container names), none starting or ending with "-", with an optional final
// dot.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return validName(strings.TrimSuffix(h, "."), func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' })
}

// validDomain reports whether d is a DNS name a public certificate can
// name: labels of letters, digits and "-" ("_" is not allowed there).
func validDomain(d string) bool {
	return validName(d, func(c byte) bool { return isAlnum(c) || c == '-' })
}

// validName reports whether name is dot-separated labels of 1 to 63 bytes
// that valid allows, none starting or ending with "-", 253 bytes at most.
func validName(name string, valid func(byte) bool) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' || !allBytes(label, valid) {
			return false
		}
	}
	return true
}

func validPort(p string, allowZero bool) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && (n > 0 || allowZero)
}

func allBytes(s string, valid func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !valid(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isCookieChar reports whether c may appear in a cookie name, a token.
func isCookieChar(c byte) bool { return isTokenChar(c) && c != '*' }

// isParamChar reports whether c may appear in a query parameter name as
// written in the raw query.
func isParamChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte("&=#?*", c) < 0
}

// isPathChar reports whether c may appear in a request path as sent: no
// space or control byte, no "?" or "#" (they end the path), no "*".
func isPathChar(c byte) bool {
	return c > ' ' && c < 0x7f && strings.IndexByte("?#*", c) < 0
}

func notRouteChar(r rune) bool {
	return !(r < unicode.MaxASCII && (isAlnum(byte(r)) || strings.ContainsRune("-._~", r)))
}
