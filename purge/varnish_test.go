package purge

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/revalidation"
)

func TestParseMagentoPatterns(t *testing.T) {
	for _, tc := range []struct {
		in   string
		all  bool
		tags []string
		bad  bool
	}{
		{in: ".*", all: true},
		{in: "((^|,)cat_p_1(,|$))", tags: []string{"cat_p_1"}},
		{in: "((^|,)cat_p_1(,|$))|((^|,)cat_c_2(,|$))|((^|,)cms_b_footer(,|$))", tags: []string{"cat_p_1", "cat_c_2", "cms_b_footer"}},
		{in: "cat_p_1|cat_c_2", tags: []string{"cat_p_1", "cat_c_2"}},
		{in: "cat_p_[0-9]+", bad: true},
		{in: "((^|,)cat_p_1(,|$))x", bad: true},
		{in: "x((^|,)cat_p_1(,|$))", bad: true},
		{in: "((^|,)cat_p_1(,|$))||((^|,)cat_c_2(,|$))", bad: true},
	} {
		all, tags, err := parseMagento(tc.in)
		if tc.bad {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.all, all, tc.in)
		assert.Equal(t, tc.tags, tags, tc.in)
	}
}

func TestRequestTargetAndPatterns(t *testing.T) {
	for raw, want := range map[string]string{
		"/.*":                      "/.*",
		"/a?x=1":                   "/a?x=1",
		"http://example.com/.*":    "/.*",
		"http://example.com":       "/",
		"https://example.com/b?.*": "/b?.*",
	} {
		r := httptest.NewRequest("PURGE", "/", nil)
		r.RequestURI = raw
		assert.Equal(t, want, requestTarget(r), raw)
	}

	p, err := newPattern("/blog/.*")
	require.NoError(t, err)
	assert.True(t, p.re.MatchString("/blog/a?x=1"))
	assert.False(t, p.re.MatchString("/x/blog/a"), "matched whole, not anywhere")
	assert.Equal(t, "/blog/", p.literalPrefix())
	_, err = newPattern("/blog/(")
	assert.ErrorContains(t, err, `"/blog/("`)
	_, err = newPattern(".*")
	assert.Error(t, err)
}

func TestParseVarnishTagsAndModes(t *testing.T) {
	r := httptest.NewRequest("BAN", "/", nil)
	r.Header.Set("Cache-Tags", "node:1|node_list")
	r.Header.Set("X-Cache-Tags", "a b,c")
	r.Header.Set("Surrogate-Key", "d")
	r.Header.Set("X-Purge-Mode", "Soft")
	tg, err := parseVarnish(r, revalidation.Refetch)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"node:1", "node_list", "a", "b", "c", "d"}, tg.tags)
	assert.Equal(t, revalidation.Soft, tg.mode)
	assert.Empty(t, tg.paths, "tags are the targets, not the path")

	r = httptest.NewRequest("PURGE", "/a?b=1", nil)
	tg, err = parseVarnish(r, revalidation.Purge)
	require.NoError(t, err)
	assert.Equal(t, []pathTarget{{"/a", "b=1"}}, tg.paths)
	assert.Equal(t, revalidation.Purge, tg.mode)

	r = httptest.NewRequest("PURGE", "/a", nil)
	r.Header.Set("X-Purge-Method", "glob")
	_, err = parseVarnish(r, revalidation.Refetch)
	assert.ErrorContains(t, err, "glob")
}

func TestRecentIsBounded(t *testing.T) {
	rc := newRecent(3)
	now := time.Unix(1700000000, 0)
	for i := range 5 {
		rc.note(fmt.Sprintf("k%d", i), revalidation.Refetch, []Result{{Path: "/", Outcome: revalidation.Replaced, Status: 200}}, now)
	}
	assert.Nil(t, rc.get("k0"))
	assert.Nil(t, rc.get("k1"))
	require.NotNil(t, rc.get("k4"))
	assert.Len(t, rc.byKey, 3)

	// A key noted again moves to the front and survives.
	rc.note("k2", revalidation.Refetch, []Result{{Outcome: revalidation.Replaced}, {Outcome: revalidation.Failed, Error: "boom"}}, now)
	rc.note("k5", revalidation.Soft, []Result{{Outcome: revalidation.Marked}}, now)
	rc.note("k6", revalidation.Soft, []Result{{Outcome: revalidation.Marked}}, now)
	last := rc.get("k2")
	require.NotNil(t, last)
	assert.Equal(t, revalidation.Failed, last.Outcome, "any failed variant makes the key failed")
	assert.Equal(t, "boom", last.Error)
	assert.LessOrEqual(t, len(rc.byKey), 3)
}
