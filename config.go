package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"

	"github.com/isrproxy/isrproxy/cache"
)

// Config is isrproxy's whole configuration, read from the environment by
// [LoadConfig]. Every value is already converted, validated and defaulted; a
// nil list means none (the variable was "off"), never "use the default".
type Config struct {
	// OriginURL is ORIGIN_URL: http or https, a host and an optional port.
	// Its Path is always "" and it has no user info, query or fragment.
	OriginURL *url.URL
	// RevalidateSecret is REVALIDATE_SECRET, at least 16 characters.
	RevalidateSecret Secret
	// ListenAddr is LISTEN_ADDR, the public listener (default ":8080").
	ListenAddr string
	// AdminAddr is ADMIN_ADDR, the health and metrics listener (default
	// ":9090"); "" when ADMIN_ADDR=off disables it.
	AdminAddr string
	// RevalidatePath is REVALIDATE_PATH (default "/api/revalidate").
	RevalidatePath string
	// CacheMaxBytes is CACHE_MAX_BYTES, the memory budget for stored pages
	// (default 256 MiB).
	CacheMaxBytes int64
	// MaxObjectBytes is MAX_OBJECT_BYTES (default 8 MiB): larger responses
	// are streamed through, not stored. Always below CacheMaxBytes.
	MaxObjectBytes int64
	// OriginTimeout is ORIGIN_TIMEOUT (default 30s), always > 0.
	OriginTimeout time.Duration
	// RevalidateConcurrency is REVALIDATE_CONCURRENCY (default 4), always >= 1.
	RevalidateConcurrency int
	// RevalidateAfter is REVALIDATE_AFTER (default 0: pages are kept until
	// revalidated).
	RevalidateAfter time.Duration
	// CacheStatuses is CACHE_STATUSES, the origin status codes that are
	// stored (default 200,203,300,301,308,404,410); nil stores nothing.
	CacheStatuses []int
	// NegativeTTL is NEGATIVE_TTL (default 60s).
	NegativeTTL time.Duration
	// PassTTL is PASS_TTL (default 2m).
	PassTTL time.Duration
	// BypassCookies is BYPASS_COOKIES: cookie names, a trailing "*" matching
	// a prefix; nil when off.
	BypassCookies []string
	// AllowedHosts is ALLOWED_HOSTS, normalised like a key's host
	// (lower-cased, ":80" and a trailing dot dropped); nil serves any host.
	AllowedHosts []string
	// OriginMaxConcurrency is ORIGIN_MAX_CONCURRENCY (default 64), always >= 1.
	OriginMaxConcurrency int
	// IgnoreQueryParams is IGNORE_QUERY_PARAMS: query parameter names, a
	// trailing "*" matching a prefix; nil when off.
	IgnoreQueryParams []string
	// CompressTypes is COMPRESS_TYPES: lower-case "type/subtype" media types
	// gzipped when stored; nil when off.
	CompressTypes []string
	// OriginHost is ORIGIN_HOST, the Host sent to the origin; "" sends the
	// visitor's.
	OriginHost string
	// ShutdownTimeout is SHUTDOWN_TIMEOUT (default 25s).
	ShutdownTimeout time.Duration
	// LogLevel is LOG_LEVEL (default info).
	LogLevel slog.Level
	// LogFormat is LOG_FORMAT, "json" (default) or "text".
	LogFormat string
}

// Secret is a string that never shows itself when printed or logged: its
// String, GoString, LogValue and MarshalText all give "[redacted]". Use
// string(s) to read the value.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not show the value either.
func (Secret) GoString() string { return redacted }

// Format prints "[redacted]" whatever the verb (%d and %x included).
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue returns "[redacted]" (slog.LogValuer).
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]", so JSON (slog's JSON handler included)
// does not show the value.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// ConfigError lists every configuration problem, each "NAME: problem".
type ConfigError struct {
	Problems []string
}

// Error returns the problems, one per line.
func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

// rawConfig is the environment as caarlos0/env reads it. Every field is a
// string so that env itself cannot fail: LoadConfig converts each value and
// words its messages with the variable's name.
type rawConfig struct {
	OriginURL             string `env:"ORIGIN_URL"`
	RevalidateSecret      string `env:"REVALIDATE_SECRET"`
	ListenAddr            string `env:"LISTEN_ADDR" envDefault:":8080"`
	AdminAddr             string `env:"ADMIN_ADDR" envDefault:":9090"`
	RevalidatePath        string `env:"REVALIDATE_PATH" envDefault:"/api/revalidate"`
	CacheMaxBytes         string `env:"CACHE_MAX_BYTES" envDefault:"256MiB"`
	MaxObjectBytes        string `env:"MAX_OBJECT_BYTES" envDefault:"8MiB"`
	OriginTimeout         string `env:"ORIGIN_TIMEOUT" envDefault:"30s"`
	RevalidateConcurrency string `env:"REVALIDATE_CONCURRENCY" envDefault:"4"`
	RevalidateAfter       string `env:"REVALIDATE_AFTER" envDefault:"0"`
	CacheStatuses         string `env:"CACHE_STATUSES" envDefault:"200,203,300,301,308,404,410"`
	NegativeTTL           string `env:"NEGATIVE_TTL" envDefault:"60s"`
	PassTTL               string `env:"PASS_TTL" envDefault:"2m"`
	BypassCookies         string `env:"BYPASS_COOKIES" envDefault:"wordpress_logged_in_*,wp-postpass_*,SESS*,SSESS*"`
	AllowedHosts          string `env:"ALLOWED_HOSTS"`
	OriginMaxConcurrency  string `env:"ORIGIN_MAX_CONCURRENCY" envDefault:"64"`
	IgnoreQueryParams     string `env:"IGNORE_QUERY_PARAMS" envDefault:"utm_*,gclid,fbclid"`
	CompressTypes         string `env:"COMPRESS_TYPES" envDefault:"text/html,text/css,text/plain,text/xml,application/javascript,application/json,application/xml,image/svg+xml"`
	OriginHost            string `env:"ORIGIN_HOST"`
	ShutdownTimeout       string `env:"SHUTDOWN_TIMEOUT" envDefault:"25s"`
	LogLevel              string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat             string `env:"LOG_FORMAT" envDefault:"json"`
}

// LoadConfig reads the configuration from environ (a map such as the process
// environment). Surrounding spaces are trimmed from every value but the
// secret, and a value that is empty or only spaces means the default. On
// failure it returns a *ConfigError listing every problem, in the order of
// the variables in SPEC.md.
func LoadConfig(environ map[string]string) (Config, error) {
	trimmed := make(map[string]string, len(environ))
	for name, value := range environ {
		if strings.TrimSpace(value) == "" {
			continue // empty means default (env also does this for "")
		}
		if name != "REVALIDATE_SECRET" {
			value = strings.TrimSpace(value)
		}
		trimmed[name] = value
	}
	var raw rawConfig
	if err := env.ParseWithOptions(&raw, env.Options{Environment: trimmed}); err != nil {
		// Unreachable while every field is a string; kept so that a future
		// field of another type cannot fail silently.
		return Config{}, &ConfigError{Problems: []string{"environment: " + err.Error()}}
	}

	var l loader
	cfg := Config{
		OriginURL:             l.originURL("ORIGIN_URL", raw.OriginURL),
		RevalidateSecret:      l.secret("REVALIDATE_SECRET", raw.RevalidateSecret),
		ListenAddr:            l.listenAddr("LISTEN_ADDR", raw.ListenAddr),
		AdminAddr:             l.listenAddr("ADMIN_ADDR", raw.AdminAddr),
		RevalidatePath:        l.routePath("REVALIDATE_PATH", raw.RevalidatePath),
		CacheMaxBytes:         l.size("CACHE_MAX_BYTES", raw.CacheMaxBytes),
		MaxObjectBytes:        l.size("MAX_OBJECT_BYTES", raw.MaxObjectBytes),
		OriginTimeout:         l.duration("ORIGIN_TIMEOUT", raw.OriginTimeout, true),
		RevalidateConcurrency: l.count("REVALIDATE_CONCURRENCY", raw.RevalidateConcurrency),
		RevalidateAfter:       l.duration("REVALIDATE_AFTER", raw.RevalidateAfter, false),
		CacheStatuses:         l.statuses("CACHE_STATUSES", raw.CacheStatuses),
		NegativeTTL:           l.duration("NEGATIVE_TTL", raw.NegativeTTL, false),
		PassTTL:               l.duration("PASS_TTL", raw.PassTTL, false),
		BypassCookies:         l.patterns("BYPASS_COOKIES", raw.BypassCookies, isCookieChar, "a cookie name"),
		AllowedHosts:          l.hosts("ALLOWED_HOSTS", raw.AllowedHosts),
		OriginMaxConcurrency:  l.count("ORIGIN_MAX_CONCURRENCY", raw.OriginMaxConcurrency),
		IgnoreQueryParams:     l.patterns("IGNORE_QUERY_PARAMS", raw.IgnoreQueryParams, isParamChar, "a query parameter name"),
		CompressTypes:         l.mediaTypes("COMPRESS_TYPES", raw.CompressTypes),
		OriginHost:            l.originHost("ORIGIN_HOST", raw.OriginHost),
		ShutdownTimeout:       l.duration("SHUTDOWN_TIMEOUT", raw.ShutdownTimeout, false),
		LogLevel:              l.logLevel("LOG_LEVEL", raw.LogLevel),
		LogFormat:             l.oneOf("LOG_FORMAT", raw.LogFormat, "json", "text"),
	}

	// Checks between variables, made only when both values are valid.
	if cfg.CacheMaxBytes > 0 && cfg.MaxObjectBytes > 0 && cfg.MaxObjectBytes >= cfg.CacheMaxBytes {
		l.fail("MAX_OBJECT_BYTES", "%q must be less than CACHE_MAX_BYTES (%q)", raw.MaxObjectBytes, raw.CacheMaxBytes)
	}
	if cfg.AdminAddr != "" && cfg.AdminAddr == cfg.ListenAddr && !strings.HasSuffix(cfg.AdminAddr, ":0") {
		l.fail("ADMIN_ADDR", "%q is the same as LISTEN_ADDR (use another port, or off)", raw.AdminAddr)
	}

	if len(l.problems) > 0 {
		return Config{}, &ConfigError{Problems: l.problems}
	}
	return cfg, nil
}

// loader converts raw values, collecting one problem per bad value. Its
// methods return the zero value for a bad one.
type loader struct {
	problems []string
}

func (l *loader) fail(name, format string, args ...any) {
	l.problems = append(l.problems, name+": "+fmt.Sprintf(format, args...))
}

func (l *loader) originURL(name, s string) *url.URL {
	if s == "" {
		l.fail(name, "is required")
		return nil
	}
	shown := redactUserinfo(s) // a password in the URL is never printed
	u, err := url.Parse(s)
	if err != nil {
		l.fail(name, "%q is not a URL", shown)
		return nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		l.fail(name, "%q must use http or https", shown)
		return nil // without a scheme, the rest of the value means little
	}
	before := len(l.problems)
	if u.Host == "" {
		l.fail(name, "%q has no host", shown)
	} else if !validHostPort(u.Host, false) {
		l.fail(name, "%q has an invalid host or port", shown)
	}
	if u.User != nil {
		l.fail(name, "%q must not hold user info", shown)
	}
	if p := u.EscapedPath(); p != "" && p != "/" {
		l.fail(name, "%q must not have a path other than \"/\"", shown)
	}
	if u.RawQuery != "" || u.ForceQuery {
		l.fail(name, "%q must not have a query", shown)
	}
	if strings.Contains(s, "#") {
		l.fail(name, "%q must not have a fragment", shown)
	}
	if len(l.problems) > before {
		return nil
	}
	u.Path, u.RawPath = "", ""
	return u
}

// redactUserinfo replaces the user info of a URL-like string, parsable or
// not, with "xxxxx".
func redactUserinfo(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	return scheme + "://xxxxx@" + rest[at+1:]
}

func (l *loader) secret(name, s string) Secret {
	// The value is never part of a message.
	switch {
	case s == "":
		l.fail(name, "is required")
	case utf8.RuneCountInString(s) < 16:
		l.fail(name, "must be at least 16 characters")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		l.fail(name, "must not hold control characters")
	case strings.TrimSpace(s) != s:
		l.fail(name, "must not start or end with a space (an Authorization header cannot carry it)")
	default:
		return Secret(s)
	}
	return ""
}

// listenAddr accepts "host:port" with an optional host and a numeric port
// (0 picks a free one). For ADMIN_ADDR, "off" gives "".
func (l *loader) listenAddr(name, s string) string {
	if strings.EqualFold(s, "off") {
		if name == "ADMIN_ADDR" {
			return ""
		}
		l.fail(name, "%q is not allowed: this listener cannot be disabled", s)
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || !validPort(port, true) || (host != "" && !validHost(host)) {
		l.fail(name, "%q is not a listen address (use host:port, e.g. \":8080\")", s)
		return ""
	}
	return s
}

// routePath accepts "/" followed by segments of letters, digits and -._~,
// with no empty, "." or ".." segment and no trailing "/".
func (l *loader) routePath(name, s string) string {
	ok := strings.HasPrefix(s, "/")
	for seg := range strings.SplitSeq(strings.TrimPrefix(s, "/"), "/") {
		ok = ok && seg != "" && seg != "." && seg != ".." && strings.IndexFunc(seg, notRouteChar) < 0
	}
	if !ok {
		l.fail(name, "%q is not a plain path (use letters, digits and -._~ after single slashes, e.g. \"/api/revalidate\")", s)
		return ""
	}
	return s
}

func notRouteChar(r rune) bool {
	return !(r < unicode.MaxASCII && (isAlnum(byte(r)) || strings.ContainsRune("-._~", r)))
}

func (l *loader) size(name, s string) int64 {
	n, err := ParseByteSize(s)
	switch {
	case err != nil:
		l.fail(name, "%v", err)
	case n == 0:
		l.fail(name, "%q must be greater than 0", s)
	default:
		return n
	}
	return 0
}

// duration parses s with time.ParseDuration; negative values are refused,
// and zero too when positive is set.
func (l *loader) duration(name, s string, positive bool) time.Duration {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		l.fail(name, "%q is not a duration (use a unit, e.g. \"30s\")", s)
	case d < 0:
		l.fail(name, "%q must not be negative", s)
	case d == 0 && positive:
		l.fail(name, "%q must be greater than 0", s)
	default:
		return d
	}
	return 0
}

// count parses a whole number of at least 1.
func (l *loader) count(name, s string) int {
	n, err := strconv.Atoi(s)
	switch {
	case errors.Is(err, strconv.ErrRange):
		l.fail(name, "%q is too large", s)
	case err != nil:
		l.fail(name, "%q is not a whole number", s)
	case n < 1:
		l.fail(name, "%q must be at least 1", s)
	default:
		return n
	}
	return 0
}

// list splits a comma-separated value, trimming items and dropping empty
// ones. "off" gives nil.
func list(s string) []string {
	if strings.EqualFold(s, "off") {
		return nil
	}
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

func (l *loader) statuses(name, s string) []int {
	var codes []int
	for _, item := range list(s) {
		code, err := strconv.Atoi(item)
		if err != nil || code < 100 || code > 599 {
			l.fail(name, "%q is not a status code (use 100 to 599)", item)
			continue
		}
		codes = append(codes, code)
	}
	return codes
}

// patterns reads names made of the bytes valid allows, each optionally
// ending with "*" (a prefix match).
func (l *loader) patterns(name, s string, valid func(byte) bool, what string) []string {
	var out []string
	for _, item := range list(s) {
		body := strings.TrimSuffix(item, "*")
		switch {
		case strings.Contains(body, "*"):
			l.fail(name, "%q may hold \"*\" only as its last character", item)
		case !allBytes(body, valid):
			l.fail(name, "%q is not %s", item, what)
		default:
			out = append(out, item)
		}
	}
	return out
}

// hosts reads ALLOWED_HOSTS, normalised as cache.NormalizeHost does for a
// key's host, without duplicates.
func (l *loader) hosts(name, s string) []string {
	if strings.EqualFold(s, "off") {
		// "off" has no meaning here: any host is served when the variable
		// is empty, and "off" could read as "no host".
		l.fail(name, "%q is not a host name (leave %s empty to serve any host)", s, name)
		return nil
	}
	var out []string
	for _, item := range list(s) {
		host := item
		if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
			host = "[" + host + "]" // as it appears in a Host header
		}
		host = cache.NormalizeHost(host, false)
		if !validHostPort(host, false) {
			l.fail(name, "%q is not a host name (use host or host:port)", item)
			continue
		}
		if !slices.Contains(out, host) {
			out = append(out, host)
		}
	}
	return out
}

func (l *loader) mediaTypes(name, s string) []string {
	var out []string
	for _, item := range list(s) {
		mt := strings.ToLower(item)
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok || typ == "" || sub == "" || strings.Contains(mt, "*") ||
			!allBytes(typ, isTokenChar) || !allBytes(sub, isTokenChar) {
			l.fail(name, "%q is not a media type (use type/subtype, e.g. \"text/html\")", item)
			continue
		}
		out = append(out, mt)
	}
	return out
}

func (l *loader) originHost(name, s string) string {
	if s != "" && !validHostPort(s, false) {
		l.fail(name, "%q is not a host name (use host or host:port)", s)
		return ""
	}
	return s
}

func (l *loader) logLevel(name, s string) slog.Level {
	levels := map[string]slog.Level{
		"debug": slog.LevelDebug,
		"info":  slog.LevelInfo,
		"warn":  slog.LevelWarn,
		"error": slog.LevelError,
	}
	level, ok := levels[s]
	if !ok {
		l.fail(name, "%q must be one of debug, info, warn, error", s)
	}
	return level
}

func (l *loader) oneOf(name, s string, options ...string) string {
	if !slices.Contains(options, s) {
		l.fail(name, "%q must be one of %s", s, strings.Join(options, ", "))
		return ""
	}
	return s
}

// ParseByteSize parses a size in bytes: an integer, optionally followed by
// the unit B, KiB, MiB or GiB ("1048576", "512KiB", "256MiB", "2GiB").
// Negative numbers, fractions, other units and sizes beyond int64 are errors.
func ParseByteSize(s string) (int64, error) {
	digits := strings.TrimLeft(s, "0123456789")
	number, unit := s[:len(s)-len(digits)], digits
	var scale int64
	switch unit {
	case "", "B":
		scale = 1
	case "KiB":
		scale = 1 << 10
	case "MiB":
		scale = 1 << 20
	case "GiB":
		scale = 1 << 30
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q must not be negative", s)
	}
	if number == "" || scale == 0 {
		return 0, fmt.Errorf("%q is not a size (use bytes or an integer with KiB, MiB or GiB)", s)
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n > math.MaxInt64/scale {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * scale, nil
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
	name := strings.TrimSuffix(h, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			!allBytes(label, func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }) {
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
