// Package config reads isrproxy's configuration from environment variables.
//
// [Config]'s struct tags are the one table of variables and defaults:
// github.com/caarlos0/env parses each variable straight into its field, most
// through the [encoding.TextUnmarshaler] types of this package, and [Load]
// then checks what one value alone cannot tell (a listener that cannot be
// off, two variables that exclude each other). Every problem is reported at
// once, one "NAME: problem" line each, in a [*Error].
package config

import (
	"reflect"
	"strings"
)

// Defaults that other packages need as constants. The struct tags of
// [Config] stay the source: a test fails when one of these differs from its
// tag.
const (
	// DefaultListenAddr is LISTEN_ADDR's default.
	DefaultListenAddr = ":8080"
	// DefaultAdminAddr is ADMIN_ADDR's default.
	DefaultAdminAddr = ":9090"
	// DefaultRevalidatePath is REVALIDATE_PATH's default.
	DefaultRevalidatePath = "/api/revalidate"
)

// Config is isrproxy's whole configuration, read from the environment by
// [Load]. Every value is already converted, validated and defaulted; a nil
// list means none (the variable was "off" or has no default), never "use the
// default".
//
// The order of the fields is the order of the variables in the
// documentation, and the order in which problems are reported.
type Config struct {
	// OriginURL is ORIGIN_URL: http or https, a host and an optional port,
	// nothing else.
	OriginURL URL `env:"ORIGIN_URL,notEmpty"`
	// RevalidateSecret is REVALIDATE_SECRET, at least 16 characters, or the
	// content of REVALIDATE_SECRET_FILE without its trailing newlines.
	RevalidateSecret Secret `env:"REVALIDATE_SECRET"`
	// RevalidateSecretFile is REVALIDATE_SECRET_FILE, the path of a file
	// holding the secret (a Docker or Kubernetes secret); "" when the secret
	// comes from REVALIDATE_SECRET.
	RevalidateSecretFile string `env:"REVALIDATE_SECRET_FILE"`
	// ListenAddr is LISTEN_ADDR, the public listener (host:port).
	ListenAddr string `env:"LISTEN_ADDR" envDefault:":8080"`
	// AdminAddr is ADMIN_ADDR, the health and metrics listener; "" when
	// ADMIN_ADDR=off disables it.
	AdminAddr string `env:"ADMIN_ADDR" envDefault:":9090"`
	// RevalidatePath is REVALIDATE_PATH, the path of the revalidate API.
	RevalidatePath string `env:"REVALIDATE_PATH" envDefault:"/api/revalidate"`
	// CacheMaxBytes is CACHE_MAX_BYTES, the memory budget for stored pages,
	// always > 0.
	CacheMaxBytes Size `env:"CACHE_MAX_BYTES" envDefault:"256MiB"`
	// MaxObjectBytes is MAX_OBJECT_BYTES: larger responses are streamed
	// through, not stored. Always > 0 and below CacheMaxBytes.
	MaxObjectBytes Size `env:"MAX_OBJECT_BYTES" envDefault:"8MiB"`
	// OriginTimeout is ORIGIN_TIMEOUT, the limit for one origin request,
	// always > 0.
	OriginTimeout Duration `env:"ORIGIN_TIMEOUT" envDefault:"30s"`
	// RevalidateConcurrency is REVALIDATE_CONCURRENCY, always >= 1.
	RevalidateConcurrency int `env:"REVALIDATE_CONCURRENCY" envDefault:"4"`
	// RevalidateAfter is REVALIDATE_AFTER; 0 keeps pages until revalidated.
	RevalidateAfter Duration `env:"REVALIDATE_AFTER" envDefault:"0"`
	// CacheStatuses is CACHE_STATUSES, the origin status codes that are
	// stored; nil stores nothing.
	CacheStatuses Statuses `env:"CACHE_STATUSES" envDefault:"200,203,300,301,308,404,410"`
	// NegativeTTL is NEGATIVE_TTL.
	NegativeTTL Duration `env:"NEGATIVE_TTL" envDefault:"60s"`
	// PassTTL is PASS_TTL.
	PassTTL Duration `env:"PASS_TTL" envDefault:"2m"`
	// BypassCookies is BYPASS_COOKIES; nil when off.
	BypassCookies CookiePatterns `env:"BYPASS_COOKIES" envDefault:"wordpress_logged_in_*,wp-postpass_*,comment_author_*,woocommerce_items_in_cart,wp_woocommerce_session_*,SESS*,SSESS*"`
	// AllowedHosts is ALLOWED_HOSTS, normalised like a key's host; nil
	// serves any host.
	AllowedHosts Hosts `env:"ALLOWED_HOSTS"`
	// OriginMaxConcurrency is ORIGIN_MAX_CONCURRENCY, always >= 1.
	OriginMaxConcurrency int `env:"ORIGIN_MAX_CONCURRENCY" envDefault:"64"`
	// IgnoreQueryParams is IGNORE_QUERY_PARAMS; nil when off.
	IgnoreQueryParams ParamPatterns `env:"IGNORE_QUERY_PARAMS" envDefault:"utm_*,gclid,fbclid"`
	// KeepQueryParams is KEEP_QUERY_PARAMS: when not nil, the only query
	// parameters kept. nil (empty or off) keeps every parameter.
	KeepQueryParams ParamPatterns `env:"KEEP_QUERY_PARAMS"`
	// BypassPaths is BYPASS_PATHS, paths that always pass through
	// uncached; nil when off.
	BypassPaths PathPatterns `env:"BYPASS_PATHS" envDefault:"/wp-admin/*,/wp-login.php,/wp-cron.php,/xmlrpc.php,/user/*,/admin/*"`
	// CompressTypes is COMPRESS_TYPES, lower-case media types gzipped when
	// stored; nil when off.
	CompressTypes MediaTypes `env:"COMPRESS_TYPES" envDefault:"text/html,text/css,text/plain,text/xml,application/javascript,application/json,application/xml,image/svg+xml"`
	// CompressMinBytes is COMPRESS_MIN_BYTES: smaller bodies are stored as
	// received.
	CompressMinBytes Size `env:"COMPRESS_MIN_BYTES" envDefault:"1KiB"`
	// OriginHost is ORIGIN_HOST, the Host sent to the origin; "" sends the
	// visitor's.
	OriginHost string `env:"ORIGIN_HOST"`
	// UnsafeInvalidation is UNSAFE_INVALIDATION: "soft", "strict" or "off".
	UnsafeInvalidation string `env:"UNSAFE_INVALIDATION" envDefault:"soft"`
	// TagHeaders is TAG_HEADERS, canonical header names whose values tag a
	// page; nil when off.
	TagHeaders HeaderNames `env:"TAG_HEADERS" envDefault:"Cache-Tag,Surrogate-Key,Cache-Tags,X-Cache-Tags"`
	// ShutdownTimeout is SHUTDOWN_TIMEOUT.
	ShutdownTimeout Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"25s"`
	// LogLevel is LOG_LEVEL.
	LogLevel Level `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is LOG_FORMAT, "json" or "text".
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`

	// TLSAddr is TLS_ADDR, the HTTPS listener, used when [Config.TLSEnabled].
	TLSAddr string `env:"TLS_ADDR" envDefault:":8443"`
	// TLSCertFile is TLS_CERT_FILE, a PEM certificate chain; set together
	// with TLSKeyFile, or neither is.
	TLSCertFile string `env:"TLS_CERT_FILE"`
	// TLSKeyFile is TLS_KEY_FILE, the PEM key of TLSCertFile.
	TLSKeyFile string `env:"TLS_KEY_FILE"`
	// ACMEDomains is ACME_DOMAINS, lower-case domain names that get
	// certificates over ACME; never set together with the certificate files.
	ACMEDomains Domains `env:"ACME_DOMAINS"`
	// ACMEEmail is ACME_EMAIL, the contact address given to the CA.
	ACMEEmail string `env:"ACME_EMAIL"`
	// ACMECA is ACME_CA, the https URL of the ACME directory.
	ACMECA string `env:"ACME_CA" envDefault:"https://acme-v02.api.letsencrypt.org/directory"`
	// ACMECARoot is ACME_CA_ROOT, a PEM file of extra roots to trust for
	// ACMECA.
	ACMECARoot string `env:"ACME_CA_ROOT"`
	// ACMEStorage is ACME_STORAGE, where accounts and certificates are kept.
	ACMEStorage string `env:"ACME_STORAGE" envDefault:"./isrproxy-data/acme"`
	// HTTPSRedirect is HTTPS_REDIRECT. Load resolves an unset value: on
	// when TLS is configured, off otherwise.
	HTTPSRedirect Switch `env:"HTTPS_REDIRECT"`
	// TrustedProxies is TRUSTED_PROXIES, the peers whose forwarding headers
	// are believed; nil trusts none.
	TrustedProxies Prefixes `env:"TRUSTED_PROXIES"`
	// PurgeAllow is PURGE_ALLOW, the client networks whose PURGE and BAN
	// requests need no secret; nil (off) lets none.
	PurgeAllow Prefixes `env:"PURGE_ALLOW" envDefault:"127.0.0.1/32,::1/128"`
	// PurgeMode is PURGE_MODE, what a PURGE or BAN without X-Purge-Mode
	// does: "refetch", "soft" or "purge".
	PurgeMode string `env:"PURGE_MODE" envDefault:"refetch"`

	// SnapshotPath is SNAPSHOT_PATH, the file every stored page is saved
	// to and loaded from at start; "" for none. Its directory exists and
	// is writable, and it is not itself a directory.
	SnapshotPath string `env:"SNAPSHOT_PATH"`
	// SnapshotInterval is SNAPSHOT_INTERVAL, how often the snapshot is
	// written; 0 writes it only on shutdown.
	SnapshotInterval Duration `env:"SNAPSHOT_INTERVAL" envDefault:"5m"`
	// WarmSitemap is WARM_SITEMAP, the path on the origin of a sitemap
	// whose pages are filled at start; "" for none. Set only together
	// with ALLOWED_HOSTS.
	WarmSitemap string `env:"WARM_SITEMAP"`
	// WarmPathsFile is WARM_PATHS_FILE, a readable file of paths filled
	// at start for each allowed host; "" for none. Set only together with
	// ALLOWED_HOSTS.
	WarmPathsFile string `env:"WARM_PATHS_FILE"`
	// WarmRate is WARM_RATE, the most warm-up fills started per second,
	// always > 0.
	WarmRate Rate `env:"WARM_RATE" envDefault:"10"`

	// RedisURL is REDIS_URL, a redis:// or rediss:// URL; "" runs a single
	// node, which never reaches Redis.
	RedisURL string `env:"REDIS_URL"`
	// ClusterName is CLUSTER_NAME, the prefix of every key in Redis.
	ClusterName string `env:"CLUSTER_NAME" envDefault:"isrproxy"`
	// NodeID is NODE_ID, this replica's name; Load defaults it to the host
	// name and LISTEN_ADDR's port ("web-1:8080").
	NodeID string `env:"NODE_ID"`
}

// TLSEnabled reports whether HTTPS is configured: certificate files, or
// domains to get certificates for over ACME.
func (c Config) TLSEnabled() bool {
	return (c.TLSCertFile != "" && c.TLSKeyFile != "") || len(c.ACMEDomains) > 0
}

// Variable is one environment variable [Load] reads.
type Variable struct {
	// Name is the variable's name, e.g. "LISTEN_ADDR".
	Name string
	// Default is the value used when the variable is unset or empty; ""
	// when there is none (the variable is required, optional, or its
	// default depends on other variables).
	Default string
}

// Defaults lists every variable [Load] reads with its default, in the order
// of [Config]'s fields. It is read from the struct tags, the one place
// defaults are written.
func Defaults() []Variable {
	var vars []Variable
	for _, f := range reflect.VisibleFields(reflect.TypeFor[Config]()) {
		name := variableName(f)
		if name == "" {
			continue
		}
		vars = append(vars, Variable{Name: name, Default: f.Tag.Get("envDefault")})
	}
	return vars
}

// variableName is the variable a field of Config is read from, "" for none.
func variableName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

// Error lists every configuration problem, each "NAME: problem".
type Error struct {
	// Problems are the lines, in the order of the variables they name.
	Problems []string
}

// Error returns the problems, one per line.
func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }
