package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/purge"
)

const testSecret = "0123456789abcdef-very-secret"

// testEnviron returns the two required variables plus the given pairs
// (name, value, name, value, …).
func testEnviron(pairs ...string) map[string]string {
	environ := map[string]string{
		"ORIGIN_URL":        "http://origin.internal:8080",
		"REVALIDATE_SECRET": testSecret,
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		environ[pairs[i]] = pairs[i+1]
	}
	return environ
}

// defaultConfig is what Load gives for testEnviron().
func defaultConfig() Config {
	return Config{
		OriginURL:             URL{&url.URL{Scheme: "http", Host: "origin.internal:8080"}},
		RevalidateSecret:      Secret(testSecret),
		ListenAddr:            ":8080",
		AdminAddr:             ":9090",
		RevalidatePath:        "/api/revalidate",
		CacheMaxBytes:         256 << 20,
		MaxObjectBytes:        8 << 20,
		OriginTimeout:         Duration(30 * time.Second),
		RevalidateConcurrency: 4,
		RevalidateAfter:       0,
		CacheStatuses:         Statuses{200, 203, 300, 301, 308, 404, 410},
		NegativeTTL:           Duration(60 * time.Second),
		PassTTL:               Duration(2 * time.Minute),
		BypassCookies: CookiePatterns{"wordpress_logged_in_*", "wp-postpass_*", "comment_author_*",
			"woocommerce_items_in_cart", "wp_woocommerce_session_*", "SESS*", "SSESS*"},
		AllowedHosts:         nil,
		OriginMaxConcurrency: 64,
		IgnoreQueryParams:    ParamPatterns{"utm_*", "gclid", "fbclid"},
		KeepQueryParams:      nil,
		BypassPaths:          PathPatterns{"/wp-admin/*", "/wp-login.php", "/wp-cron.php", "/xmlrpc.php", "/user/*", "/admin/*"},
		CompressTypes: MediaTypes{"text/html", "text/css", "text/plain", "text/xml",
			"application/javascript", "application/json", "application/xml", "image/svg+xml"},
		CompressMinBytes:   1 << 10,
		OriginHost:         "",
		UnsafeInvalidation: "soft",
		TagHeaders:         HeaderNames{"Cache-Tag", "Surrogate-Key", "Cache-Tags", "X-Cache-Tags"},
		ShutdownTimeout:    Duration(25 * time.Second),
		LogLevel:           Level(slog.LevelInfo),
		LogFormat:          "json",
		TLSAddr:            ":8443",
		ACMECA:             "https://acme-v02.api.letsencrypt.org/directory",
		ACMEStorage:        "./isrproxy-data/acme",
		HTTPSRedirect:      SwitchOff,
		PurgeAllow:         Prefixes{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		PurgeMode:          "refetch",
		SnapshotInterval:   Duration(5 * time.Minute),
		WarmRate:           10,
		ClusterName:        "isrproxy",
		NodeID:             hostName() + ":8080",
	}
}

// hostName is NODE_ID's default's first half.
func hostName() string {
	h, _ := os.Hostname()
	return h
}

// optionalVariables lists every variable Load reads but the required ones
// and the secret's file.
func optionalVariables() []string {
	var names []string
	for _, v := range Defaults() {
		switch v.Name {
		case "ORIGIN_URL", "REVALIDATE_SECRET", "REVALIDATE_SECRET_FILE":
		default:
			names = append(names, v.Name)
		}
	}
	return names
}

// loadProblems loads environ, which must fail, and returns its problems.
func loadProblems(t *testing.T, environ map[string]string) []string {
	t.Helper()
	_, err := Load(environ)
	var cerr *Error
	require.ErrorAs(t, err, &cerr)
	return cerr.Problems
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load(testEnviron())
	require.NoError(t, err)
	assert.Equal(t, defaultConfig(), cfg)
}

func TestLoadEmptyMeansDefault(t *testing.T) {
	t.Parallel()
	for _, empty := range []string{"", "   ", "\t"} {
		t.Run(fmt.Sprintf("%q", empty), func(t *testing.T) {
			t.Parallel()
			environ := testEnviron()
			for _, name := range optionalVariables() {
				environ[name] = empty
			}
			cfg, err := Load(environ)
			require.NoError(t, err)
			assert.Equal(t, defaultConfig(), cfg)
		})
	}
}

func TestLoadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		field func(Config) any
		want  any
	}{
		{"https origin with slash", testEnviron("ORIGIN_URL", "https://Origin.example:8443/"),
			func(c Config) any { return c.OriginURL.String() }, "https://Origin.example:8443"},
		{"origin without port", testEnviron("ORIGIN_URL", "http://wordpress_app"),
			func(c Config) any { return c.OriginURL.String() }, "http://wordpress_app"},
		{"origin ipv6", testEnviron("ORIGIN_URL", "http://[::1]:8080"),
			func(c Config) any { return c.OriginURL.URL().Host }, "[::1]:8080"},
		{"origin url spaces trimmed", testEnviron("ORIGIN_URL", " http://o.example \n"),
			func(c Config) any { return c.OriginURL.String() }, "http://o.example"},
		{"secret kept as is", testEnviron("REVALIDATE_SECRET", "ünïcødé-sécrét-1234"),
			func(c Config) any { return string(c.RevalidateSecret) }, "ünïcødé-sécrét-1234"},
		{"listen addr", testEnviron("LISTEN_ADDR", "127.0.0.1:0"),
			func(c Config) any { return c.ListenAddr }, "127.0.0.1:0"},
		{"admin off", testEnviron("ADMIN_ADDR", "off"),
			func(c Config) any { return c.AdminAddr }, ""},
		{"admin OFF", testEnviron("ADMIN_ADDR", " OFF "),
			func(c Config) any { return c.AdminAddr }, ""},
		{"admin ipv6", testEnviron("ADMIN_ADDR", "[::1]:9191"),
			func(c Config) any { return c.AdminAddr }, "[::1]:9191"},
		{"both listeners on port 0", testEnviron("LISTEN_ADDR", ":0", "ADMIN_ADDR", ":0"),
			func(c Config) any { return c.AdminAddr }, ":0"},
		{"revalidate path", testEnviron("REVALIDATE_PATH", "/_isr/re-validate.v1"),
			func(c Config) any { return c.RevalidatePath }, "/_isr/re-validate.v1"},
		{"sizes", testEnviron("CACHE_MAX_BYTES", "2GiB", "MAX_OBJECT_BYTES", "512KiB"),
			func(c Config) any { return [2]Size{c.CacheMaxBytes, c.MaxObjectBytes} }, [2]Size{2 << 30, 512 << 10}},
		{"durations", testEnviron("ORIGIN_TIMEOUT", "1m30s", "REVALIDATE_AFTER", "1h", "NEGATIVE_TTL", "0",
			"PASS_TTL", "0s", "SHUTDOWN_TIMEOUT", "0"),
			func(c Config) any {
				return []Duration{c.OriginTimeout, c.RevalidateAfter, c.NegativeTTL, c.PassTTL, c.ShutdownTimeout}
			},
			[]Duration{Duration(90 * time.Second), Duration(time.Hour), 0, 0, 0}},
		{"counts", testEnviron("REVALIDATE_CONCURRENCY", "1", "ORIGIN_MAX_CONCURRENCY", "1000"),
			func(c Config) any { return [2]int{c.RevalidateConcurrency, c.OriginMaxConcurrency} }, [2]int{1, 1000}},
		{"statuses trimmed", testEnviron("CACHE_STATUSES", " 200 , 404,,  410 ,"),
			func(c Config) any { return c.CacheStatuses }, Statuses{200, 404, 410}},
		{"statuses off", testEnviron("CACHE_STATUSES", "off"),
			func(c Config) any { return c.CacheStatuses }, Statuses(nil)},
		{"bypass cookies trimmed", testEnviron("BYPASS_COOKIES", " session , ,wp_* "),
			func(c Config) any { return c.BypassCookies }, CookiePatterns{"session", "wp_*"}},
		{"bypass cookies off", testEnviron("BYPASS_COOKIES", "off"),
			func(c Config) any { return c.BypassCookies }, CookiePatterns(nil)},
		{"bypass cookie star alone", testEnviron("BYPASS_COOKIES", "*"),
			func(c Config) any { return c.BypassCookies }, CookiePatterns{"*"}},
		{"allowed hosts normalised", testEnviron("ALLOWED_HOSTS", " Example.COM:80 , www.example.com.,example.com, 10.0.0.1:8080, ::1 ,[::1]:80"),
			func(c Config) any { return c.AllowedHosts },
			Hosts{"example.com", "www.example.com", "10.0.0.1:8080", "[::1]"}},
		{"ignore params trimmed", testEnviron("IGNORE_QUERY_PARAMS", " utm_* , ref,_ga "),
			func(c Config) any { return c.IgnoreQueryParams }, ParamPatterns{"utm_*", "ref", "_ga"}},
		{"ignore params off", testEnviron("IGNORE_QUERY_PARAMS", "off"),
			func(c Config) any { return c.IgnoreQueryParams }, ParamPatterns(nil)},
		{"compress types lower-cased", testEnviron("COMPRESS_TYPES", " Text/HTML , application/ld+json"),
			func(c Config) any { return c.CompressTypes }, MediaTypes{"text/html", "application/ld+json"}},
		{"compress types off", testEnviron("COMPRESS_TYPES", "off"),
			func(c Config) any { return c.CompressTypes }, MediaTypes(nil)},
		{"origin host", testEnviron("ORIGIN_HOST", "www.example.com:8443"),
			func(c Config) any { return c.OriginHost }, "www.example.com:8443"},
		{"log debug text", testEnviron("LOG_LEVEL", "debug", "LOG_FORMAT", "text"),
			func(c Config) any { return []any{c.LogLevel, c.LogFormat} }, []any{Level(slog.LevelDebug), "text"}},
		{"log warn", testEnviron("LOG_LEVEL", "warn"),
			func(c Config) any { return c.LogLevel }, Level(slog.LevelWarn)},
		{"log error", testEnviron("LOG_LEVEL", "error"),
			func(c Config) any { return c.LogLevel }, Level(slog.LevelError)},
		{"keep params", testEnviron("KEEP_QUERY_PARAMS", " p, page_id ,s,cat,paged,utm_*"),
			func(c Config) any { return c.KeepQueryParams }, ParamPatterns{"p", "page_id", "s", "cat", "paged", "utm_*"}},
		{"keep params off keeps all", testEnviron("KEEP_QUERY_PARAMS", "OFF"),
			func(c Config) any { return c.KeepQueryParams }, ParamPatterns(nil)},
		{"bypass paths", testEnviron("BYPASS_PATHS", " /wp-admin/* , /login,/a%20b"),
			func(c Config) any { return c.BypassPaths }, PathPatterns{"/wp-admin/*", "/login", "/a%20b"}},
		{"bypass paths off", testEnviron("BYPASS_PATHS", "off"),
			func(c Config) any { return c.BypassPaths }, PathPatterns(nil)},
		{"bypass path root prefix", testEnviron("BYPASS_PATHS", "/*"),
			func(c Config) any { return c.BypassPaths }, PathPatterns{"/*"}},
		{"bypass cookies new default kept when other lists change", testEnviron("IGNORE_QUERY_PARAMS", "off"),
			func(c Config) any { return len(c.BypassCookies) }, 7},
		{"compress min bytes nginx", testEnviron("COMPRESS_MIN_BYTES", "4k"),
			func(c Config) any { return c.CompressMinBytes }, Size(4 << 10)},
		{"compress min bytes zero", testEnviron("COMPRESS_MIN_BYTES", "0"),
			func(c Config) any { return c.CompressMinBytes }, Size(0)},
		{"cache sizes nginx", testEnviron("CACHE_MAX_BYTES", "1g", "MAX_OBJECT_BYTES", "16M"),
			func(c Config) any { return [2]Size{c.CacheMaxBytes, c.MaxObjectBytes} }, [2]Size{1 << 30, 16 << 20}},
		{"unsafe invalidation strict", testEnviron("UNSAFE_INVALIDATION", "strict"),
			func(c Config) any { return c.UnsafeInvalidation }, "strict"},
		{"unsafe invalidation off", testEnviron("UNSAFE_INVALIDATION", "off"),
			func(c Config) any { return c.UnsafeInvalidation }, "off"},
		{"tag headers canonical", testEnviron("TAG_HEADERS", "x-tags, surrogate-key ,X-TAGS"),
			func(c Config) any { return c.TagHeaders }, HeaderNames{"X-Tags", "Surrogate-Key"}},
		{"tag headers off", testEnviron("TAG_HEADERS", "off"),
			func(c Config) any { return c.TagHeaders }, HeaderNames(nil)},
		{"trusted proxies", testEnviron("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ,::1, 2001:db8::/32, 172.16.5.4/12"),
			func(c Config) any { return c.TrustedProxies },
			Prefixes{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
				netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("172.16.0.0/12")}},
		{"trusted proxies off", testEnviron("TRUSTED_PROXIES", "off"),
			func(c Config) any { return c.TrustedProxies }, Prefixes(nil)},
		{"purge allow", testEnviron("PURGE_ALLOW", "10.0.0.0/8, 192.168.1.7"),
			func(c Config) any { return c.PurgeAllow },
			Prefixes{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}},
		{"purge allow off", testEnviron("PURGE_ALLOW", "off"),
			func(c Config) any { return c.PurgeAllow }, Prefixes(nil)},
		{"purge mode soft", testEnviron("PURGE_MODE", "soft"),
			func(c Config) any { return c.PurgeMode }, "soft"},
		{"tls files", testEnviron("TLS_CERT_FILE", "/certs/chain.pem", "TLS_KEY_FILE", "/certs/key.pem", "TLS_ADDR", ":443"),
			func(c Config) any { return []any{c.TLSEnabled(), c.TLSAddr, c.HTTPSRedirect} }, []any{true, ":443", SwitchOn}},
		{"acme", testEnviron("ACME_DOMAINS", "Example.com., www.example.com,example.com", "ACME_EMAIL", "ops@example.com",
			"ACME_CA", "https://localhost:14000/dir", "ACME_CA_ROOT", "/pebble/root.pem", "ACME_STORAGE", "/data/acme"),
			func(c Config) any {
				return []any{c.TLSEnabled(), c.ACMEDomains, c.ACMEEmail, c.ACMECA, c.ACMECARoot, c.ACMEStorage, c.HTTPSRedirect}
			},
			[]any{true, Domains{"example.com", "www.example.com"}, "ops@example.com", "https://localhost:14000/dir",
				"/pebble/root.pem", "/data/acme", SwitchOn}},
		{"https redirect off with tls", testEnviron("ACME_DOMAINS", "example.com", "HTTPS_REDIRECT", "OFF"),
			func(c Config) any { return c.HTTPSRedirect }, SwitchOff},
		{"https redirect off without tls", testEnviron("HTTPS_REDIRECT", "off"),
			func(c Config) any { return c.HTTPSRedirect }, SwitchOff},
		{"tls addr like listen addr without tls", testEnviron("TLS_ADDR", ":8080"),
			func(c Config) any { return c.TLSEnabled() }, false},
		{"unknown variables ignored", testEnviron("PATH", "/bin", "ORIGIN", "x"),
			func(c Config) any { return c.ListenAddr }, ":8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(tt.env)
			require.NoError(t, err)
			assert.Equal(t, tt.want, tt.field(cfg))
		})
	}
}

func TestLoadBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		want        string
	}{
		{"ORIGIN_URL", "ftp://x", `ORIGIN_URL: "ftp://x" must use http or https`},
		{"ORIGIN_URL", "origin.example", `ORIGIN_URL: "origin.example" must use http or https`},
		{"ORIGIN_URL", "localhost:8080", `ORIGIN_URL: "localhost:8080" must use http or https`},
		{"ORIGIN_URL", "http://", `ORIGIN_URL: "http://" has no host`},
		{"ORIGIN_URL", "http:origin", `ORIGIN_URL: "http:origin" has no host`},
		{"ORIGIN_URL", "http://o.example:99999", `ORIGIN_URL: "http://o.example:99999" has an invalid host or port`},
		{"ORIGIN_URL", "http://o.example:", `ORIGIN_URL: "http://o.example:" has an invalid host or port`},
		{"ORIGIN_URL", "http://-bad-.example", `ORIGIN_URL: "http://-bad-.example" has an invalid host or port`},
		{"ORIGIN_URL", "http://o.example/blog", `ORIGIN_URL: "http://o.example/blog" must not have a path other than "/"`},
		{"ORIGIN_URL", "http://o.example//", `ORIGIN_URL: "http://o.example//" must not have a path other than "/"`},
		{"ORIGIN_URL", "http://o.example/?a=1", `ORIGIN_URL: "http://o.example/?a=1" must not have a query`},
		{"ORIGIN_URL", "http://o.example?", `ORIGIN_URL: "http://o.example?" must not have a query`},
		{"ORIGIN_URL", "http://o.example#top", `ORIGIN_URL: "http://o.example#top" must not have a fragment`},
		{"ORIGIN_URL", "http://o.example#", `ORIGIN_URL: "http://o.example#" must not have a fragment`},
		{"ORIGIN_URL", "http://bob@o.example", `ORIGIN_URL: "http://xxxxx@o.example" must not hold user info`},
		{"ORIGIN_URL", "http://o.exa mple", `ORIGIN_URL: "http://o.exa mple" is not a URL`},
		{"REVALIDATE_SECRET", "short", `REVALIDATE_SECRET: must be at least 16 characters`},
		{"REVALIDATE_SECRET", "ééééééééééééééé", `REVALIDATE_SECRET: must be at least 16 characters`},
		{"REVALIDATE_SECRET", "0123456789abcdef\n", `REVALIDATE_SECRET: must not hold control characters`},
		{"REVALIDATE_SECRET", " 0123456789abcdef", `REVALIDATE_SECRET: must not start or end with a space (an Authorization header cannot carry it)`},
		{"LISTEN_ADDR", "8080", `LISTEN_ADDR: "8080" is not a listen address (use host:port, e.g. ":8080")`},
		{"LISTEN_ADDR", ":http", `LISTEN_ADDR: ":http" is not a listen address (use host:port, e.g. ":8080")`},
		{"LISTEN_ADDR", ":65536", `LISTEN_ADDR: ":65536" is not a listen address (use host:port, e.g. ":8080")`},
		{"LISTEN_ADDR", "off", `LISTEN_ADDR: "off" is not allowed: this listener cannot be disabled`},
		{"ADMIN_ADDR", "localhost", `ADMIN_ADDR: "localhost" is not a listen address (use host:port, e.g. ":8080")`},
		{"ADMIN_ADDR", ":8080", `ADMIN_ADDR: ":8080" is the same as LISTEN_ADDR (use another port, or off)`},
		{"REVALIDATE_PATH", "api/revalidate", `REVALIDATE_PATH: "api/revalidate" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "//api", `REVALIDATE_PATH: "//api" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/", `REVALIDATE_PATH: "/" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/api/", `REVALIDATE_PATH: "/api/" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/api?x", `REVALIDATE_PATH: "/api?x" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/api#x", `REVALIDATE_PATH: "/api#x" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/a b", `REVALIDATE_PATH: "/a b" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/a\x00b", `REVALIDATE_PATH: "/a\x00b" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/a/../b", `REVALIDATE_PATH: "/a/../b" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"REVALIDATE_PATH", "/a%2Fb", `REVALIDATE_PATH: "/a%2Fb" is not a plain path (use letters, digits and -._~ after single slashes, e.g. "/api/revalidate")`},
		{"CACHE_MAX_BYTES", "lots", `CACHE_MAX_BYTES: "lots" is not a size (use bytes or an integer with KiB, MiB or GiB)`},
		{"CACHE_MAX_BYTES", "256MB", `CACHE_MAX_BYTES: "256MB" is not a size (use bytes or an integer with KiB, MiB or GiB)`},
		{"CACHE_MAX_BYTES", "-1", `CACHE_MAX_BYTES: "-1" must not be negative`},
		{"CACHE_MAX_BYTES", "0", `CACHE_MAX_BYTES: "0" must be greater than 0`},
		{"CACHE_MAX_BYTES", "99999999999GiB", `CACHE_MAX_BYTES: "99999999999GiB" is too large`},
		{"MAX_OBJECT_BYTES", "1.5MiB", `MAX_OBJECT_BYTES: "1.5MiB" is not a size (use bytes or an integer with KiB, MiB or GiB)`},
		{"MAX_OBJECT_BYTES", "0KiB", `MAX_OBJECT_BYTES: "0KiB" must be greater than 0`},
		{"MAX_OBJECT_BYTES", "256MiB", `MAX_OBJECT_BYTES: "256MiB" must be less than CACHE_MAX_BYTES ("256MiB")`},
		{"ORIGIN_TIMEOUT", "30", `ORIGIN_TIMEOUT: "30" is not a duration (use a unit, e.g. "30s")`},
		{"ORIGIN_TIMEOUT", "0s", `ORIGIN_TIMEOUT: "0s" must be greater than 0`},
		{"ORIGIN_TIMEOUT", "-1s", `ORIGIN_TIMEOUT: "-1s" must not be negative`},
		{"REVALIDATE_CONCURRENCY", "four", `REVALIDATE_CONCURRENCY: "four" is not a whole number`},
		{"REVALIDATE_CONCURRENCY", "0", `REVALIDATE_CONCURRENCY: "0" must be at least 1`},
		{"REVALIDATE_CONCURRENCY", "99999999999999999999", `REVALIDATE_CONCURRENCY: "99999999999999999999" is too large`},
		{"REVALIDATE_AFTER", "1 hour", `REVALIDATE_AFTER: "1 hour" is not a duration (use a unit, e.g. "30s")`},
		{"REVALIDATE_AFTER", "-5m", `REVALIDATE_AFTER: "-5m" must not be negative`},
		{"CACHE_STATUSES", "200,abc", `CACHE_STATUSES: "abc" is not a status code (use 100 to 599)`},
		{"CACHE_STATUSES", "200, 600", `CACHE_STATUSES: "600" is not a status code (use 100 to 599)`},
		{"CACHE_STATUSES", "99", `CACHE_STATUSES: "99" is not a status code (use 100 to 599)`},
		{"NEGATIVE_TTL", "60", `NEGATIVE_TTL: "60" is not a duration (use a unit, e.g. "30s")`},
		{"NEGATIVE_TTL", "-1m", `NEGATIVE_TTL: "-1m" must not be negative`},
		{"PASS_TTL", "two minutes", `PASS_TTL: "two minutes" is not a duration (use a unit, e.g. "30s")`},
		{"PASS_TTL", "-2m", `PASS_TTL: "-2m" must not be negative`},
		{"BYPASS_COOKIES", "wp*_x", `BYPASS_COOKIES: "wp*_x" may hold "*" only as its last character`},
		{"BYPASS_COOKIES", "a**", `BYPASS_COOKIES: "a**" may hold "*" only as its last character`},
		{"BYPASS_COOKIES", "my cookie", `BYPASS_COOKIES: "my cookie" is not a cookie name`},
		{"BYPASS_COOKIES", "a=b", `BYPASS_COOKIES: "a=b" is not a cookie name`},
		{"ALLOWED_HOSTS", "exa mple.com", `ALLOWED_HOSTS: "exa mple.com" is not a host name (use host or host:port)`},
		{"ALLOWED_HOSTS", "*.example.com", `ALLOWED_HOSTS: "*.example.com" is not a host name (use host or host:port)`},
		{"ALLOWED_HOSTS", "http://example.com", `ALLOWED_HOSTS: "http://example.com" is not a host name (use host or host:port)`},
		{"ALLOWED_HOSTS", "example.com:0", `ALLOWED_HOSTS: "example.com:0" is not a host name (use host or host:port)`},
		{"ALLOWED_HOSTS", "example.com/", `ALLOWED_HOSTS: "example.com/" is not a host name (use host or host:port)`},
		{"ALLOWED_HOSTS", "off", `ALLOWED_HOSTS: "off" is not a host name (leave ALLOWED_HOSTS empty to serve any host)`},
		{"ORIGIN_MAX_CONCURRENCY", "-3", `ORIGIN_MAX_CONCURRENCY: "-3" must be at least 1`},
		{"ORIGIN_MAX_CONCURRENCY", "1.5", `ORIGIN_MAX_CONCURRENCY: "1.5" is not a whole number`},
		{"IGNORE_QUERY_PARAMS", "utm_*x", `IGNORE_QUERY_PARAMS: "utm_*x" may hold "*" only as its last character`},
		{"IGNORE_QUERY_PARAMS", "a=b", `IGNORE_QUERY_PARAMS: "a=b" is not a query parameter name`},
		{"IGNORE_QUERY_PARAMS", "a&b", `IGNORE_QUERY_PARAMS: "a&b" is not a query parameter name`},
		{"COMPRESS_TYPES", "html", `COMPRESS_TYPES: "html" is not a media type (use type/subtype, e.g. "text/html")`},
		{"COMPRESS_TYPES", "text/*", `COMPRESS_TYPES: "text/*" is not a media type (use type/subtype, e.g. "text/html")`},
		{"COMPRESS_TYPES", "text/html; charset=utf-8", `COMPRESS_TYPES: "text/html; charset=utf-8" is not a media type (use type/subtype, e.g. "text/html")`},
		{"COMPRESS_TYPES", "a/b/c", `COMPRESS_TYPES: "a/b/c" is not a media type (use type/subtype, e.g. "text/html")`},
		{"ORIGIN_HOST", "evil.example\r\nX: y", `ORIGIN_HOST: "evil.example\r\nX: y" is not a host name (use host or host:port)`},
		{"ORIGIN_HOST", "example.com:", `ORIGIN_HOST: "example.com:" is not a host name (use host or host:port)`},
		{"SHUTDOWN_TIMEOUT", "25", `SHUTDOWN_TIMEOUT: "25" is not a duration (use a unit, e.g. "30s")`},
		{"SHUTDOWN_TIMEOUT", "-1s", `SHUTDOWN_TIMEOUT: "-1s" must not be negative`},
		{"LOG_LEVEL", "INFO", `LOG_LEVEL: "INFO" must be one of debug, info, warn, error`},
		{"LOG_LEVEL", "warning", `LOG_LEVEL: "warning" must be one of debug, info, warn, error`},
		{"LOG_FORMAT", "JSON", `LOG_FORMAT: "JSON" must be one of json, text`},
		{"LOG_FORMAT", "logfmt", `LOG_FORMAT: "logfmt" must be one of json, text`},
		{"PURGE_MODE", "ban", `PURGE_MODE: "ban" must be one of refetch, soft, purge`},
		{"PURGE_ALLOW", "localhost", `PURGE_ALLOW: "localhost" is not an IP address or network (use CIDR notation, e.g. "10.0.0.0/8")`},
		{"CACHE_MAX_BYTES", "1.5g", `CACHE_MAX_BYTES: "1.5g" is not a size (use bytes or an integer with KiB, MiB or GiB)`},
		{"MAX_OBJECT_BYTES", "256m", `MAX_OBJECT_BYTES: "256m" must be less than CACHE_MAX_BYTES ("256MiB")`},
		{"KEEP_QUERY_PARAMS", "p,a=b", `KEEP_QUERY_PARAMS: "a=b" is not a query parameter name`},
		{"KEEP_QUERY_PARAMS", "pa*ge", `KEEP_QUERY_PARAMS: "pa*ge" may hold "*" only as its last character`},
		{"BYPASS_PATHS", "wp-admin/*", `BYPASS_PATHS: "wp-admin/*" must start with "/"`},
		{"BYPASS_PATHS", "/a*/b", `BYPASS_PATHS: "/a*/b" may hold "*" only as its last character`},
		{"BYPASS_PATHS", "/a b", `BYPASS_PATHS: "/a b" is not a path (no spaces, control characters, "?" or "#")`},
		{"BYPASS_PATHS", "/a?b=1", `BYPASS_PATHS: "/a?b=1" is not a path (no spaces, control characters, "?" or "#")`},
		{"COMPRESS_MIN_BYTES", "-1", `COMPRESS_MIN_BYTES: "-1" must not be negative`},
		{"COMPRESS_MIN_BYTES", "1KB", `COMPRESS_MIN_BYTES: "1KB" is not a size (use bytes or an integer with KiB, MiB or GiB)`},
		{"UNSAFE_INVALIDATION", "hard", `UNSAFE_INVALIDATION: "hard" must be one of soft, strict, off`},
		{"UNSAFE_INVALIDATION", "Soft", `UNSAFE_INVALIDATION: "Soft" must be one of soft, strict, off`},
		{"TAG_HEADERS", "Cache Tag", `TAG_HEADERS: "Cache Tag" is not a header name`},
		{"TAG_HEADERS", "X-Tags:", `TAG_HEADERS: "X-Tags:" is not a header name`},
		{"TRUSTED_PROXIES", "10.0.0.0/33", `TRUSTED_PROXIES: "10.0.0.0/33" is not an IP address or network (use CIDR notation, e.g. "10.0.0.0/8")`},
		{"TRUSTED_PROXIES", "lb.internal", `TRUSTED_PROXIES: "lb.internal" is not an IP address or network (use CIDR notation, e.g. "10.0.0.0/8")`},
		{"TRUSTED_PROXIES", "fe80::1%eth0", `TRUSTED_PROXIES: "fe80::1%eth0" is not an IP address or network (use CIDR notation, e.g. "10.0.0.0/8")`},
		{"REDIS_URL", "http://127.0.0.1:6379", `REDIS_URL: not a redis:// or rediss:// URL (the value is not shown: it may hold a password)`},
		{"REDIS_URL", "redis://:secretpw@127.0.0.1:notaport", `REDIS_URL: not a valid redis:// or rediss:// URL (the value is not shown: it may hold a password)`},
		{"REDIS_URL", "127.0.0.1:6379", `REDIS_URL: not a redis:// or rediss:// URL (the value is not shown: it may hold a password)`},
		{"CLUSTER_NAME", "my site", `CLUSTER_NAME: "my site" is not a cluster name (letters, digits, '.', '_', '-' and ':', at most 64)`},
		{"NODE_ID", "web 1", `NODE_ID: "web 1" is not a node name (letters, digits, '.', '_', '-' and ':', at most 128)`},
		{"TLS_ADDR", "8443", `TLS_ADDR: "8443" is not a listen address (use host:port, e.g. ":8443")`},
		{"TLS_ADDR", "off", `TLS_ADDR: "off" is not allowed: leave TLS_CERT_FILE, TLS_KEY_FILE and ACME_DOMAINS empty for no HTTPS`},
		{"TLS_CERT_FILE", "/c.pem", `TLS_KEY_FILE: is required when TLS_CERT_FILE is set`},
		{"TLS_KEY_FILE", "/k.pem", `TLS_CERT_FILE: is required when TLS_KEY_FILE is set`},
		{"ACME_DOMAINS", "*.example.com", `ACME_DOMAINS: "*.example.com" is not a domain name (use a name such as "www.example.com", without port or "*")`},
		{"ACME_DOMAINS", "example.com:443", `ACME_DOMAINS: "example.com:443" is not a domain name (use a name such as "www.example.com", without port or "*")`},
		{"ACME_DOMAINS", "10.0.0.1", `ACME_DOMAINS: "10.0.0.1" is not a domain name (use a name such as "www.example.com", without port or "*")`},
		{"ACME_DOMAINS", "my_app.example.com", `ACME_DOMAINS: "my_app.example.com" is not a domain name (use a name such as "www.example.com", without port or "*")`},
		{"ACME_DOMAINS", "Off", `ACME_DOMAINS: "Off" is not a domain name (leave ACME_DOMAINS empty for no ACME certificates)`},
		{"ACME_EMAIL", "admin", `ACME_EMAIL: "admin" is not an email address (use name@example.com)`},
		{"ACME_EMAIL", "Ops <ops@example.com>", `ACME_EMAIL: "Ops <ops@example.com>" is not an email address (use name@example.com)`},
		{"ACME_CA", "http://ca.example/dir", `ACME_CA: "http://ca.example/dir" is not an https URL (e.g. "https://acme-staging-v02.api.letsencrypt.org/directory")`},
		{"ACME_CA", "ca.example/dir", `ACME_CA: "ca.example/dir" is not an https URL (e.g. "https://acme-staging-v02.api.letsencrypt.org/directory")`},
		{"ACME_CA", "https://u:hunter2@ca.example/dir", `ACME_CA: "https://xxxxx@ca.example/dir" must not hold user info`},
		{"HTTPS_REDIRECT", "on", `HTTPS_REDIRECT: "on" needs HTTPS: set TLS_CERT_FILE and TLS_KEY_FILE, or ACME_DOMAINS`},
		{"HTTPS_REDIRECT", "yes", `HTTPS_REDIRECT: "yes" must be on or off`},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			problems := loadProblems(t, testEnviron(tt.name, tt.value))
			assert.Equal(t, []string{tt.want}, problems)
			for _, p := range problems {
				assert.Contains(t, p, tt.name, "problem %q does not name the variable", p)
			}
		})
	}
}

func TestLoadRequired(t *testing.T) {
	t.Parallel()
	for _, environ := range []map[string]string{
		{},
		{"ORIGIN_URL": "", "REVALIDATE_SECRET": ""},
		{"ORIGIN_URL": "  ", "REVALIDATE_SECRET": " \t "},
	} {
		assert.Equal(t, []string{"ORIGIN_URL: is required", "REVALIDATE_SECRET: is required"},
			loadProblems(t, environ))
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	environ := map[string]string{
		"ORIGIN_URL":             "ftp://x",
		"REVALIDATE_SECRET":      "tooshort",
		"CACHE_MAX_BYTES":        "lots",
		"ORIGIN_TIMEOUT":         "30",
		"CACHE_STATUSES":         "200,abc,700",
		"ORIGIN_MAX_CONCURRENCY": "0",
		"LOG_LEVEL":              "INFO",
		"LOG_FORMAT":             "xml",
	}
	_, err := Load(environ)
	var cerr *Error
	require.ErrorAs(t, err, &cerr)
	want := []string{
		`ORIGIN_URL: "ftp://x" must use http or https`,
		`REVALIDATE_SECRET: must be at least 16 characters`,
		`CACHE_MAX_BYTES: "lots" is not a size (use bytes or an integer with KiB, MiB or GiB)`,
		`ORIGIN_TIMEOUT: "30" is not a duration (use a unit, e.g. "30s")`,
		`CACHE_STATUSES: "abc" is not a status code (use 100 to 599)`,
		`CACHE_STATUSES: "700" is not a status code (use 100 to 599)`,
		`ORIGIN_MAX_CONCURRENCY: "0" must be at least 1`,
		`LOG_LEVEL: "INFO" must be one of debug, info, warn, error`,
		`LOG_FORMAT: "xml" must be one of json, text`,
	}
	assert.Equal(t, want, cerr.Problems)
	assert.Equal(t, strings.Join(want, "\n"), err.Error())
	assert.NotContains(t, err.Error(), "tooshort")
	assert.NotContains(t, err.Error(), "CacheMaxBytes", "messages name variables, not Go fields")
}

func TestLoadNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	for _, environ := range []map[string]string{
		testEnviron("REVALIDATE_SECRET", "hunter2"),
		testEnviron("REVALIDATE_SECRET", "hunter2-hunter2-hunter2\x00"),
		testEnviron("ORIGIN_URL", "http://admin:hunter2@o.example/"),
		testEnviron("ORIGIN_URL", "http://admin:hunter2@o.exa mple/"),
	} {
		_, err := Load(environ)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}

func TestSizeUnmarshalText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "100B", want: 100},
		{in: "512KiB", want: 512 << 10},
		{in: "256MiB", want: 256 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "0008MiB", want: 8 << 20},
		{in: "256k", want: 256 << 10},
		{in: "256K", want: 256 << 10},
		{in: "256m", want: 256 << 20},
		{in: "256M", want: 256 << 20},
		{in: "1g", want: 1 << 30},
		{in: "1G", want: 1 << 30},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "8589934591g", want: 8589934591 << 30},
		{in: "", wantErr: `"" is not a size`},
		{in: "lots", wantErr: `"lots" is not a size`},
		{in: "MiB", wantErr: `"MiB" is not a size`},
		{in: "k", wantErr: `"k" is not a size`},
		{in: "1.5GiB", wantErr: `"1.5GiB" is not a size`},
		{in: "1.5m", wantErr: `"1.5m" is not a size`},
		{in: "256MB", wantErr: `"256MB" is not a size`},
		{in: "256mib", wantErr: `"256mib" is not a size`},
		{in: "256kb", wantErr: `"256kb" is not a size`},
		{in: "1TiB", wantErr: `"1TiB" is not a size`},
		{in: "1t", wantErr: `"1t" is not a size`},
		{in: "256 MiB", wantErr: `"256 MiB" is not a size`},
		{in: "+5", wantErr: `"+5" is not a size`},
		{in: "1e6", wantErr: `"1e6" is not a size`},
		{in: "0x10", wantErr: `"0x10" is not a size`},
		{in: "-1", wantErr: `"-1" must not be negative`},
		{in: "-5MiB", wantErr: `"-5MiB" must not be negative`},
		{in: "-1k", wantErr: `"-1k" must not be negative`},
		{in: "9223372036854775808", wantErr: `"9223372036854775808" is too large`},
		{in: "8589934592GiB", wantErr: `"8589934592GiB" is too large`},
		{in: "8589934592G", wantErr: `"8589934592G" is too large`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got := Size(42)
			err := got.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, Size(42), got, "unchanged on error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSizeString(t *testing.T) {
	t.Parallel()
	for in, want := range map[Size]string{0: "0", 1000: "1000", 1 << 10: "1KiB", 256 << 20: "256MiB",
		2 << 30: "2GiB", 1536 << 10: "1536KiB", 1<<63 - 1: "9223372036854775807"} {
		assert.Equal(t, want, in.String())
		var back Size
		require.NoError(t, back.UnmarshalText([]byte(in.String())))
		assert.Equal(t, in, back, "String parses back")
	}
}

func TestSecretRedaction(t *testing.T) {
	t.Parallel()
	cfg, err := Load(testEnviron())
	require.NoError(t, err)
	s := cfg.RevalidateSecret
	require.Equal(t, testSecret, string(s))

	for _, format := range []string{"%v", "%s", "%q", "%x", "%d", "%+v", "%#v"} {
		for _, value := range []any{s, cfg, &cfg} {
			out := fmt.Sprintf(format, value)
			assert.NotContains(t, out, testSecret, "format %s of %T", format, value)
		}
	}
	assert.Equal(t, "[redacted]", fmt.Sprint(s))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("config", "secret", s, "config", cfg, slog.Any("any", s))
	}
	assert.Contains(t, buf.String(), "[redacted]")
	assert.NotContains(t, buf.String(), testSecret)

	out, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.NotContains(t, string(out), testSecret)
}

func TestErrorError(t *testing.T) {
	t.Parallel()
	err := &Error{Problems: []string{"A: one", "B: two"}}
	assert.Equal(t, "A: one\nB: two", err.Error())
}

func TestLoadTLSCombinations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"files and acme", testEnviron("TLS_CERT_FILE", "/c.pem", "TLS_KEY_FILE", "/k.pem", "ACME_DOMAINS", "example.com"),
			[]string{"ACME_DOMAINS: cannot be used together with TLS_CERT_FILE and TLS_KEY_FILE (certificates come from the files or from ACME, not both)"}},
		{"redirect on with half the files names only the missing file",
			testEnviron("TLS_CERT_FILE", "/c.pem", "HTTPS_REDIRECT", "on"),
			[]string{"TLS_KEY_FILE: is required when TLS_CERT_FILE is set"}},
		{"tls addr same as listen addr", testEnviron("ACME_DOMAINS", "example.com", "TLS_ADDR", ":8080"),
			[]string{`TLS_ADDR: ":8080" is the same as LISTEN_ADDR (use another port)`}},
		{"tls addr same as admin addr", testEnviron("ACME_DOMAINS", "example.com", "TLS_ADDR", ":9090"),
			[]string{`TLS_ADDR: ":9090" is the same as ADMIN_ADDR (use another port)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, loadProblems(t, tt.env))
		})
	}
}

func TestLoadSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	noSecret := func(pairs ...string) map[string]string {
		environ := testEnviron(pairs...)
		delete(environ, "REVALIDATE_SECRET")
		return environ
	}

	t.Run("read, trailing newlines stripped", func(t *testing.T) {
		t.Parallel()
		for _, content := range []string{testSecret, testSecret + "\n", testSecret + "\r\n", testSecret + "\n\n"} {
			path := write(fmt.Sprintf("ok%d", len(content)), content)
			cfg, err := Load(noSecret("REVALIDATE_SECRET_FILE", " "+path+" "))
			require.NoError(t, err)
			assert.Equal(t, testSecret, string(cfg.RevalidateSecret))
			assert.Equal(t, path, cfg.RevalidateSecretFile)
		}
	})

	short := write("short", "hunter2\n")
	inner := write("inner", "hunter2-hunter2\nhunter2\n")
	spaced := write("spaced", " hunter2-hunter2-hunter2\n")
	empty := write("empty", "\n")
	large := write("large", strings.Repeat("x", maxSecretFile+1))
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"both set", testEnviron("REVALIDATE_SECRET_FILE", short),
			"REVALIDATE_SECRET_FILE: cannot be used together with REVALIDATE_SECRET (set one of them)"},
		{"missing file", noSecret("REVALIDATE_SECRET_FILE", missing),
			fmt.Sprintf("REVALIDATE_SECRET_FILE: cannot read the secret: open %s: no such file or directory", missing)},
		{"a directory", noSecret("REVALIDATE_SECRET_FILE", dir),
			fmt.Sprintf("REVALIDATE_SECRET_FILE: cannot read the secret: read %s: is a directory", dir)},
		{"short", noSecret("REVALIDATE_SECRET_FILE", short),
			fmt.Sprintf("REVALIDATE_SECRET_FILE: the secret in %q must be at least 16 characters", short)},
		{"two lines", noSecret("REVALIDATE_SECRET_FILE", inner),
			fmt.Sprintf("REVALIDATE_SECRET_FILE: the secret in %q must not hold control characters", inner)},
		{"leading space", noSecret("REVALIDATE_SECRET_FILE", spaced),
			fmt.Sprintf("REVALIDATE_SECRET_FILE: the secret in %q must not start or end with a space (an Authorization header cannot carry it)", spaced)},
		{"empty", noSecret("REVALIDATE_SECRET_FILE", empty), fmt.Sprintf("REVALIDATE_SECRET_FILE: %q is empty", empty)},
		{"large", noSecret("REVALIDATE_SECRET_FILE", large),
			fmt.Sprintf("REVALIDATE_SECRET_FILE: %q is larger than 64 KiB: not a secret", large)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problems := loadProblems(t, tt.env)
			assert.Equal(t, []string{tt.want}, problems)
			assert.NotContains(t, strings.Join(problems, "\n"), "hunter2")
		})
	}
}

// Whatever the values, Load returns a Config or an *Error whose every line
// names a variable, and never panics.
func TestLoadAnyValueGivesNamedProblems(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, v := range Defaults() {
		names[v.Name] = true
	}
	values := []string{"off", "on", "0", "-1", "1", "x", "*", ",", " , ,", "\x00", "\r\n", "%", "[::1", "::",
		"http://", "https://a:b@c/d?e#f", "99999999999999999999999", "1e400", "é", "/", "//", "a=b", ":", "1k", "1.5"}
	for name := range names {
		for _, value := range values {
			_, err := Load(testEnviron(name, value))
			if err == nil {
				continue
			}
			var cerr *Error
			require.ErrorAs(t, err, &cerr, "%s=%q", name, value)
			require.NotEmpty(t, cerr.Problems, "%s=%q", name, value)
			for _, p := range cerr.Problems {
				variable, _, ok := strings.Cut(p, ": ")
				assert.True(t, ok && names[variable], "%s=%q: %q does not start with a variable", name, value, p)
			}
		}
	}
}

func TestLoadOrdersProblemsByVariable(t *testing.T) {
	t.Parallel()
	environ := map[string]string{
		"TRUSTED_PROXIES":  "x",
		"LOG_FORMAT":       "xml",
		"MAX_OBJECT_BYTES": "1GiB",
		"LISTEN_ADDR":      "off",
		"ORIGIN_URL":       "http://o.example",
	}
	assert.Equal(t, []string{
		"REVALIDATE_SECRET: is required",
		`LISTEN_ADDR: "off" is not allowed: this listener cannot be disabled`,
		`MAX_OBJECT_BYTES: "1GiB" must be less than CACHE_MAX_BYTES ("256MiB")`,
		`LOG_FORMAT: "xml" must be one of json, text`,
		`TRUSTED_PROXIES: "x" is not an IP address or network (use CIDR notation, e.g. "10.0.0.0/8")`,
	}, loadProblems(t, environ))
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	vars := Defaults()
	var names []string
	defaults := map[string]string{}
	for _, v := range vars {
		names = append(names, v.Name)
		defaults[v.Name] = v.Default
	}
	assert.Equal(t, []string{"ORIGIN_URL", "REVALIDATE_SECRET", "REVALIDATE_SECRET_FILE", "LISTEN_ADDR", "ADMIN_ADDR",
		"REVALIDATE_PATH", "CACHE_MAX_BYTES", "MAX_OBJECT_BYTES", "ORIGIN_TIMEOUT", "REVALIDATE_CONCURRENCY",
		"REVALIDATE_AFTER", "CACHE_STATUSES", "NEGATIVE_TTL", "PASS_TTL", "BYPASS_COOKIES", "ALLOWED_HOSTS",
		"ORIGIN_MAX_CONCURRENCY", "IGNORE_QUERY_PARAMS", "KEEP_QUERY_PARAMS", "BYPASS_PATHS", "COMPRESS_TYPES",
		"COMPRESS_MIN_BYTES", "ORIGIN_HOST", "UNSAFE_INVALIDATION", "TAG_HEADERS", "SHUTDOWN_TIMEOUT", "LOG_LEVEL",
		"LOG_FORMAT", "TLS_ADDR", "TLS_CERT_FILE", "TLS_KEY_FILE", "ACME_DOMAINS", "ACME_EMAIL", "ACME_CA",
		"ACME_CA_ROOT", "ACME_STORAGE", "HTTPS_REDIRECT", "TRUSTED_PROXIES", "PURGE_ALLOW", "PURGE_MODE",
		"SNAPSHOT_PATH", "SNAPSHOT_INTERVAL", "WARM_SITEMAP", "WARM_PATHS_FILE", "WARM_RATE",
		"REDIS_URL", "CLUSTER_NAME", "NODE_ID"}, names)

	// The constants follow the tags, and the revalidate API's own default
	// follows them too.
	assert.Equal(t, DefaultListenAddr, defaults["LISTEN_ADDR"])
	assert.Equal(t, DefaultAdminAddr, defaults["ADMIN_ADDR"])
	assert.Equal(t, DefaultRevalidatePath, defaults["REVALIDATE_PATH"])
	assert.Equal(t, purge.DefaultPath, DefaultRevalidatePath)
	assert.Equal(t, "1KiB", defaults["COMPRESS_MIN_BYTES"])
	assert.Equal(t, "", defaults["HTTPS_REDIRECT"], "its default depends on TLS")

	// Setting every variable to its default changes nothing.
	environ := testEnviron()
	for _, v := range vars {
		if v.Default != "" {
			environ[v.Name] = v.Default
		}
	}
	cfg, err := Load(environ)
	require.NoError(t, err)
	assert.Equal(t, defaultConfig(), cfg)

	// Every field is read from a variable.
	typ := reflect.TypeFor[Config]()
	assert.Len(t, vars, typ.NumField())
}
