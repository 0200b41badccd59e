package cache

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlainHeader: a client without gzip is sent the stored header set less
// Content-Encoding, with the decompressed length and a weak ETag; the
// stored set is left as it was, and the plain one is built once.
func TestPlainHeader(t *testing.T) {
	p := &Page{
		Header: FieldsOf(http.Header{
			"Content-Encoding": {"gzip"},
			"Content-Length":   {"40"},
			"Content-Type":     {"text/html"},
			"Etag":             {`"v1"`},
			"Vary":             {"Accept-Encoding"},
		}),
		Gzip:     true,
		PlainLen: 123,
	}
	plain := p.PlainHeader()
	assert.Equal(t, Fields{
		{"Content-Length", []string{"123"}},
		{"Content-Type", []string{"text/html"}},
		{"Etag", []string{`W/"v1"`}},
		{"Vary", []string{"Accept-Encoding"}},
	}, plain)
	assert.Equal(t, "gzip", p.Header.Get("Content-Encoding"))
	assert.Equal(t, "40", p.Header.Get("Content-Length"))
	assert.Equal(t, `"v1"`, p.Header.Get("Etag"))
	again := p.PlainHeader()
	assert.Same(t, &plain[0], &again[0], "built once, then shared")

	weak := &Page{Header: FieldsOf(http.Header{"Etag": {`W/"v2"`}}), Gzip: true}
	assert.Equal(t, `W/"v2"`, weak.PlainHeader().Get("Etag"), "a weak ETag stays as it is")
}

// TestFieldsOf: sorted by name, values shared with the header they came from.
func TestFieldsOf(t *testing.T) {
	h := http.Header{"B": {"2"}, "A": {"1", "1b"}}
	fs := FieldsOf(h)
	assert.Equal(t, Fields{{"A", []string{"1", "1b"}}, {"B", []string{"2"}}}, fs)
	assert.Equal(t, "1", fs.Get("A"))
	assert.Equal(t, "", fs.Get("C"))
}

// TestVaryValue: whitespace around commas and empty items never make a
// variant, nor (for Accept-Language and Accept-Encoding) the case of an
// item; the order of items always does, and absent is not empty.
func TestVaryValue(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines []string // nil: absent
		want  string
	}{
		{"Accept-Language", nil, VaryAbsent},
		{"Accept-Language", []string{""}, ""},
		{"Accept-Language", []string{" "}, ""},
		{"Accept-Language", []string{"en,de"}, "en,de"},
		{"Accept-Language", []string{"en, de"}, "en,de"},
		{"Accept-Language", []string{" en ,\tde "}, "en,de"},
		{"Accept-Language", []string{"EN, de"}, "en,de"},
		{"Accept-Language", []string{"en-US,en;q=0.9"}, "en-us,en;q=0.9"},
		{"Accept-Language", []string{"en", "de"}, "en,de"},
		{"Accept-Language", []string{"en,, de,"}, "en,de"},
		{"Accept-Language", []string{"de, en"}, "de,en"},
		{"Accept-Language", []string{"en; q=0.5"}, "en; q=0.5"},
		{"Accept-Encoding", []string{"GZIP, Br"}, "gzip,br"},
		{"X-Theme", []string{"Dark, Wide"}, "Dark,Wide"},
		{"X-Theme", []string{"dark,wide"}, "dark,wide"},
	} {
		h := http.Header{}
		if tt.lines != nil {
			h[tt.name] = tt.lines
		}
		got := VaryValue(h, tt.name)
		assert.Equal(t, tt.want, got, "%s: %q", tt.name, tt.lines)
		assert.True(t, varyMatches(h[tt.name], foldsVaryCase(tt.name), got), "%s: %q matches its own value", tt.name, tt.lines)
	}
}

// TestVariantsCompareNormalisedValues: "en, de", "en,de" and "EN, de" are
// one variant; "de, en" another; an absent header is not an empty one.
func TestVariantsCompareNormalisedValues(t *testing.T) {
	stored := &Page{Vary: []string{"Accept-Language"}}
	stored.VaryValues = []string{VaryValue(http.Header{"Accept-Language": {"en, de"}}, "Accept-Language")}
	for _, v := range []string{"en, de", "en,de", "EN, de", " en ,DE ", "en,,de"} {
		assert.True(t, stored.Matches(false, http.Header{"Accept-Language": {v}}), "%q", v)
	}
	assert.True(t, stored.Matches(false, http.Header{"Accept-Language": {"en", "de"}}), "two lines are one list")
	for _, v := range []string{"de, en", "en", "en, de, fr", "en-de", "ende", ""} {
		assert.False(t, stored.Matches(false, http.Header{"Accept-Language": {v}}), "%q", v)
	}
	assert.False(t, stored.Matches(false, http.Header{}))

	empty := &Page{Vary: []string{"X-Theme"}, VaryValues: []string{VaryValue(http.Header{"X-Theme": {""}}, "X-Theme")}}
	assert.True(t, empty.Matches(false, http.Header{"X-Theme": {" "}}))
	assert.False(t, empty.Matches(false, http.Header{}), "absent is not empty")
	absent := &Page{Vary: []string{"X-Theme"}, VaryValues: []string{VaryAbsent}}
	assert.True(t, absent.Matches(false, http.Header{}))
	assert.False(t, absent.Matches(false, http.Header{"X-Theme": {""}}))

	theme := &Page{Vary: []string{"X-Theme"}, VaryValues: []string{"dark"}}
	assert.False(t, theme.Matches(false, http.Header{"X-Theme": {"Dark"}}), "other headers keep their case")
}

// TestVaryLookupDoesNotAllocate: a hit costs no allocation, whether the
// visitor spells the value as stored or not, and a value already normal
// is not copied.
func TestVaryLookupDoesNotAllocate(t *testing.T) {
	p := &Page{Vary: []string{"Accept-Language"}, VaryValues: []string{"en-us,en;q=0.9"}}
	for _, v := range []string{"en-us,en;q=0.9", "en-US,en;q=0.9", "en-US, en;q=0.9"} {
		h := http.Header{"Accept-Language": {v}}
		require.True(t, p.Matches(false, h), v)
		assert.Zero(t, testing.AllocsPerRun(100, func() { p.Matches(false, h) }), v)
	}
	h := http.Header{"Accept-Language": {"en-us,en;q=0.9"}}
	assert.Zero(t, testing.AllocsPerRun(100, func() { VaryValue(h, "Accept-Language") }))
}
