package purge

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
)

func TestBadTargets(t *testing.T) {
	for _, tt := range []struct {
		kind, value, why string
	}{
		{"path", "", `must begin with "/"`},
		{"path", "a/b", `must begin with "/"`},
		{"path", "//evil.example/x", `must begin with exactly one "/"`},
		{"path", "///x", `must begin with exactly one "/"`},
		{"path", "http://evil.example/x", "not a URL"},
		{"path", "HTTPS://evil.example/x", "not a URL"},
		{"path", "javascript:alert(1)", "not a URL"},
		{"path", `/a\b`, "backslash"},
		{"path", `\\evil.example\x`, `must begin with "/"`},
		{"path", "/a#top", "fragment"},
		{"path", "/a?x=1#top", "fragment"},
		{"path", "/a\nb", "control character"},
		{"path", "/a\x7fb", "control character"},
		{"path", "/a?x=\r\n", "control character"},
		{"path", "/a%0Ab", "control character"},
		{"path", "/a%7f", "control character"},
		{"path", "/a%00", "control character"},
		{"path", "/a%zz", "malformed percent-escape"},
		{"path", "/a%4", "malformed percent-escape"},
		{"path", "/a?x=%zz", "malformed percent-escape in its query"},
		{"prefix", "", `must begin with "/"`},
		{"prefix", "blog/", `must begin with "/"`},
		{"prefix", "//evil.example/", `must begin with exactly one "/"`},
		{"prefix", "http://evil.example/", "not a URL"},
		{"prefix", `/blog\`, "backslash"},
		{"prefix", "/blog#x", "fragment"},
		{"prefix", "/blog%0D", "control character"},
		{"prefix", "/blog%g0", "malformed percent-escape"},
		{"prefix", "/search?q=", "cannot hold a query"},
		{"tag", "", "empty"},
		{"tag", "a b", "whitespace"},
		{"tag", "a\tb", "control character"},
		{"tag", "a\u00a0b", "whitespace"},
		{"tag", "a,b", "comma"},
	} {
		want := "Invalid " + tt.kind + " " + strconv.Quote(tt.value) + ": "
		t.Run(tt.kind+" "+strconv.Quote(tt.value), func(t *testing.T) {
			e := newEnv(t)
			e.index.keys[e.host()+"/a"] = []string{"t"}
			// In the query, beside a good target: the whole call is refused.
			r := e.call(t, http.MethodGet, "/api/revalidate?path=/ok&"+tt.kind+"="+url.QueryEscape(tt.value))
			assert.Equal(t, http.StatusBadRequest, r.Status)
			assert.True(t, strings.HasPrefix(r.Message, want), "%q does not start with %q", r.Message, want)
			assert.Contains(t, r.Message, tt.why)
			// In the JSON body.
			body := map[string]string{"path": "paths", "prefix": "prefixes", "tag": "tags"}[tt.kind]
			r = e.post(t, "/api/revalidate", `{"paths":["/ok"],"`+body+`":[`+jsonString(t, tt.value)+`]}`)
			assert.Equal(t, http.StatusBadRequest, r.Status)
			assert.Contains(t, r.Message, tt.kind)
			assert.Empty(t, e.rev.Calls(), "nothing runs for a rejected call")
		})
	}
}

func TestBadPathMessage(t *testing.T) {
	e := newEnv(t)
	r := e.call(t, http.MethodGet, "/api/revalidate?path=//evil.example/x")
	assert.JSONEq(t, `{"message":"Invalid path \"//evil.example/x\": must begin with exactly one \"/\" (\"//\" names a host)"}`, r.Raw)
}

func TestPathKeys(t *testing.T) {
	for _, tt := range []struct {
		name, path, want string
	}{
		{"plain", "/a", "/a"},
		{"root", "/", "/"},
		{"query sorted, ignored dropped", "/a?utm_source=x&b=2&a=1&gclid=z", "/a?a=1&b=2"},
		{"repeated names keep their order", "/a?b=2&a=3&b=1", "/a?a=3&b=2&b=1"},
		{"escapes kept as written", "/a%2fb/%7Euser?q=a%20b", "/a%2fb/%7Euser?q=a%20b"},
		{"non-ASCII escaped as Go keys it", "/café/a b", "/caf%C3%A9/a%20b"},
		{"reserved characters kept", "/a;b,c/@d:e!$&'()*+=", "/a;b,c/@d:e!$&'()*+="},
		{"only ignored params", "/a?utm_medium=x", "/a"},
		{"empty query", "/a?", "/a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options, _ *fakeRevalidator) {
				o.Ignore = cache.NewMatcher([]string{"utm_*", "gclid"})
			})
			r := e.post(t, "/api/revalidate", `{"paths":[`+jsonString(t, tt.path)+`]}`)
			require.Equal(t, http.StatusOK, r.Status, r.Raw)
			assert.Equal(t, []string{"refetch " + e.host() + " " + tt.want}, e.rev.Calls())
			assert.Equal(t, []string{tt.want + " replaced"}, paths(r.Results))
		})
	}
}

// KEEP_QUERY_PARAMS applies to a path target's query as to a visitor's:
// the target names the key the visitor's request computes.
func TestPathKeysKeepOnlyTheKeptParameters(t *testing.T) {
	e := newEnv(t, func(o *Options, _ *fakeRevalidator) {
		o.Ignore = cache.NewMatcher([]string{"utm_*"})
		o.Keep = cache.NewMatcher([]string{"p", "page*"})
	})
	r := e.post(t, "/api/revalidate", `{"paths":["/?v=9&paged=2&p=1&utm_source=x"]}`)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	assert.Equal(t, []string{"refetch " + e.host() + " /?p=1&paged=2"}, e.rev.Calls())
}

func TestHost(t *testing.T) {
	for _, tt := range []struct {
		name     string
		allowed  []string
		hostHdr  string // "" keeps the test server's
		explicit string
		want     string // key host, or "" for a 400
		message  string
	}{
		{name: "request Host normalised", hostHdr: "WWW.Example.COM:80", want: "www.example.com"},
		{name: "request Host keeps other port", hostHdr: "example.com:8443", want: "example.com:8443"},
		{name: "explicit host", hostHdr: "cms.internal", explicit: "Example.com.", want: "example.com"},
		{name: "explicit host with default port", explicit: "example.com:80", want: "example.com"},
		{name: "allowed request Host", allowed: []string{"a.example", "b.example"}, hostHdr: "b.example", want: "b.example"},
		{name: "one allowed host stands in", allowed: []string{"www.example.com"}, hostHdr: "cms.internal", want: "www.example.com"},
		{name: "two allowed hosts: ask for host", allowed: []string{"a.example", "b.example"}, hostHdr: "cms.internal",
			message: `Host "cms.internal" is not allowed: give "host" as one of a.example, b.example`},
		{name: "explicit allowed host", allowed: []string{"a.example", "b.example"}, hostHdr: "cms.internal", explicit: "B.example", want: "b.example"},
		{name: "explicit host not allowed, even with one allowed", allowed: []string{"a.example"}, explicit: "evil.example",
			message: `Host "evil.example" is not allowed`},
		{name: "host with a slash", explicit: "evil.example/x", message: `Invalid host "evil.example/x"`},
		{name: "host with userinfo", explicit: "user@evil.example", message: `Invalid host "user@evil.example"`},
		{name: "host with a space", explicit: "a b", message: `Invalid host "a b"`},
		{name: "host with a control character", explicit: "a\x01b", message: `Invalid host "a\x01b"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options, _ *fakeRevalidator) { o.AllowedHosts = tt.allowed })
			target := "/api/revalidate?path=/a"
			if tt.explicit != "" {
				target += "&host=" + url.QueryEscape(tt.explicit)
			}
			var hdr []string
			if tt.hostHdr != "" {
				hdr = []string{"Host", tt.hostHdr}
			}
			r := e.call(t, http.MethodGet, target, hdr...)
			if tt.want == "" {
				assert.Equal(t, http.StatusBadRequest, r.Status, r.Raw)
				assert.Contains(t, r.Message, tt.message)
				assert.Empty(t, e.rev.Calls())
				return
			}
			assert.Equal(t, http.StatusOK, r.Status, r.Raw)
			assert.Equal(t, []string{"refetch " + tt.want + " /a"}, e.rev.Calls())
		})
	}
}

func TestHostScopesTagsAndPrefixes(t *testing.T) {
	e := newEnv(t)
	e.index.keys["a.example/x"] = []string{"t"}
	e.index.keys["a.example/blog/1"] = nil
	e.index.keys["b.example/y"] = []string{"t"}
	e.index.keys["b.example/blog/2"] = nil
	r := e.call(t, http.MethodGet, "/api/revalidate?tag=t&prefix=/blog/&host=b.example")
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	assert.Equal(t, []string{"refetch b.example /blog/2", "refetch b.example /y"}, e.rev.Calls())
}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}

func TestHasScheme(t *testing.T) {
	for s, want := range map[string]bool{
		"http://x": true, "a:": true, "a+b-c.d:x": true,
		"/a:b": false, "1a:b": false, ":x": false, "": false, "ab": false, "a/b:c": false,
	} {
		assert.Equal(t, want, hasScheme(s), s)
	}
}
