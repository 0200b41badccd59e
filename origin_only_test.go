package main

// Only the origin is ever contacted: no request target, header, Host or
// revalidate API field makes isrproxy fetch from another host.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A CONNECT request names a host in its target: it must never reach the
// origin, which may be able to tunnel to it. Only origin-form targets
// ("/...") are ever sent to the origin.
func TestConnectNeverReachesTheOrigin(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	rec := &recorder{}
	o := newTestOrigin(t, rec.wrap(page("origin")))
	p := startProxy(t, o.URL, nil)
	eh := strings.TrimPrefix(evil.URL, "http://")
	for _, raw := range []string{
		"CONNECT " + eh + " HTTP/1.1\r\nHost: " + eh + "\r\n\r\n",
		"CONNECT " + eh + " HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
	} {
		got := sendRaw(t, p, http.MethodConnect, raw)
		assert.True(t, refused(got), "CONNECT answered %d %q", got.Status, got.Body)
	}
	for _, s := range rec.all() {
		assert.True(t, strings.HasPrefix(s.RequestURI, "/"), "the origin received %s %q", s.Method, s.RequestURI)
	}
	assert.EqualValues(t, 0, evil.hits.Load())
}

// ssrfValues are hostile target values; EVIL stands for the address of
// a server that must never be contacted.
var ssrfValues = []string{
	"//EVIL/x", "///EVIL/x", "////EVIL/x", "http://EVIL/x", "https://EVIL/x", "HTTP://EVIL/", "http:EVIL/x",
	"http:/EVIL/x", "javascript://EVIL/%0a", "ftp://EVIL/", "//user@EVIL/x", "EVIL/x", "EVIL",
	`\\EVIL\x`, `/\EVIL/x`, `\/EVIL/x`, `/\/EVIL/x`, "/%2F%2FEVIL/x", "/%2f%2fEVIL/x", "/%2F/EVIL/x",
	"/%5C%5CEVIL/x", "%2F%2FEVIL/x", "@EVIL/x", "/@EVIL/x", "/x@EVIL", " //EVIL/x", "\t//EVIL/x",
	"/x\r\nHost: EVIL", "/x\nGET http://EVIL/ HTTP/1.1", "/x%0d%0aHost:%20EVIL", "/x%0aHost: EVIL",
	"/x HTTP/1.1\r\nHost: EVIL\r\n\r\n", "/x?a=\r\nHost: EVIL", "/x?a=%0d%0aHost:%20EVIL", "/x?a=b HTTP/1.1\r\nHost: EVIL",
	"/x?u=http://EVIL/", "/x?u=//EVIL/", "/x#@EVIL", "/x?#//EVIL",
	"/..//EVIL/x", "/.//EVIL/x", "/%2e%2e//EVIL/x", "/x/../../EVIL", "/\u3000//EVIL", "/\uff0f\uff0fEVIL",
}

// ssrfHosts are hostile host values.
var ssrfHosts = []string{
	"evil:80@x", "x@EVIL", "EVIL/x", "http://EVIL", "//EVIL", "EVIL\r\nX-A: b", "EVIL#x", "EVIL?x",
	`EVIL\x`, " EVIL", "EVIL ", "[::1]:80@EVIL", "user:pass@EVIL", "EVIL%2f", "EVIL\x00",
}

// badPath says whether the revalidate API refuses v as a path: it must begin with
// exactly one "/" and hold no scheme, authority, fragment, backslash or
// control character, raw or percent-encoded.
func badPath(v string) bool {
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "#\\") {
		return true
	}
	if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return true
	}
	path, _, _ := strings.Cut(v, "?")
	dec, err := url.PathUnescape(path)
	return err != nil || strings.IndexFunc(dec, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

// badTag says whether v is refused as a tag: empty, or holding
// whitespace, a comma or a control character.
func badTag(v string) bool {
	return v == "" || strings.ContainsRune(v, ',') ||
		strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r < 0x20 || r == 0x7f }) >= 0
}

// No field of the revalidate API, in the query or in JSON, can
// make isrproxy contact anything but ORIGIN_URL; the origin only receives
// origin-form requests whose path begins with exactly one "/". A refused
// call answers 400 and reaches nothing.
func TestRevalidateAPINeverFetchesFromAnotherHost(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	eh := strings.TrimPrefix(evil.URL, "http://")
	for _, allowed := range []string{"", "www.example.com"} {
		t.Run("ALLOWED_HOSTS="+allowed, func(t *testing.T) {
			rec := &recorder{}
			o := newTestOrigin(t, rec.wrap(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Header().Set("Cache-Tag", "all")
				io.WriteString(w, "<p>origin</p>")
			}))
			p := startProxy(t, o.URL, map[string]string{"ALLOWED_HOSTS": allowed})
			host := "www.example.com"
			require.Equal(t, http.StatusOK, p.get("/x", "Host", host).Status)

			// call makes one API call; wantBad says that the API refuses it.
			call := func(what string, wantBad bool, query string, jsonBody any) {
				t.Helper()
				var body io.Reader
				header := []string{"Authorization", "Bearer " + apiSecret, "Host", host}
				if jsonBody != nil {
					b, err := json.Marshal(jsonBody)
					require.NoError(t, err)
					body = bytes.NewReader(b)
					header = append(header, "Content-Type", "application/json")
				}
				before := len(rec.all())
				got := p.request(http.MethodPost, "/api/revalidate?"+query, body, header...)
				assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, got.Status, "%s: %s", what, got.Body)
				if wantBad {
					assert.Equal(t, http.StatusBadRequest, got.Status, "%s: %s", what, got.Body)
				}
				if got.Status == http.StatusBadRequest {
					assert.Len(t, rec.all(), before, "%s: a refused call reached the origin", what)
				}
				assert.True(t, json.Valid([]byte(got.Body)), "%s: %s", what, got.Body)
			}
			for _, v := range ssrfValues {
				v = strings.ReplaceAll(v, "EVIL", eh)
				q := url.QueryEscape(v)
				badPath, badPrefix, badTag := badPath(v), badPath(v) || strings.Contains(v, "?"), badTag(v)
				call("path "+v, badPath, "path="+q, nil)
				call("path beside /x "+v, badPath, "path=/x&path="+q, nil)
				call("prefix "+v, badPrefix, "prefix="+q, nil)
				call("tag "+v, badTag, "tag="+q, nil)
				call("secret query "+v, badPath, "secret="+url.QueryEscape(apiSecret)+"&path="+q, nil)
				call("JSON paths "+v, badPath, "", map[string]any{"paths": []string{v}})
				call("JSON path string "+v, badPath, "", map[string]any{"paths": v})
				call("JSON prefixes "+v, badPrefix, "", map[string]any{"prefixes": []string{v}})
				call("JSON tags "+v, badTag, "", map[string]any{"tags": []string{v}})
			}
			for _, hv := range append(slices.Clone(ssrfHosts), ssrfValues...) {
				hv = strings.ReplaceAll(hv, "EVIL", eh)
				bad := strings.ContainsAny(strings.TrimSpace(hv), "@/\\ #?%\r\n\t\x00")
				call("host "+hv, bad, "path=/x&host="+url.QueryEscape(hv), nil)
				call("host prefix "+hv, bad, "prefix=/&host="+url.QueryEscape(hv), nil)
				call("JSON host "+hv, bad, "", map[string]any{"paths": []string{"/x"}, "tags": []string{"all"}, "host": hv})
			}
			// The revalidate request's own Host is the default host.
			for _, hv := range []string{eh, "evil:80@x", "x@" + eh} {
				got := p.request(http.MethodPost, "/api/revalidate?path=/x", nil,
					"Authorization", "Bearer "+apiSecret, "Host", hv)
				assert.NotEqual(t, http.StatusInternalServerError, got.Status, hv)
				assert.Less(t, got.Status, 500, "Host %s: %s", hv, got.Body)
			}

			assert.EqualValues(t, 0, evil.hits.Load(), "the evil server was contacted")
			assert.True(t, slices.ContainsFunc(rec.all(), func(s seenRequest) bool {
				return strings.HasPrefix(s.RequestURI, "/%2F%2F"+eh)
			}), "an escaped \"//\" path is a path on the origin, refetched there")
			for _, s := range rec.all() {
				assert.Equal(t, http.MethodGet, s.Method)
				assert.True(t, strings.HasPrefix(s.RequestURI, "/") && !strings.HasPrefix(s.RequestURI, "//"),
					"the origin received %q", s.RequestURI)
				path, _, _ := strings.Cut(s.RequestURI, "?")
				assert.NotContains(t, path, "://")
				assert.False(t, strings.ContainsAny(s.Host, "@/\\ \t\r\n#?"), "the origin received Host %q", s.Host)
				if allowed != "" {
					assert.Equal(t, allowed, s.Host, "only the allowed host is asked for")
				}
			}
		})
	}
}

// A path beginning with "//" is a path, not an authority: the
// origin receives it as it is and no other host is contacted.
func TestDoubleSlashPathNeverReachesAnotherHost(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	o := newTestOrigin(t, page("origin"))
	p := startProxy(t, o.URL, nil)
	eh := hostPort(evil.URL)
	for _, target := range []string{"//" + eh + "/x", "///" + eh + "/x", "//evil.example/x", "//" + eh + "/x?y=1"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			got := mustRaw(t, p, method, method+" "+target+" HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			assert.Equal(t, http.StatusOK, got.Status, "%s %s", method, target)
			assert.Equal(t, "origin", got.Body, "%s %s", method, target)
			r := o.lastRequest()
			require.NotNil(t, r)
			assert.Equal(t, target, r.RequestURI, "%s %s", method, target)
			assert.Equal(t, "www.example.com", r.Host)
		}
	}
	assert.EqualValues(t, 0, evil.hits.Load(), "nothing may reach another host")
}

// An absolute-form request target names the key's host, never
// the host contacted: the request goes to ORIGIN_URL.
func TestAbsoluteFormTargetNeverReachesAnotherHost(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	o := newTestOrigin(t, page("origin"))
	p := startProxy(t, o.URL, nil)
	eh := hostPort(evil.URL)
	for _, tc := range []struct{ method, target, host string }{
		{"GET", "http://" + eh + "/x", eh},
		{"GET", "http://" + eh + "/x", "www.example.com"},
		{"GET", "https://" + eh + "/x?a=1", eh},
		{"POST", "http://" + eh + "/x", eh},
		{"HEAD", "http://" + eh + "/h", eh},
	} {
		raw := tc.method + " " + tc.target + " HTTP/1.1\r\nHost: " + tc.host + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
		got := mustRaw(t, p, tc.method, raw)
		assert.Equal(t, http.StatusOK, got.Status, "%s %s", tc.method, tc.target)
		if tc.method != http.MethodHead {
			assert.Equal(t, "origin", got.Body)
		}
		r := o.lastRequest()
		require.NotNil(t, r)
		assert.NotContains(t, r.RequestURI, "://", "the origin gets an origin-form target")
		assert.True(t, strings.HasPrefix(r.RequestURI, "/"), r.RequestURI)
	}
	assert.EqualValues(t, 0, evil.hits.Load(), "nothing may reach another host")
}

// Override headers never make the origin serve another
// URL or method on a fill, and never reach another host.
func TestOverrideHeadersNeverReachAnotherHost(t *testing.T) {
	evil := newTestOrigin(t, page("evil"))
	o := newTestOrigin(t, page("origin"))
	p := startProxy(t, o.URL, nil)
	eh := hostPort(evil.URL)
	overrides := []string{
		"X-Original-URL", "http://" + eh + "/admin",
		"X-Rewrite-URL", "//" + eh + "/admin",
		"X-HTTP-Method-Override", "DELETE",
	}
	got := p.get("/page", overrides...)
	assert.Equal(t, "origin", got.Body)
	r := o.lastRequest()
	require.NotNil(t, r)
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Equal(t, "/page", r.RequestURI)
	for _, name := range []string{"X-Original-Url", "X-Rewrite-Url", "X-Http-Method-Override"} {
		assert.Empty(t, r.Header.Values(name), "a fill must not carry %s", name)
	}

	// Pass-through requests may carry them, but still only to the origin.
	p.request(http.MethodPost, "/page", strings.NewReader("x"), overrides...)
	assert.Equal(t, "/page", o.lastRequest().RequestURI)
	p.get("/page", append([]string{"Authorization", "Bearer x"}, overrides...)...)
	assert.Equal(t, "/page", o.lastRequest().RequestURI)
	assert.EqualValues(t, 0, evil.hits.Load(), "nothing may reach another host")
}

// ALLOWED_HOSTS: a page request for another host gets 421 and reaches
// nothing; hosts compare after the key's normalisation.
func TestDisallowedHostGets421(t *testing.T) {
	o := newTestOrigin(t, page("<p>ok</p>"))
	p := startProxy(t, o.URL, map[string]string{"ALLOWED_HOSTS": "example.com,www.example.com"})
	for _, host := range []string{"evil.example", "example.com.evil.example", "example.com:8080", "localhost"} {
		got := p.get("/x", "Host", host)
		assert.Equal(t, http.StatusMisdirectedRequest, got.Status, host)
		got = p.request(http.MethodPost, "/x", nil, "Host", host)
		assert.Equal(t, http.StatusMisdirectedRequest, got.Status, "POST %s", host)
	}
	got := mustRaw(t, p, "GET", "GET http://evil.example/x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusMisdirectedRequest, got.Status, "absolute form names the host")
	assert.EqualValues(t, 0, o.hits.Load())

	for _, host := range []string{"example.com", "EXAMPLE.com:80", "example.com."} {
		got := p.get("/x", "Host", host)
		assert.Equal(t, http.StatusOK, got.Status, host)
	}
	assert.EqualValues(t, 1, o.hits.Load(), "the allowed spellings share one key")
}

// ORIGIN_HOST is the Host the origin sees; the key's host stays the
// visitor's.
func TestOriginHostSetsHostOriginSees(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xfh=%s", r.Header.Get("X-Forwarded-Host"))
	})
	p := startProxy(t, o.URL, map[string]string{"ORIGIN_HOST": "backend.internal"})
	a := p.get("/o", "Host", "www.example.com")
	assert.Equal(t, "backend.internal", o.lastRequest().Host)
	assert.Equal(t, "xfh=www.example.com", a.Body)
	b := assertNotStored(t, p, o, "/o", "Host", "shop.example.com") // another visitor host: another key
	assert.Equal(t, "backend.internal", o.lastRequest().Host)
	assert.Equal(t, "xfh=shop.example.com", b.Body)
	assert.Equal(t, "xfh=www.example.com", assertStored(t, p, o, "/o", "Host", "www.example.com").Body)
	p.request(http.MethodPost, "/o", nil, "Host", "www.example.com")
	assert.Equal(t, "backend.internal", o.lastRequest().Host, "pass-through too")
}

// Without ORIGIN_HOST the origin sees the visitor's Host, on fills and
// pass-throughs.
func TestOriginSeesVisitorHostByDefault(t *testing.T) {
	o := newTestOrigin(t, page("<p>h</p>"))
	p := startProxy(t, o.URL, nil)
	p.get("/o", "Host", "www.example.com")
	assert.Equal(t, "www.example.com", o.lastRequest().Host)
	p.get("/o", "Host", "www.example.com", "Authorization", "Bearer x")
	assert.Equal(t, "www.example.com", o.lastRequest().Host)
}

// An absolute-form target without a path asks the origin for "/".
func TestAbsoluteFormWithoutPathAsksForRoot(t *testing.T) {
	o := newTestOrigin(t, page("<p>root</p>"))
	p := startProxy(t, o.URL, nil)
	got := mustRaw(t, p, "GET", "GET http://www.example.com HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n")
	assert.Equal(t, http.StatusOK, got.Status)
	assert.Equal(t, "<p>root</p>", got.Body)
	assert.Equal(t, "/", o.lastRequest().RequestURI)
	assert.Equal(t, "www.example.com", o.lastRequest().Host)
	assertStored(t, p, o, "/", "Host", "www.example.com")
}
