package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
)

// Names of the variables Load treats apart from the others.
const (
	secretVar     = "REVALIDATE_SECRET"
	secretFileVar = "REVALIDATE_SECRET_FILE"
)

// maxSecretFile bounds what is read of REVALIDATE_SECRET_FILE: a path to a
// device or a log file by mistake must not fill the memory.
const maxSecretFile = 64 << 10

// Load reads the configuration from environ (a map such as the process
// environment; nothing else is read). Surrounding spaces are trimmed from
// every value but REVALIDATE_SECRET, and a value that is empty or only
// spaces means the default. On failure it returns a [*Error] listing every
// problem, in the order of [Config]'s fields.
func Load(environ map[string]string) (Config, error) {
	// Never nil: env reads the process environment when given a nil map.
	trimmed := make(map[string]string, len(environ))
	for name, value := range environ {
		if strings.TrimSpace(value) == "" {
			continue // empty means default; env does this only for ""
		}
		if name != secretVar {
			value = strings.TrimSpace(value)
		}
		trimmed[name] = value
	}

	l := loader{environ: trimmed, failed: map[string]bool{}}
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: trimmed}); err != nil {
		l.envErrors(err)
	}
	l.check(&cfg)
	if len(l.problems) > 0 {
		return Config{}, &Error{Problems: l.sorted()}
	}
	return cfg, nil
}

// problem is one line of an Error, before sorting.
type problem struct {
	name, text string
}

// loader collects the problems of one Load.
type loader struct {
	environ  map[string]string // trimmed, without empty values
	problems []problem
	failed   map[string]bool // variables env could not parse
}

func (l *loader) fail(name, format string, args ...any) {
	l.problems = append(l.problems, problem{name, fmt.Sprintf(format, args...)})
}

// ok reports whether name was parsed: checks on its value are made only
// then, so that one bad value gives one line.
func (l *loader) ok(name string) bool { return !l.failed[name] }

// raw is the text of a variable as given, or its default.
func (l *loader) raw(name string) string {
	if v, ok := l.environ[name]; ok {
		return v
	}
	for _, v := range Defaults() {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// sorted returns the problems in the order of Config's fields, keeping the
// order within one variable.
func (l *loader) sorted() []string {
	order := map[string]int{}
	for i, v := range Defaults() {
		order[v.Name] = i
	}
	rank := func(name string) int {
		if i, ok := order[name]; ok {
			return i
		}
		return len(order) // not a variable: last
	}
	slices.SortStableFunc(l.problems, func(a, b problem) int { return rank(a.name) - rank(b.name) })
	lines := make([]string, len(l.problems))
	for i, p := range l.problems {
		lines[i] = p.name + ": " + p.text
	}
	return lines
}

// envErrors rewords env's errors, which name Go fields and types, as
// "NAME: problem" lines.
func (l *loader) envErrors(err error) {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		l.fail("environment", "%v", err)
		return
	}
	for _, e := range agg.Errors {
		var (
			parse  env.ParseError
			empty  env.EmptyVarError
			notSet env.VarIsNotSetError
		)
		switch {
		case errors.As(e, &parse):
			name := fieldVariable(parse.Name)
			l.failed[name] = true
			l.parseProblems(name, parse.Err)
		case errors.As(e, &empty):
			l.failed[empty.Key] = true
			l.fail(empty.Key, "is required")
		case errors.As(e, &notSet):
			l.failed[notSet.Key] = true
			l.fail(notSet.Key, "is required")
		default:
			// A struct tag env does not understand: a bug, reported
			// rather than hidden.
			l.fail("environment", "%v", e)
		}
	}
}

// parseProblems adds the lines of one value that could not be parsed.
func (l *loader) parseProblems(name string, err error) {
	var items itemErrors
	var num *strconv.NumError
	switch {
	case errors.As(err, &items):
		for _, e := range items {
			l.fail(name, "%v", e)
		}
	case errors.As(err, &num) && errors.Is(num.Err, strconv.ErrRange):
		l.fail(name, "%q is too large", num.Num)
	case errors.As(err, &num):
		l.fail(name, "%q is not a whole number", num.Num)
	default:
		l.fail(name, "%v", err)
	}
}

// fieldVariable is the variable of the Config field called field.
func fieldVariable(field string) string {
	if f, ok := reflect.TypeFor[Config]().FieldByName(field); ok {
		if name := variableName(f); name != "" {
			return name
		}
	}
	return field
}

// check makes the checks that depend on the variable (a Size that must not
// be 0 here but may be there) or on several variables, and resolves
// values that depend on others.
func (l *loader) check(c *Config) {
	l.secret(c)
	c.ListenAddr = l.listenAddr("LISTEN_ADDR", c.ListenAddr, false)
	c.AdminAddr = l.listenAddr("ADMIN_ADDR", c.AdminAddr, true)
	l.routePath("REVALIDATE_PATH", c.RevalidatePath)
	l.positive("CACHE_MAX_BYTES", c.CacheMaxBytes > 0)
	l.positive("MAX_OBJECT_BYTES", c.MaxObjectBytes > 0)
	l.positive("ORIGIN_TIMEOUT", c.OriginTimeout > 0)
	l.count("REVALIDATE_CONCURRENCY", c.RevalidateConcurrency)
	if l.ok("ALLOWED_HOSTS") && slices.Equal(c.AllowedHosts, Hosts{"off"}) {
		// "off" has no meaning here: any host is served when the variable
		// is empty, and "off" could read as "no host".
		l.fail("ALLOWED_HOSTS", "%q is not a host name (leave ALLOWED_HOSTS empty to serve any host)", l.raw("ALLOWED_HOSTS"))
	}
	l.count("ORIGIN_MAX_CONCURRENCY", c.OriginMaxConcurrency)
	if c.OriginHost != "" && !validHostPort(c.OriginHost, false) {
		l.fail("ORIGIN_HOST", "%q is not a host name (use host or host:port)", c.OriginHost)
	}
	l.oneOf("UNSAFE_INVALIDATION", c.UnsafeInvalidation, "soft", "strict", "off")
	l.oneOf("LOG_FORMAT", c.LogFormat, "json", "text")
	l.oneOf("PURGE_MODE", c.PurgeMode, "refetch", "soft", "purge")

	// Between variables, checked only when each value is valid.
	if l.ok("CACHE_MAX_BYTES") && l.ok("MAX_OBJECT_BYTES") && c.CacheMaxBytes > 0 && c.MaxObjectBytes >= c.CacheMaxBytes {
		l.fail("MAX_OBJECT_BYTES", "%q must be less than CACHE_MAX_BYTES (%q)", l.raw("MAX_OBJECT_BYTES"), l.raw("CACHE_MAX_BYTES"))
	}
	if c.AdminAddr != "" && sameListener(c.AdminAddr, c.ListenAddr) {
		l.fail("ADMIN_ADDR", "%q is the same as LISTEN_ADDR (use another port, or off)", l.raw("ADMIN_ADDR"))
	}
	l.tls(c)
	l.warm(c)
	l.cluster(c)
}

// cluster checks REDIS_URL, CLUSTER_NAME and NODE_ID. A bad REDIS_URL is
// named without its value, which may hold a password.
func (l *loader) cluster(c *Config) {
	if c.RedisURL != "" {
		if scheme, _, _ := strings.Cut(c.RedisURL, "://"); scheme != "redis" && scheme != "rediss" {
			l.fail("REDIS_URL", "not a redis:// or rediss:// URL (the value is not shown: it may hold a password)")
		} else if _, err := redis.ParseURL(c.RedisURL); err != nil {
			l.fail("REDIS_URL", "not a valid redis:// or rediss:// URL (the value is not shown: it may hold a password)")
		}
	}
	if !validClusterWord(c.ClusterName, 64) {
		l.fail("CLUSTER_NAME", "%q is not a cluster name (letters, digits, '.', '_', '-' and ':', at most 64)", c.ClusterName)
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(c.ListenAddr)
		c.NodeID = host + ":" + port
	} else if !validClusterWord(c.NodeID, 128) {
		l.fail("NODE_ID", "%q is not a node name (letters, digits, '.', '_', '-' and ':', at most 128)", c.NodeID)
	}
}

// validClusterWord reports a name safe in Redis keys, logs and JSON.
func validClusterWord(s string, most int) bool {
	if s == "" || len(s) > most {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._-:", r):
		default:
			return false
		}
	}
	return true
}

// secret takes the secret from REVALIDATE_SECRET or from the file
// REVALIDATE_SECRET_FILE names. The secret is never part of a message.
func (l *loader) secret(c *Config) {
	switch {
	case c.RevalidateSecretFile != "" && c.RevalidateSecret != "":
		l.fail(secretFileVar, "cannot be used together with %s (set one of them)", secretVar)
	case c.RevalidateSecretFile != "":
		s, err := readSecretFile(c.RevalidateSecretFile)
		if err != nil {
			l.fail(secretFileVar, "%v", err)
			return
		}
		if p := secretProblem(s); p != "" {
			l.fail(secretFileVar, "the secret in %q %s", c.RevalidateSecretFile, p)
			return
		}
		c.RevalidateSecret = Secret(s)
	case c.RevalidateSecret == "":
		l.fail(secretVar, "is required")
	default:
		if p := secretProblem(string(c.RevalidateSecret)); p != "" {
			l.fail(secretVar, "%s", p)
			c.RevalidateSecret = ""
		}
	}
}

// readSecretFile returns the content of path without its trailing
// newlines (editors and `echo` add one; Kubernetes keeps what was given).
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the secret: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the secret: %w", err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%q is larger than %d KiB: not a secret", path, maxSecretFile>>10)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%q is empty", path)
	}
	return s, nil
}

// secretProblem says what is wrong with a non-empty secret, "" for
// nothing. It is sent in an Authorization header or a query parameter, so
// it must survive both unchanged.
func secretProblem(s string) string {
	switch {
	case utf8.RuneCountInString(s) < 16:
		return "must be at least 16 characters"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "must not hold control characters"
	case strings.TrimSpace(s) != s:
		return "must not start or end with a space (an Authorization header cannot carry it)"
	}
	return ""
}

// listenAddr checks "host:port" with an optional host and a numeric port
// (0 picks a free one). "off" gives "" where the listener may be off.
func (l *loader) listenAddr(name, s string, mayBeOff bool) string {
	if strings.EqualFold(s, "off") {
		if mayBeOff {
			return ""
		}
		l.fail(name, "%q is not allowed: this listener cannot be disabled", s)
		return s
	}
	if !validListenAddr(s) {
		l.fail(name, "%q is not a listen address (use host:port, e.g. \":8080\")", s)
	}
	return s
}

// sameListener reports whether two valid listen addresses would collide;
// ":0" picks a free port each time, so it never does.
func sameListener(a, b string) bool {
	return a == b && !strings.HasSuffix(a, ":0")
}

// routePath checks "/" followed by segments of letters, digits and -._~,
// with no empty, "." or ".." segment and no trailing "/": a path that every
// client and proxy sends unchanged.
func (l *loader) routePath(name, s string) {
	ok := strings.HasPrefix(s, "/")
	for seg := range strings.SplitSeq(strings.TrimPrefix(s, "/"), "/") {
		ok = ok && seg != "" && seg != "." && seg != ".." && strings.IndexFunc(seg, notRouteChar) < 0
	}
	if !ok {
		l.fail(name, "%q is not a plain path (use letters, digits and -._~ after single slashes, e.g. \"/api/revalidate\")", s)
	}
}

func (l *loader) positive(name string, ok bool) {
	if l.ok(name) && !ok {
		l.fail(name, "%q must be greater than 0", l.raw(name))
	}
}

func (l *loader) count(name string, n int) {
	if l.ok(name) && n < 1 {
		l.fail(name, "%q must be at least 1", l.raw(name))
	}
}

func (l *loader) oneOf(name, s string, options ...string) {
	if !slices.Contains(options, s) {
		l.fail(name, "%q must be one of %s", s, strings.Join(options, ", "))
	}
}

// tls checks the HTTPS variables and resolves HTTPS_REDIRECT. Certificates
// are not loaded here: that is the listener's work, and it reports its own
// errors.
func (l *loader) tls(c *Config) {
	if !validListenAddr(c.TLSAddr) {
		if strings.EqualFold(c.TLSAddr, "off") {
			l.fail("TLS_ADDR", "%q is not allowed: leave TLS_CERT_FILE, TLS_KEY_FILE and ACME_DOMAINS empty for no HTTPS", c.TLSAddr)
		} else {
			l.fail("TLS_ADDR", "%q is not a listen address (use host:port, e.g. \":8443\")", c.TLSAddr)
		}
	}
	files := c.TLSCertFile != "" || c.TLSKeyFile != ""
	if c.TLSCertFile != "" && c.TLSKeyFile == "" {
		l.fail("TLS_KEY_FILE", "is required when TLS_CERT_FILE is set")
	}
	if c.TLSKeyFile != "" && c.TLSCertFile == "" {
		l.fail("TLS_CERT_FILE", "is required when TLS_KEY_FILE is set")
	}
	off := l.ok("ACME_DOMAINS") && slices.Equal(c.ACMEDomains, Domains{"off"})
	if off {
		l.fail("ACME_DOMAINS", "%q is not a domain name (leave ACME_DOMAINS empty for no ACME certificates)", l.raw("ACME_DOMAINS"))
	}
	acme := len(c.ACMEDomains) > 0 || !l.ok("ACME_DOMAINS") // set, valid or not
	if files && len(c.ACMEDomains) > 0 && !off {
		l.fail("ACME_DOMAINS", "cannot be used together with TLS_CERT_FILE and TLS_KEY_FILE (certificates come from the files or from ACME, not both)")
	}
	if c.ACMEEmail != "" {
		if a, err := mail.ParseAddress(c.ACMEEmail); err != nil || a.Name != "" || a.Address != c.ACMEEmail {
			l.fail("ACME_EMAIL", "%q is not an email address (use name@example.com)", c.ACMEEmail)
		}
	}
	l.acmeCA("ACME_CA", c.ACMECA)

	enabled := c.TLSEnabled()
	if enabled && l.ok("ACME_DOMAINS") && validListenAddr(c.TLSAddr) {
		if sameListener(c.TLSAddr, c.ListenAddr) {
			l.fail("TLS_ADDR", "%q is the same as LISTEN_ADDR (use another port)", c.TLSAddr)
		} else if c.AdminAddr != "" && sameListener(c.TLSAddr, c.AdminAddr) {
			l.fail("TLS_ADDR", "%q is the same as ADMIN_ADDR (use another port)", c.TLSAddr)
		}
	}
	switch {
	case !l.ok("HTTPS_REDIRECT"):
	case c.HTTPSRedirect == SwitchUnset && enabled:
		c.HTTPSRedirect = SwitchOn
	case c.HTTPSRedirect == SwitchUnset:
		c.HTTPSRedirect = SwitchOff
	case c.HTTPSRedirect == SwitchOn && !files && !acme:
		// Without any TLS variable: with a half-configured one, its own
		// line says what is missing.
		l.fail("HTTPS_REDIRECT", "%q needs HTTPS: set TLS_CERT_FILE and TLS_KEY_FILE, or ACME_DOMAINS", l.raw("HTTPS_REDIRECT"))
	}
}

// acmeCA checks an ACME directory URL: https (the ACME protocol requires
// it), a host, no user info; a path is expected.
func (l *loader) acmeCA(name, s string) {
	shown := redactUserinfo(s)
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "" || !validHostPort(u.Host, false):
		l.fail(name, "%q is not an https URL (e.g. \"https://acme-staging-v02.api.letsencrypt.org/directory\")", shown)
	case u.User != nil:
		l.fail(name, "%q must not hold user info", shown)
	case u.Fragment != "" || strings.Contains(s, "#"):
		l.fail(name, "%q must not have a fragment", shown)
	}
}
