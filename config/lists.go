package config

import (
	"fmt"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/isrproxy/isrproxy/cache"
)

// The list types of Config. Each is written as comma-separated items,
// trimmed, with empty items dropped; "off" (any case) gives nil, none. Every
// bad item is reported, not only the first.

// Statuses are HTTP status codes, 100 to 599.
type Statuses []int

// UnmarshalText parses a list of status codes.
func (s *Statuses) UnmarshalText(text []byte) error {
	v, err := parseList(string(text), func(item string) (int, error) {
		code, err := strconv.Atoi(item)
		if err != nil || code < 100 || code > 599 {
			return 0, fmt.Errorf("%q is not a status code (use 100 to 599)", item)
		}
		return code, nil
	})
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// CookiePatterns are cookie names, each optionally ending with "*" to match
// a prefix ("wordpress_logged_in_*").
type CookiePatterns []string

// UnmarshalText parses a list of cookie name patterns.
func (p *CookiePatterns) UnmarshalText(text []byte) error {
	v, err := parsePatterns(string(text), isCookieChar, "a cookie name")
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParamPatterns are query parameter names as written in the raw query, each
// optionally ending with "*" to match a prefix ("utm_*").
type ParamPatterns []string

// UnmarshalText parses a list of query parameter name patterns.
func (p *ParamPatterns) UnmarshalText(text []byte) error {
	v, err := parsePatterns(string(text), isParamChar, "a query parameter name")
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// parsePatterns reads names made of the bytes valid allows, each
// optionally ending with "*".
func parsePatterns(s string, valid func(byte) bool, what string) ([]string, error) {
	return parseList(s, func(item string) (string, error) {
		body := strings.TrimSuffix(item, "*")
		switch {
		case strings.Contains(body, "*"):
			return "", fmt.Errorf("%q may hold \"*\" only as its last character", item)
		case !allBytes(body, valid):
			return "", fmt.Errorf("%q is not %s", item, what)
		}
		return item, nil
	})
}

// PathPatterns are URL paths, each starting with "/" and optionally ending
// with "*" to match a prefix ("/wp-admin/*"). They are compared with the
// path as the request wrote it.
type PathPatterns []string

// UnmarshalText parses a list of path patterns.
func (p *PathPatterns) UnmarshalText(text []byte) error {
	v, err := parseList(string(text), func(item string) (string, error) {
		body := strings.TrimSuffix(item, "*")
		switch {
		case !strings.HasPrefix(item, "/"):
			return "", fmt.Errorf("%q must start with \"/\"", item)
		case strings.Contains(body, "*"):
			return "", fmt.Errorf("%q may hold \"*\" only as its last character", item)
		case !allBytes(body, isPathChar):
			return "", fmt.Errorf("%q is not a path (no spaces, control characters, \"?\" or \"#\")", item)
		}
		return item, nil
	})
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MediaTypes are lower-case "type/subtype" media types, without parameters
// or wildcards.
type MediaTypes []string

// UnmarshalText parses a list of media types, lower-casing them.
func (m *MediaTypes) UnmarshalText(text []byte) error {
	v, err := parseList(string(text), func(item string) (string, error) {
		mt := strings.ToLower(item)
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok || typ == "" || sub == "" || strings.Contains(mt, "*") ||
			!allBytes(typ, isTokenChar) || !allBytes(sub, isTokenChar) {
			return "", fmt.Errorf("%q is not a media type (use type/subtype, e.g. \"text/html\")", item)
		}
		return mt, nil
	})
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// HeaderNames are HTTP header field names in canonical form
// ("Surrogate-Key"), without duplicates.
type HeaderNames []string

// UnmarshalText parses a list of header names.
func (h *HeaderNames) UnmarshalText(text []byte) error {
	v, err := parseList(string(text), func(item string) (string, error) {
		if !allBytes(item, isTokenChar) {
			return "", fmt.Errorf("%q is not a header name", item)
		}
		return textproto.CanonicalMIMEHeaderKey(item), nil
	})
	if err != nil {
		return err
	}
	*h = HeaderNames(dedup(v))
	return nil
}

// Hosts are host names or IP addresses with an optional port, normalised
// as a cache key's host is (lower case, ":80" and a trailing dot dropped,
// IPv6 in brackets), without duplicates. Unlike the other lists, "off" is
// read as a host name: the variables of this type have no default to turn
// off, and Load says so.
type Hosts []string

// UnmarshalText parses a list of hosts.
func (h *Hosts) UnmarshalText(text []byte) error {
	v, err := parseItems(splitItems(string(text)), func(item string) (string, error) {
		host := item
		if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
			host = "[" + host + "]" // as it appears in a Host header
		}
		host = cache.NormalizeHost(host, false)
		if !validHostPort(host, false) {
			return "", fmt.Errorf("%q is not a host name (use host or host:port)", item)
		}
		return host, nil
	})
	if err != nil {
		return err
	}
	*h = Hosts(dedup(v))
	return nil
}

// Domains are DNS names a certificate can be issued for: lower case,
// without a trailing dot, port or wildcard, and not IP addresses. Like
// Hosts, "off" is read as a name for Load to refuse.
type Domains []string

// UnmarshalText parses a list of domain names.
func (d *Domains) UnmarshalText(text []byte) error {
	v, err := parseItems(splitItems(string(text)), func(item string) (string, error) {
		name := strings.TrimSuffix(strings.ToLower(item), ".")
		if _, err := netip.ParseAddr(name); err == nil || !validDomain(name) {
			return "", fmt.Errorf("%q is not a domain name (use a name such as \"www.example.com\", without port or \"*\")", item)
		}
		return name, nil
	})
	if err != nil {
		return err
	}
	*d = Domains(dedup(v))
	return nil
}

// Prefixes are IP networks in CIDR notation ("10.0.0.0/8"); a bare address
// means that address alone (/32 or /128). Host bits are cleared
// ("10.1.2.3/8" is 10.0.0.0/8).
type Prefixes []netip.Prefix

// UnmarshalText parses a list of networks.
func (p *Prefixes) UnmarshalText(text []byte) error {
	v, err := parseList(string(text), func(item string) (netip.Prefix, error) {
		bad := fmt.Errorf("%q is not an IP address or network (use CIDR notation, e.g. \"10.0.0.0/8\")", item)
		if strings.Contains(item, "/") {
			prefix, err := netip.ParsePrefix(item)
			if err != nil {
				return netip.Prefix{}, bad
			}
			return prefix.Masked(), nil
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, bad
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	})
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// dedup removes repeated items, keeping the first of each.
func dedup(items []string) []string {
	var out []string
	for _, item := range items {
		if !slices.Contains(out, item) {
			out = append(out, item)
		}
	}
	return out
}
