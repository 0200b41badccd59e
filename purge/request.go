package purge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/forwarded"
	"github.com/isrproxy/isrproxy/revalidation"
)

// targets is what a call asks for, from its query and JSON body merged,
// each item already checked.
type targets struct {
	paths    []pathTarget
	tags     []string
	prefixes []string // escaped path prefixes
	host     string   // normalised; "" when the call names none
	mode     revalidation.Mode
	async    bool
	patterns []pattern // PURGE with X-Purge-Method: regex (varnish.go)
	linked   bool      // also the stored pages that link to each key (README.md#linked-pages)
}

// pathTarget is a checked path target: escaped path and raw query.
type pathTarget struct {
	path, query string
}

// inputError is a 4xx whose text is the API's message as is.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{fmt.Sprintf(format, args...)}
}

// raw gathers the unchecked values from the query and the body.
type raw struct {
	paths, tags, prefixes, hosts, modes []string
	async, linked                       bool
}

// parseTargets reads the targets of a call from its raw query and, when
// contentType is application/json, its body, and checks every one.
func parseTargets(rawQuery, contentType string, body []byte) (*targets, error) {
	var in raw
	if err := in.addQuery(rawQuery); err != nil {
		return nil, err
	}
	if isJSON(contentType) {
		if err := in.addJSON(body); err != nil {
			return nil, err
		}
	}
	if len(in.paths)+len(in.tags)+len(in.prefixes) == 0 {
		return nil, badInput("No path, tag or prefix given")
	}
	t := &targets{async: in.async, linked: in.linked}
	for _, p := range in.paths {
		path, query, err := checkTarget("path", p, true)
		if err != nil {
			return nil, err
		}
		t.paths = append(t.paths, pathTarget{path, query})
	}
	for _, p := range in.prefixes {
		path, _, err := checkTarget("prefix", p, false)
		if err != nil {
			return nil, err
		}
		t.prefixes = append(t.prefixes, path)
	}
	for _, tag := range in.tags {
		if err := checkTag(tag); err != nil {
			return nil, err
		}
		t.tags = append(t.tags, tag)
	}
	var err error
	if t.host, err = oneHost(in.hosts); err != nil {
		return nil, err
	}
	if t.mode, err = oneMode(in.modes); err != nil {
		return nil, err
	}
	return t, nil
}

func (in *raw) addQuery(rawQuery string) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return badInput("Malformed query string: %v", err)
	}
	in.paths = append(in.paths, q["path"]...)
	in.tags = append(in.tags, q["tag"]...)
	in.prefixes = append(in.prefixes, q["prefix"]...)
	in.hosts = append(in.hosts, q["host"]...)
	in.modes = append(in.modes, q["mode"]...)
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"async", &in.async}, {"linked", &in.linked}} {
		for _, v := range q[f.name] {
			switch strings.ToLower(v) {
			case "1", "true":
				*f.dst = true
			case "0", "false", "":
			default:
				return badInput("Invalid %s %q: use 1 or true", f.name, v)
			}
		}
	}
	return nil
}

func (in *raw) addJSON(body []byte) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil // a JSON content type with no body: the query says it all
	}
	if trimmed[0] != '{' {
		return badInput("Malformed JSON body: expected an object")
	}
	// Fields are kept raw so that each wrong type gets a message naming its
	// field, and matched exactly (encoding/json would match "Paths" too):
	// any other field, such as a CMS's own payload, is ignored.
	var b map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&b); err != nil {
		return badInput("Malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badInput("Malformed JSON body: data after the object")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *[]string
	}{
		{"paths", b["paths"], &in.paths},
		{"tags", b["tags"], &in.tags},
		{"prefixes", b["prefixes"], &in.prefixes},
	} {
		list, err := stringList(f.name, f.raw)
		if err != nil {
			return err
		}
		*f.dst = append(*f.dst, list...)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *[]string
	}{
		{"host", b["host"], &in.hosts},
		{"mode", b["mode"], &in.modes},
	} {
		if isNull(f.raw) {
			continue
		}
		var s string
		if f.raw[0] != '"' || json.Unmarshal(f.raw, &s) != nil {
			return badInput("Malformed JSON body: %q must be a string", f.name)
		}
		*f.dst = append(*f.dst, s)
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"async", &in.async}, {"linked", &in.linked}} {
		if isNull(b[f.name]) {
			continue
		}
		var v bool
		if err := json.Unmarshal(b[f.name], &v); err != nil {
			return badInput("Malformed JSON body: %q must be true or false", f.name)
		}
		*f.dst = *f.dst || v
	}
	return nil
}

// stringList decodes a list of strings; a lone string counts as a list of one.
func stringList(name string, raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badInput("Malformed JSON body: %q: %v", name, err)
		}
		return []string{s}, nil
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, badInput("Malformed JSON body: %q must be a list of strings", name)
	}
	list := make([]string, 0, len(items))
	for i, item := range items {
		var s string
		if len(item) == 0 || item[0] != '"' || json.Unmarshal(item, &s) != nil {
			return nil, badInput("Malformed JSON body: %s[%d] is %s, not a string", name, i, item)
		}
		list = append(list, s)
	}
	return list, nil
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// isJSON reports whether a Content-Type names application/json, with or
// without parameters.
func isJSON(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "application/json")
}

// checkTarget checks a path (with an optional "?query" when withQuery) or a
// prefix as the API requires (README.md#targets), and returns its escaped path and raw query.
// Bytes that cannot appear raw in a request target (non-ASCII, space, '"',
// '{' …) are percent-encoded the way Go's server keys a request for them
// ([cache.EscapePath]); escapes already written are kept as they are.
func checkTarget(kind, s string, withQuery bool) (path, query string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", badInput("Invalid %s %q: %s", kind, s, why)
	}
	switch {
	case hasScheme(s):
		return bad(`must be a path beginning with "/", not a URL`)
	case !strings.HasPrefix(s, "/"):
		return bad(`must begin with "/"`)
	case strings.HasPrefix(s, "//"):
		return bad(`must begin with exactly one "/" ("//" names a host)`)
	case strings.IndexFunc(s, isControl) >= 0:
		return bad("holds a control character")
	case strings.Contains(s, `\`):
		return bad("holds a backslash")
	case strings.Contains(s, "#"):
		return bad("holds a fragment (#)")
	}
	path, query, hasQuery := strings.Cut(s, "?")
	if hasQuery && !withQuery {
		return bad("a prefix matches paths only and cannot hold a query")
	}
	switch err := cache.CheckPath(path); {
	case errors.Is(err, cache.ErrControlChar):
		return bad("holds a control character")
	case err != nil:
		return bad("holds a malformed percent-escape")
	}
	if _, err := cache.NormalizeQuery(query, cache.Matcher{}, cache.Matcher{}); err != nil {
		return bad("holds a malformed percent-escape in its query")
	}
	return cache.EscapePath(path), query, nil
}

// hasScheme reports whether s starts with "scheme:" (RFC 3986 §3.1).
func hasScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return true
		default:
			return false
		}
	}
	return false
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkTag accepts any non-empty tag without whitespace or control
// characters: Cache-Tag and Surrogate-Key split on spaces and commas.
func checkTag(tag string) error {
	switch {
	case tag == "":
		return badInput("Invalid tag \"\": empty")
	case strings.IndexFunc(tag, isControl) >= 0:
		return badInput("Invalid tag %q: holds a control character", tag)
	case strings.IndexFunc(tag, unicode.IsSpace) >= 0:
		return badInput("Invalid tag %q: holds whitespace", tag)
	case strings.Contains(tag, ","):
		return badInput("Invalid tag %q: holds a comma; give one tag per value", tag)
	}
	return nil
}

// oneHost normalises the hosts a call names; they must all agree.
func oneHost(hosts []string) (string, error) {
	var host string
	for _, h := range hosts {
		if h == "" {
			continue
		}
		n := cache.NormalizeHost(h, false)
		if err := checkHost(n); err != nil {
			return "", badInput("Invalid host %q: %v", h, err)
		}
		if host != "" && n != host {
			return "", badInput("Conflicting hosts %q and %q: name one", host, n)
		}
		host = n
	}
	return host, nil
}

// checkHost accepts a normalised host name or address with an optional port.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', strings.IndexByte("-._:[]", c) >= 0:
		default:
			return fmt.Errorf("%q is not allowed in a host name", string(rune(c)))
		}
	}
	return nil
}

// oneMode checks the modes a call names; they must all agree.
func oneMode(modes []string) (revalidation.Mode, error) {
	var mode revalidation.Mode
	for _, s := range modes {
		if s == "" {
			continue
		}
		m, ok := revalidation.ParseMode(s)
		if !ok {
			return "", badInput("Unknown mode %q: use refetch, soft or purge", s)
		}
		if mode != "" && m != mode {
			return "", badInput("Conflicting modes %q and %q: name one", mode, m)
		}
		mode = m
	}
	if mode == "" {
		mode = revalidation.Refetch
	}
	return mode, nil
}

// resolveHost picks the host whose pages the call names (README.md#targets): its
// explicit host, which must be allowed; or else the request's own Host, or,
// when that is not allowed and exactly one host is, that one.
func (h *Handler) resolveHost(explicit string, r *http.Request) (string, error) {
	if explicit != "" {
		if !h.allowed(explicit) {
			return "", badInput("Host %q is not allowed: give \"host\" as one of %s", explicit, strings.Join(h.opts.AllowedHosts, ", "))
		}
		return explicit, nil
	}
	host := cache.NormalizeHost(r.Host, forwarded.HTTPS(r))
	if !h.allowed(host) {
		if len(h.opts.AllowedHosts) == 1 {
			return h.opts.AllowedHosts[0], nil
		}
		return "", badInput("Host %q is not allowed: give \"host\" as one of %s", host, strings.Join(h.opts.AllowedHosts, ", "))
	}
	if err := checkHost(host); err != nil {
		return "", badInput("Invalid Host %q: %v; give \"host\"", r.Host, err)
	}
	return host, nil
}

// allowed reports whether host may be named.
func (h *Handler) allowed(host string) bool {
	return len(h.opts.AllowedHosts) == 0 || slices.Contains(h.opts.AllowedHosts, host)
}

// readAtMost reads up to n bytes of r.
func readAtMost(r io.Reader, n int64) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	return body, nil
}
