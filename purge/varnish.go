package purge

import (
	"net/http"
	"net/netip"
	"regexp"
	"strings"

	"github.com/isrproxy/isrproxy/revalidation"
)

// PURGE and BAN, as the cache plugins of WordPress, Drupal and Magento send
// them to Varnish (README.md#cms-plugins), answered with the revalidate
// API's own answers: the plugin gets a read-your-writes refetch (or the
// mode it asks for) without a line changed.

// purgeTagHeaders are the request headers whose values name tags on PURGE
// and BAN, each separated by spaces, commas or "|" (the separator of
// Drupal's bundled purger).
var purgeTagHeaders = []string{"X-Cache-Tags", "Cache-Tags", "X-Purge-Tags", "Surrogate-Key", "Purge-Cache-Tags"}

// magentoTagsHeader carries Magento 2's regular expression over its tag
// lists: ".*" for everything, or alternatives of the form ((^|,)TAG(,|$)).
const magentoTagsHeader = "X-Magento-Tags-Pattern"

// magentoItem is one alternative of Magento's pattern, TAG captured.
var magentoItem = regexp.MustCompile(`\(\(\^\|,\)([^()|,\s]+)\(,\|\$\)\)`)

// plainTag is a tag written bare in a pattern ("cat_p_1|cat_c_2", as
// Magento 2.0 wrote them).
var plainTag = regexp.MustCompile(`^[A-Za-z0-9_:.\-]+$`)

// IsPurge reports whether r is a PURGE or BAN, which [Handler.ServeVarnish]
// answers on any path of the public listener.
func IsPurge(r *http.Request) bool { return r.Method == "PURGE" || r.Method == "BAN" }

// ServeVarnish answers a PURGE or BAN request: allowed from PURGE_ALLOW or
// with the secret, it names the request's key, a pattern over the host's
// stored paths (X-Purge-Method: regex) or tags, and is answered as the
// revalidate API answers. Nothing is forwarded to the origin.
func (h *Handler) ServeVarnish(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	c := &call{ResponseWriter: w}
	defer h.logCall(c, r, start)
	if !IsPurge(r) {
		c.methodNotAllowed(r.Method, "PURGE, BAN")
		return
	}
	if !h.purgeAllowed(c, r) {
		return
	}
	t, err := parseVarnish(r, h.opts.PurgeMode)
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return
	}
	h.serveTargets(c, r, t)
}

// purgeAllowed admits a peer in PURGE_ALLOW, or one that carries the
// secret in "Authorization: Bearer". Others get 403; a wrong secret counts
// towards the API's lockout, and a locked-out peer gets 429.
func (h *Handler) purgeAllowed(c *call, r *http.Request) bool {
	peer := peerAddr(r)
	if a, err := netip.ParseAddr(peer); err == nil {
		a = a.Unmap()
		for _, p := range h.opts.PurgeAllow {
			if p.Contains(a) {
				return true
			}
		}
	}
	if h.locked(c, r) {
		return false
	}
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		c.fail(http.StatusForbidden, "PURGE and BAN are allowed from PURGE_ALLOW only, or with Authorization: Bearer <REVALIDATE_SECRET>")
		return false
	}
	if !h.validToken(strings.TrimSpace(cred)) {
		h.lockout.fail(peer, h.now())
		c.fail(http.StatusForbidden, "Invalid token")
		return false
	}
	return true
}

// parseVarnish reads the targets of a PURGE or BAN. Tags, when any header
// names some, are its targets; otherwise a PURGE names its request target,
// as a key (X-Purge-Method: default, exact or none) or a pattern (regex).
func parseVarnish(r *http.Request, defaultMode revalidation.Mode) (*targets, error) {
	t := &targets{}
	mode := defaultMode
	if m := strings.TrimSpace(r.Header.Get("X-Purge-Mode")); m != "" {
		var ok bool
		if mode, ok = revalidation.ParseMode(strings.ToLower(m)); !ok {
			return nil, badInput("Unknown X-Purge-Mode %q: use refetch, soft or purge", m)
		}
	}
	t.mode = mode

	for _, name := range purgeTagHeaders {
		for _, line := range r.Header.Values(name) {
			for _, tag := range strings.FieldsFunc(line, func(r rune) bool {
				return r == ' ' || r == ',' || r == '|' || r == '\t'
			}) {
				if err := checkTag(tag); err != nil {
					return nil, err
				}
				t.tags = append(t.tags, tag)
			}
		}
	}
	if v := strings.TrimSpace(r.Header.Get(magentoTagsHeader)); v != "" {
		all, tags, err := parseMagento(v)
		if err != nil {
			return nil, err
		}
		if all {
			t.patterns = append(t.patterns, mustPattern(".*"))
		}
		t.tags = append(t.tags, tags...)
	}
	if len(t.tags) > 0 || len(t.patterns) > 0 {
		return t, nil
	}

	target := requestTarget(r)
	switch method := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Purge-Method"))); method {
	case "regex":
		pt, err := newPattern(target)
		if err != nil {
			return nil, err
		}
		t.patterns = append(t.patterns, pt)
	case "", "default", "exact":
		if r.Method == "BAN" {
			return nil, badInput("BAN needs tags in one of %s, or X-Purge-Method: regex", strings.Join(purgeTagHeaders, ", "))
		}
		path, query, err := checkTarget("path", target, true)
		if err != nil {
			return nil, err
		}
		t.paths = append(t.paths, pathTarget{path, query})
	default:
		return nil, badInput("Unknown X-Purge-Method %q: use default or regex", method)
	}
	return t, nil
}

// requestTarget is r's request target as sent, from its path on: the
// absolute form ("PURGE http://host/a") loses its scheme and host.
func requestTarget(r *http.Request) string {
	s := r.RequestURI
	if s == "" { // a request built in a test, not read from the wire
		s = r.URL.RequestURI()
	}
	if !strings.HasPrefix(s, "/") {
		if _, rest, ok := strings.Cut(s, "://"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				return rest[i:]
			}
			return "/"
		}
	}
	return s
}

// parseMagento reads Magento's X-Magento-Tags-Pattern: ".*" (everything of
// the host), alternatives ((^|,)TAG(,|$)) joined by "|", or bare tags
// joined by "|". Any other regular expression is refused: tags are matched
// exactly here, not as a pattern over a tag list.
func parseMagento(v string) (all bool, tags []string, err error) {
	if v == ".*" || v == "*" {
		return true, nil, nil
	}
	unsupported := badInput("Unsupported %s %q: use .* or tags in the form ((^|,)TAG(,|$)) joined by |", magentoTagsHeader, v)
	if ms := magentoItem.FindAllStringSubmatchIndex(v, -1); len(ms) > 0 {
		at := 0
		for i, m := range ms {
			sep := v[at:m[0]]
			if (i == 0 && sep != "") || (i > 0 && sep != "|") {
				return false, nil, unsupported
			}
			tags = append(tags, v[m[2]:m[3]])
			at = m[1]
		}
		if at != len(v) {
			return false, nil, unsupported
		}
		return false, tags, nil
	}
	for _, tag := range strings.Split(v, "|") {
		if !plainTag.MatchString(tag) {
			return false, nil, unsupported
		}
		tags = append(tags, tag)
	}
	return false, tags, nil
}

// pattern is an RE2 pattern over the targets (escaped path plus normalised
// query) of a host's stored pages, matched whole: "/.*" is the host,
// "/blog/.*" everything under /blog/.
type pattern struct {
	src string
	re  *regexp.Regexp
}

func newPattern(src string) (pattern, error) {
	if !strings.HasPrefix(src, "/") {
		return pattern{}, badInput("Invalid pattern %q: must begin with \"/\"", src)
	}
	re, err := regexp.Compile(`\A(?:` + src + `)\z`)
	if err != nil {
		return pattern{}, badInput("Invalid pattern %q: not a regular expression (RE2 syntax): %v", src, err)
	}
	return pattern{src: src, re: re}, nil
}

func mustPattern(src string) pattern {
	return pattern{src: src, re: regexp.MustCompile(`\A(?:` + src + `)\z`)}
}

// literalPrefix is the path prefix every match begins with: the first
// fills in flight that the pattern may cover are those under it.
func (p pattern) literalPrefix() string {
	prefix, _ := p.re.LiteralPrefix()
	prefix, _, _ = strings.Cut(prefix, "?")
	return prefix
}
