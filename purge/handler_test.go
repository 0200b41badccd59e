package purge

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/revalidation"
)

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		method, target, allow string
	}{
		{http.MethodPut, "/api/revalidate?path=/a", "GET, POST"},
		{http.MethodDelete, "/api/revalidate?path=/a", "GET, POST"},
		{"PURGE", "/api/revalidate?path=/a", "GET, POST"},
		{http.MethodPatch, "/api/revalidate?path=/a", "GET, POST"},
		{http.MethodPost, "/api/revalidate/jobs/0123", "GET"},
		{http.MethodDelete, "/api/revalidate/jobs/0123", "GET"},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			// A wrong secret does not matter: the method is checked first.
			r := e.send(t, e.newReq(t, tt.method, tt.target, nil, "Authorization", "Bearer wrong"))
			assert.Equal(t, http.StatusMethodNotAllowed, r.Status)
			assert.Equal(t, tt.allow, r.Header.Get("Allow"))
		})
	}
	// HEAD has no body to check as JSON, but is refused the same way.
	resp, err := e.srv.Client().Head(e.srv.URL + "/api/revalidate?path=/a&secret=" + testSecret)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Empty(t, e.rev.Calls())

	// 405s are not authentication failures: the client is not locked out.
	for range 2 * lockoutLimit {
		e.send(t, e.newReq(t, http.MethodPut, "/api/revalidate?secret=wrong", nil))
	}
	assert.Equal(t, http.StatusOK, e.call(t, http.MethodGet, "/api/revalidate?path=/a").Status)
}

func TestSecretForms(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target string
		hdr    []string
		want   int
	}{
		{"bearer", "?path=/a", []string{"Authorization", "Bearer " + testSecret}, http.StatusOK},
		{"bearer lower case", "?path=/a", []string{"Authorization", "bearer " + testSecret}, http.StatusOK},
		{"bearer upper case", "?path=/a", []string{"Authorization", "BEARER " + testSecret}, http.StatusOK},
		{"query", "?path=/a&secret=" + testSecret, nil, http.StatusOK},
		{"query, other auth scheme", "?path=/a&secret=" + testSecret, []string{"Authorization", "Basic dXNlcjpwdw=="}, http.StatusOK},
		{"missing", "?path=/a", nil, http.StatusUnauthorized},
		{"wrong bearer", "?path=/a", []string{"Authorization", "Bearer " + testSecret + "x"}, http.StatusUnauthorized},
		{"prefix of the secret", "?path=/a", []string{"Authorization", "Bearer " + testSecret[:5]}, http.StatusUnauthorized},
		{"empty bearer", "?path=/a", []string{"Authorization", "Bearer "}, http.StatusUnauthorized},
		{"secret as basic", "?path=/a", []string{"Authorization", "Basic " + testSecret}, http.StatusUnauthorized},
		{"token without scheme", "?path=/a", []string{"Authorization", testSecret}, http.StatusUnauthorized},
		{"wrong query", "?path=/a&secret=nope", nil, http.StatusUnauthorized},
		{"wrong bearer wins over right query", "?path=/a&secret=" + testSecret, []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"second query value", "?path=/a&secret=nope&secret=" + testSecret, nil, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate"+tt.target, nil, tt.hdr...))
			assert.Equal(t, tt.want, r.Status, r.Raw)
			if tt.want == http.StatusUnauthorized {
				assert.JSONEq(t, `{"message":"Invalid token"}`, r.Raw)
				assert.Empty(t, e.rev.Calls(), "nothing runs without the secret")
			} else {
				assert.Equal(t, []string{"refetch " + e.host() + " /a"}, e.rev.Calls())
			}
		})
	}
}

func TestCheckOrder(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat(" ", maxBody+1)

	// Secret before size: a wrong secret with a huge body is 401.
	r := e.send(t, e.newReq(t, http.MethodPost, "/api/revalidate", strings.NewReader(big),
		"Authorization", "Bearer wrong", "Content-Type", "application/json"))
	assert.Equal(t, http.StatusUnauthorized, r.Status)

	// Size before input: a huge body with no target is 413, not 400.
	r = e.post(t, "/api/revalidate", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status)

	// Secret before input: a bad path with a wrong secret is 401.
	r = e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate?path=//evil&secret=wrong", nil))
	assert.Equal(t, http.StatusUnauthorized, r.Status)
	assert.Empty(t, e.rev.Calls())
}

func TestBodySize(t *testing.T) {
	e := newEnv(t)
	target := `{"paths":["/a"]}`
	exact := target + strings.Repeat(" ", maxBody-len(target))
	require.Len(t, exact, 1<<20)

	r := e.post(t, "/api/revalidate", exact)
	assert.Equal(t, http.StatusOK, r.Status, "1 MiB exactly is accepted")

	r = e.post(t, "/api/revalidate", exact+" ")
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status)

	// Without Content-Length (chunked), the limit still holds.
	req := e.newReq(t, http.MethodPost, "/api/revalidate", io.MultiReader(strings.NewReader(exact+" ")),
		"Authorization", "Bearer "+testSecret, "Content-Type", "application/json")
	req.ContentLength = -1
	r = e.send(t, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status)

	req = e.newReq(t, http.MethodPost, "/api/revalidate", io.MultiReader(strings.NewReader(exact)),
		"Authorization", "Bearer "+testSecret, "Content-Type", "application/json")
	req.ContentLength = -1
	r = e.send(t, req)
	assert.Equal(t, http.StatusOK, r.Status)

	assert.Equal(t, []string{"refetch " + e.host() + " /a", "refetch " + e.host() + " /a"}, e.rev.Calls())
}

func TestUnknownSubPath(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"/api/revalidate/", "/api/revalidate/x", "/api/revalidate/jobs", "/api/revalidate/jobs/", "/api/revalidate/jobs/a/b"} {
		r := e.call(t, http.MethodGet, target)
		assert.Equal(t, http.StatusNotFound, r.Status, target)
	}
	assert.Empty(t, e.rev.Calls())
}

func TestNoTarget(t *testing.T) {
	e := newEnv(t)
	for name, r := range map[string]apiReply{
		"query":            e.call(t, http.MethodGet, "/api/revalidate"),
		"unrelated params": e.call(t, http.MethodGet, "/api/revalidate?paths=/a&x=1"),
		"empty object":     e.post(t, "/api/revalidate", `{}`),
		"empty lists":      e.post(t, "/api/revalidate", `{"paths":[],"tags":[],"prefixes":[],"host":"example.com"}`),
		"empty JSON body":  e.post(t, "/api/revalidate", ``),
		"JSON not labelled": e.send(t, e.newReq(t, http.MethodPost, "/api/revalidate", strings.NewReader(`{"paths":["/a"]}`),
			"Authorization", "Bearer "+testSecret, "Content-Type", "text/plain")),
	} {
		assert.Equal(t, http.StatusBadRequest, r.Status, name)
		assert.JSONEq(t, `{"message":"No path, tag or prefix given"}`, r.Raw, name)
	}
	assert.Empty(t, e.rev.Calls())
}

func TestJSONBody(t *testing.T) {
	for _, tt := range []struct {
		name, contentType, body string
		wantStatus              int
		wantMessage             string // substring
		wantCalls               []string
	}{
		{"malformed", "application/json", `{"paths":["/a"`, 400, "Malformed JSON body", nil},
		{"not an object", "application/json", `["/a"]`, 400, "Malformed JSON body: expected an object", nil},
		{"trailing data", "application/json", `{"paths":["/a"]} {}`, 400, "data after the object", nil},
		{"number in a list", "application/json", `{"paths":["/a",1]}`, 400, `paths[1] is 1, not a string`, nil},
		{"null in a list", "application/json", `{"tags":[null]}`, 400, `tags[0] is null, not a string`, nil},
		{"object as list", "application/json", `{"prefixes":{"a":1}}`, 400, `"prefixes" must be a list of strings`, nil},
		{"host not a string", "application/json", `{"paths":["/a"],"host":1}`, 400, `"host" must be a string`, nil},
		{"async not a bool", "application/json", `{"paths":["/a"],"async":"yes"}`, 400, `"async" must be true or false`, nil},
		{"unknown mode", "application/json", `{"paths":["/a"],"mode":"hard"}`, 400, `Unknown mode "hard"`, nil},
		{"unknown fields ignored", "application/json", `{"paths":["/a"],"extra":[1,2],"secret":"x"}`, 200, "", []string{"refetch H /a"}},
		{"names match exactly", "application/json", `{"paths":["/a"],"Tags":[{"id":1}],"PATHS":["/b"]}`, 200, "", []string{"refetch H /a"}},
		{"charset parameter", "application/json; charset=utf-8", `{"paths":["/a"]}`, 200, "", []string{"refetch H /a"}},
		{"lone string", "Application/JSON", `{"paths":"/a"}`, 200, "", []string{"refetch H /a"}},
		{"nulls", "application/json", `{"paths":["/a"],"tags":null,"host":null,"mode":null,"async":null}`, 200, "", []string{"refetch H /a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.send(t, e.newReq(t, http.MethodPost, "/api/revalidate", strings.NewReader(tt.body),
				"Authorization", "Bearer "+testSecret, "Content-Type", tt.contentType))
			assert.Equal(t, tt.wantStatus, r.Status, r.Raw)
			assert.Contains(t, r.Message, tt.wantMessage)
			var want []string
			for _, c := range tt.wantCalls {
				want = append(want, strings.Replace(c, "H", e.host(), 1))
			}
			assert.Equal(t, want, nilIfEmpty(e.rev.Calls()))
		})
	}
}

// The example body of examples/webhook.json is accepted as it is.
func TestExampleWebhookBody(t *testing.T) {
	body, err := os.ReadFile("../examples/webhook.json")
	require.NoError(t, err)
	e := newEnv(t)
	e.index.keys["www.example.com/category/news/page/2/"] = nil
	e.index.keys["www.example.com/about/"] = []string{"post-42"}
	r := e.post(t, "/api/revalidate", string(body))
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	assert.Equal(t, []string{
		"refetch www.example.com /",
		"refetch www.example.com /about/",
		"refetch www.example.com /blog/hello-world/",
		"refetch www.example.com /category/news/page/2/",
		"refetch www.example.com /search?page=2&q=isr",
	}, e.rev.Calls())
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestQueryAndJSONMerge(t *testing.T) {
	e := newEnv(t)
	e.index.keys[e.host()+"/t1"] = []string{"news"}
	e.index.keys[e.host()+"/blog/x"] = nil
	e.index.keys[e.host()+"/a"] = []string{"news"} // also a path target: acted on once
	r := e.post(t, "/api/revalidate?path=/a&tag=news", `{"paths":["/b","/a"],"prefixes":["/blog/"]}`)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	h := e.host()
	assert.Equal(t, []string{"refetch " + h + " /a", "refetch " + h + " /b", "refetch " + h + " /blog/x", "refetch " + h + " /t1"}, e.rev.Calls())
	assert.Equal(t, []string{"/a replaced", "/b replaced", "/blog/x replaced", "/t1 replaced"}, paths(r.Results))
}

func TestConflictingScalars(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct{ target, body, want string }{
		{"?mode=soft", `{"paths":["/a"],"mode":"purge"}`, `Conflicting modes "soft" and "purge"`},
		{"?host=a.example&host=b.example", `{"paths":["/a"]}`, `Conflicting hosts "a.example" and "b.example"`},
		{"?async=maybe", `{"paths":["/a"]}`, `Invalid async "maybe"`},
		{"?path=/a&x=%zz", ``, `Malformed query string`},
	} {
		r := e.post(t, "/api/revalidate"+tt.target, tt.body)
		assert.Equal(t, http.StatusBadRequest, r.Status, tt.target)
		assert.Contains(t, r.Message, tt.want)
	}
	// The same value twice is no conflict; hosts compare normalised.
	r := e.post(t, "/api/revalidate?mode=soft&host=Example.COM:80", `{"paths":["/a"],"mode":"soft","host":"example.com"}`)
	assert.Equal(t, http.StatusOK, r.Status, r.Raw)
	assert.Equal(t, []string{"soft example.com /a"}, e.rev.Calls())
}

func TestLogLines(t *testing.T) {
	e := newEnv(t)
	e.call(t, http.MethodGet, "/api/revalidate?path=/private-page&tag=t")
	e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate?path=/a&secret="+testSecret, nil))
	e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate?path=/a&secret="+testSecret+"-wrong", nil))
	e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate?path=/a", nil, "Authorization", "Bearer "+testSecret+"-wrong"))

	logs := e.logs.String()
	assert.NotContains(t, logs, "s3cret", "the secret, right or wrong, never reaches a log line")
	assert.NotContains(t, logs, "private-page", "the query is not logged as is")
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	assert.Len(t, lines, 4, "one line per call")
	assert.Contains(t, lines[0], `"keys":1`)
	assert.Contains(t, lines[0], `"replaced":1`)
	assert.Contains(t, lines[2], `"status":401`)
}

func TestOnResult(t *testing.T) {
	var mu = make(chan string, 10)
	e := newEnv(t, func(o *Options, f *fakeRevalidator) {
		o.OnResult = func(outcome revalidation.Outcome) { mu <- string(outcome) }
		f.fail = map[string]bool{"/b": true}
		f.extra = map[string]int{"/a": 1}
	})
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/a&path=/b")
	assert.Equal(t, http.StatusBadGateway, r.Status)
	close(mu)
	counts := map[string]int{}
	for o := range mu {
		counts[o]++
	}
	assert.Equal(t, map[string]int{"replaced": 1, "stored": 1, "failed": 1}, counts)
}

func TestClose(t *testing.T) {
	e := newEnv(t)
	e.h.Close()
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/a")
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Empty(t, e.rev.Calls())
}
