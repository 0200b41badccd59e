package proxy

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/isrproxy/isrproxy/cache"
)

const (
	lastModified = "Tue, 15 Nov 1994 12:45:26 GMT"
	aSecondEarly = "Tue, 15 Nov 1994 12:45:25 GMT"
	aSecondLater = "Tue, 15 Nov 1994 12:45:27 GMT"
)

// conditionalCase is one conditional request against a stored page's
// validators, and whether it is answered 304.
type conditionalCase struct {
	name         string
	etag         string // the stored ETag ("" for none)
	lastModified string // the stored Last-Modified ("" for none)
	header       http.Header
	want         bool
}

func runConditionalCases(t *testing.T, cases []conditionalCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p := &cache.Page{Status: http.StatusOK, ETag: tt.etag, LastModified: tt.lastModified, StoredAt: time.Now()}
			assert.Equal(t, tt.want, notModified(tt.header, p))
		})
	}
}

// TestIfNoneMatchUsesTheWeakComparison: If-None-Match compares entity tags
// weakly, so W/ on either side does not matter, but the opaque tags must
// be the same, byte for byte.
func TestIfNoneMatchUsesTheWeakComparison(t *testing.T) {
	runConditionalCases(t, []conditionalCase{
		{"a strong tag matches the same strong tag", `"v1"`, "", http.Header{"If-None-Match": {`"v1"`}}, true},
		{"a weak tag matches the same strong tag", `"v1"`, "", http.Header{"If-None-Match": {`W/"v1"`}}, true},
		{"a strong tag matches the same weak tag", `W/"v1"`, "", http.Header{"If-None-Match": {`"v1"`}}, true},
		{"a weak tag matches the same weak tag", `W/"v1"`, "", http.Header{"If-None-Match": {`W/"v1"`}}, true},
		{"another tag does not match", `"v1"`, "", http.Header{"If-None-Match": {`"v2"`}}, false},
		{"tags are compared in their case", `"abc"`, "", http.Header{"If-None-Match": {`"ABC"`}}, false},
		{"a lower-case w/ is not the weak prefix", `"v1"`, "", http.Header{"If-None-Match": {`w/"v1"`}}, false},
		{"an unquoted tag does not match a quoted one", `"v1"`, "", http.Header{"If-None-Match": {`v1`}}, false},
		{"a tag later in a list matches", `"v1"`, "", http.Header{"If-None-Match": {`"a", W/"b",  "v1" `}}, true},
		{"a list without the tag does not match", `"v1"`, "", http.Header{"If-None-Match": {`"a", "b"`}}, false},
		{"a tag on a second line matches", `"v1"`, "", http.Header{"If-None-Match": {`"a"`, `"v1"`}}, true},
		{"a star matches any stored tag", `"v1"`, "", http.Header{"If-None-Match": {"*"}}, true},
		{"a page without a tag matches no listed tag", "", "", http.Header{"If-None-Match": {`"v1"`}}, false},
		{"an empty If-None-Match matches nothing", `"v1"`, "", http.Header{"If-None-Match": {""}}, false},
	})
}

// TestIfModifiedSinceAgainstLastModified: a page not modified after the
// date given is answered 304; a date that cannot be read is ignored.
func TestIfModifiedSinceAgainstLastModified(t *testing.T) {
	runConditionalCases(t, []conditionalCase{
		{"modified before the date is not modified", "", aSecondEarly, http.Header{"If-Modified-Since": {lastModified}}, true},
		{"modified at the date is not modified", "", lastModified, http.Header{"If-Modified-Since": {lastModified}}, true},
		{"modified after the date is modified", "", aSecondLater, http.Header{"If-Modified-Since": {lastModified}}, false},
		{"an RFC 850 date is read", "", lastModified, http.Header{"If-Modified-Since": {"Tuesday, 15-Nov-94 12:45:26 GMT"}}, true},
		{"an asctime date is read", "", lastModified, http.Header{"If-Modified-Since": {"Tue Nov 15 12:45:26 1994"}}, true},
		{"an unparsable date is ignored", "", lastModified, http.Header{"If-Modified-Since": {"yesterday"}}, false},
		{"an unparsable Last-Modified is ignored", "", "last week", http.Header{"If-Modified-Since": {lastModified}}, false},
		{"a page without Last-Modified received since is modified", "", "", http.Header{"If-Modified-Since": {lastModified}}, false},
		{"a page with only an ETag ignores If-Modified-Since", `"v1"`, "", http.Header{"If-Modified-Since": {lastModified}}, false},
		{"no conditional header is no 304", `"v1"`, lastModified, http.Header{}, false},
	})
}

// TestIfNoneMatchTakesPrecedenceOverIfModifiedSince: when If-None-Match is
// sent, If-Modified-Since is not looked at, whichever way it would go.
func TestIfNoneMatchTakesPrecedenceOverIfModifiedSince(t *testing.T) {
	runConditionalCases(t, []conditionalCase{
		{"a matching tag wins over a date saying modified", `"v1"`, aSecondLater,
			http.Header{"If-None-Match": {`"v1"`}, "If-Modified-Since": {lastModified}}, true},
		{"a tag not matching wins over a date saying not modified", `"v1"`, aSecondEarly,
			http.Header{"If-None-Match": {`"v2"`}, "If-Modified-Since": {lastModified}}, false},
		{"a page without a tag is not rescued by the date", "", aSecondEarly,
			http.Header{"If-None-Match": {`"v1"`}, "If-Modified-Since": {lastModified}}, false},
	})
}

// TestIfNoneMatchFollowsTheEntityTagGrammar: an entity tag may hold a
// comma (its characters are "!" and 0x23–0x7E), so a list is split
// between tags, not at every comma; and "*" matches any current
// representation, whether or not it has an entity tag: a stored 200 is one.
func TestIfNoneMatchFollowsTheEntityTagGrammar(t *testing.T) {
	runConditionalCases(t, []conditionalCase{
		{"a tag holding a comma matches itself", `"a,b"`, "", http.Header{"If-None-Match": {`"a,b"`}}, true},
		{"a tag holding a comma matches in a list", `W/"a,b"`, "", http.Header{"If-None-Match": {`"x", W/"a,b"`}}, true},
		{"a star matches a stored page without a tag", "", "", http.Header{"If-None-Match": {"*"}}, true},
	})
}

// TestIfModifiedSinceWithoutLastModified: a page without Last-Modified is
// dated by its Date, or else by the time it was received.
func TestIfModifiedSinceWithoutLastModified(t *testing.T) {
	received, _ := http.ParseTime(lastModified)
	for _, tt := range []struct {
		name string
		date string // the stored Date ("" for none)
		ims  string
		want bool
	}{
		{"dated before the date given is not modified", aSecondEarly, lastModified, true},
		{"dated after the date given is modified", aSecondLater, lastModified, false},
		{"without Date, received at the date given is not modified", "", lastModified, true},
		{"without Date, received after the date given is modified", "", aSecondEarly, false},
		{"an unreadable Date counts as none", "soon", lastModified, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.date != "" {
				h.Set("Date", tt.date)
			}
			p := &cache.Page{Status: http.StatusOK, Header: cache.FieldsOf(h), StoredAt: received}
			assert.Equal(t, tt.want, notModified(http.Header{"If-Modified-Since": {tt.ims}}, p))
		})
	}
}
