package cache

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNormalizeQuery(t *testing.T) {
	ignore := NewMatcher([]string{"utm_*", "gclid"})
	tests := []struct {
		name, in, want string
		bad            bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "sorted by name", in: "b=2&a=1", want: "a=1&b=2"},
		{name: "repeated names keep order", in: "b=2&a=9&b=1", want: "a=9&b=2&b=1"},
		{name: "pairs kept as written", in: "q=a+b&p=%2F", want: "p=%2F&q=a+b"},
		{name: "ignored removed", in: "utm_source=x&id=1&gclid=y", want: "id=1"},
		{name: "ignored by decoded name", in: "utm%5Fsource=x&id=1", want: "id=1"},
		{name: "only ignored", in: "utm_campaign=z", want: ""},
		{name: "empty pairs dropped", in: "a=1&&b=2&", want: "a=1&b=2"},
		{name: "byte order", in: "B=1&a=2", want: "B=1&a=2"},
		{name: "malformed escape", in: "a=%zz", bad: true},
		{name: "malformed escape in ignored param", in: "utm_x=%g1", bad: true},
		{name: "truncated escape", in: "a=%4", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeQuery(tt.in, ignore, Matcher{})
			if tt.bad {
				assert.ErrorIs(t, err, ErrBadEscape)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// KEEP_QUERY_PARAMS: when set, only the parameters it matches (by name as
// decoded, a trailing "*" for a prefix) stay; IGNORE_QUERY_PARAMS still
// removes its own, and a malformed escape in a dropped parameter is still
// an error.
func TestNormalizeQueryKeepsOnlyTheKeptParameters(t *testing.T) {
	ignore := NewMatcher([]string{"utm_*"})
	keep := NewMatcher([]string{"p", "page_id", "s", "wc-*", "utm_source"})
	for _, tt := range []struct {
		name, in, want string
	}{
		{"made-up parameters dropped", "p=1&v=9", "p=1"},
		{"only made-up parameters", "v=9&cachebuster=3", ""},
		{"kept ones sorted and as written", "s=a+b&p=%2F&x=1", "p=%2F&s=a+b"},
		{"prefix pattern", "wc-ajax=1&wcx=2", "wc-ajax=1"},
		{"kept by decoded name", "page%5Fid=4&pageXid=5", "page%5Fid=4"},
		{"ignored wins over kept", "utm_source=x&p=1", "p=1"},
		{"name without a value", "p&q", "p"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeQuery(tt.in, ignore, keep)
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := NormalizeQuery("p=1&junk=%zz", ignore, keep)
	assert.ErrorIs(t, err, ErrBadEscape, "a dropped parameter's escapes are checked too")

	a, err := NewKey("example.com", "/", "p=1&v=9", ignore, keep)
	assert.NoError(t, err)
	b, err := NewKey("example.com", "/", "p=1", ignore, keep)
	assert.NoError(t, err)
	assert.Equal(t, a, b)
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"/", "/a/b", "/a%2Fb", "/%7e", "/a;b", "//evil.example/x"} {
		assert.NoError(t, CheckPath(p), p)
	}
	for _, p := range []string{"/a\x00", "/a%00", "/a%0a", "/a%7F", "/a%1f"} {
		assert.ErrorIs(t, CheckPath(p), ErrControlChar, p)
	}
	assert.ErrorIs(t, CheckPath("/a%zz"), ErrBadEscape)
}

// TestEscapePath: bytes a request line cannot carry raw are encoded the way
// Go's server keys them; escapes already written, "%2F" above all, stay.
func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b":         "/a/b",
		"/%2F ":        "/%2F%20",
		"/caf\xc3\xa9": "/caf%C3%A9",
		"/a|b{c}":      "/a%7Cb%7Bc%7D",
		"/a;b=c@d":     "/a;b=c@d",
	} {
		assert.Equal(t, want, EscapePath(in), in)
		_, err := NewKey("h", EscapePath(in), "", Matcher{}, Matcher{})
		assert.NoError(t, err, in)
	}
}

// TestNewKeyWantsEscapedPath: a key names the path the origin receives, so
// a byte Go would percent-encode on the way out is refused, not keyed raw.
func TestNewKeyWantsEscapedPath(t *testing.T) {
	for _, p := range []string{"/ ", "/a|b", "/\"x\"", "/caf\xc3\xa9", "/{x}"} {
		_, err := NewKey("h", p, "", Matcher{}, Matcher{})
		assert.ErrorIs(t, err, ErrNotEscaped, p)
	}
	for _, p := range []string{"/a%20b", "/caf%C3%A9", "/a;b=c", "/[x]", "/~u/(1)*!"} {
		_, err := NewKey("h", p, "", Matcher{}, Matcher{})
		assert.NoError(t, err, p)
	}
}

func TestNormalizeHost(t *testing.T) {
	assert.Equal(t, "example.com", NormalizeHost("Example.COM:80", false))
	assert.Equal(t, "example.com:8080", NormalizeHost("example.com:8080", false))
	assert.Equal(t, "example.com:443", NormalizeHost("example.com:443", false))
	assert.Equal(t, "example.com", NormalizeHost("example.com:443", true))
	assert.Equal(t, "[::1]", NormalizeHost("[::1]:80", false))
	assert.Equal(t, "example.com", NormalizeHost("example.com.", false))
	assert.Equal(t, "[::1]", NormalizeHost("[::1]", false))
	assert.Equal(t, "example.com", NormalizeHost("example.com", false))
}

// A Host without a port, as browsers send on port 80 and 443, is normalised
// on every request: it must cost no allocation.
func TestNormalizeHostWithoutPortAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() { NormalizeHost("example.com", false) })
	assert.Zero(t, allocs)
}

func TestKeyString(t *testing.T) {
	k, err := NewKey("example.com", "/a", "z=1&utm_source=x&y=2", NewMatcher([]string{"utm_*"}), Matcher{})
	assert.NoError(t, err)
	assert.Equal(t, "example.com/a?y=2&z=1", k.String())
	assert.Equal(t, "/a?y=2&z=1", k.Target())
}

func TestParseKeyInvertsString(t *testing.T) {
	for _, k := range []Key{
		{Host: "example.com", Path: "/a"},
		{Host: "example.com:8080", Path: "/a/b%3F", Query: "x=1&y=%3F"},
		{Host: "[::1]", Path: "//double"},
	} {
		assert.Equal(t, k, ParseKey(k.String()))
	}
}
