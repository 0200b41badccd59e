package purge

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/revalidation"
)

var jobID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestAsyncJobLifecycle(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan string, 1)
	e := newEnv(t, func(_ *Options, f *fakeRevalidator) {
		f.gate, f.started = gate, started
		f.fail = map[string]bool{"/b": true}
	})
	r := e.call(t, http.MethodPost, "/api/revalidate?path=/b&path=/a&async=1")
	require.Equal(t, http.StatusAccepted, r.Status, r.Raw)
	assert.Regexp(t, jobID, r.Job)
	assert.JSONEq(t, `{"job":"`+r.Job+`"}`, r.Raw)
	assert.Equal(t, "/api/revalidate/jobs/"+r.Job, r.Header.Get("Location"))
	id := r.Job

	// The job has started one key and is held: not done, nothing completed.
	<-started
	r = e.call(t, http.MethodGet, "/api/revalidate/jobs/"+id)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	assert.JSONEq(t, `{"job":"`+id+`","done":false,"total":2,"completed":0,"results":[]}`, r.Raw)

	// The job needs the secret too.
	r = e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate/jobs/"+id, nil))
	assert.Equal(t, http.StatusUnauthorized, r.Status)
	r = e.send(t, e.newReq(t, http.MethodGet, "/api/revalidate/jobs/"+id+"?secret="+testSecret, nil))
	assert.Equal(t, http.StatusOK, r.Status)

	close(gate)
	<-started
	e.waitJob(t, id)
	r = e.call(t, http.MethodGet, "/api/revalidate/jobs/"+id)
	require.Equal(t, http.StatusOK, r.Status, r.Raw)
	assert.JSONEq(t, `{"job":"`+id+`","done":true,"total":2,"completed":2,"results":[
		{"path":"/a","status":200,"outcome":"replaced"},
		{"path":"/b","status":503,"outcome":"failed","error":"origin answered 503; previous version kept"}]}`, r.Raw)

	r = e.call(t, http.MethodGet, "/api/revalidate/jobs/0123456789abcdef0123456789abcdef")
	assert.Equal(t, http.StatusNotFound, r.Status)
	assert.Contains(t, r.Message, "Unknown job")
}

func TestAsyncForms(t *testing.T) {
	for _, tt := range []struct {
		name, target, body string
		want               int
	}{
		{"query true", "?path=/a&async=true", "", http.StatusAccepted},
		{"query TRUE", "?path=/a&async=TRUE", "", http.StatusAccepted},
		{"query 0", "?path=/a&async=0", "", http.StatusOK},
		{"JSON true", "", `{"paths":["/a"],"async":true}`, http.StatusAccepted},
		{"JSON false", "", `{"paths":["/a"],"async":false}`, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.post(t, "/api/revalidate"+tt.target, tt.body)
			assert.Equal(t, tt.want, r.Status, r.Raw)
			if r.Job != "" {
				e.waitJob(t, r.Job)
			}
			assert.Equal(t, []string{"refetch " + e.host() + " /a"}, e.rev.Calls())
		})
	}
}

func TestAutoAsync(t *testing.T) {
	for _, tt := range []struct {
		name          string
		tagged, paths int
		prefixed      int // pages under /p/, some also tagged
		want          int
	}{
		{"100 tag matches: synchronous", asyncAbove, 0, 0, http.StatusOK},
		{"101 tag matches: job", asyncAbove + 1, 0, 0, http.StatusAccepted},
		{"paths are not counted", asyncAbove, 5, 0, http.StatusOK},
		{"tags and prefixes together, distinct", 60, 0, 41, http.StatusAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for i := range tt.tagged {
				e.index.keys[fmt.Sprintf("%s/t/%03d", e.host(), i)] = []string{"big"}
			}
			for i := range tt.prefixed {
				e.index.keys[fmt.Sprintf("%s/p/%03d", e.host(), i)] = nil
			}
			// The tagged pages also match the prefix "/t/": counted once.
			target := "/api/revalidate?tag=big&prefix=/t/"
			if tt.prefixed > 0 {
				target += "&prefix=/p/"
			}
			for i := range tt.paths {
				target += fmt.Sprintf("&path=/other/%d", i)
			}
			r := e.call(t, http.MethodGet, target)
			assert.Equal(t, tt.want, r.Status, r.Raw)
			if r.Job != "" {
				e.waitJob(t, r.Job)
			}
			assert.Len(t, e.rev.Calls(), tt.tagged+tt.prefixed+tt.paths)
		})
	}
}

func TestJobExpiry(t *testing.T) {
	e := newEnv(t)
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/a&async=1")
	require.Equal(t, http.StatusAccepted, r.Status)
	e.waitJob(t, r.Job) // done at the clock's time

	e.clock.Advance(10 * time.Minute)
	assert.Equal(t, http.StatusOK, e.call(t, http.MethodGet, "/api/revalidate/jobs/"+r.Job).Status, "readable for 10 minutes")
	e.clock.Advance(jobTTL - 10*time.Minute)
	assert.Equal(t, http.StatusNotFound, e.call(t, http.MethodGet, "/api/revalidate/jobs/"+r.Job).Status)
}

func TestCloseCancelsJobs(t *testing.T) {
	gate := make(chan struct{}) // never opened
	started := make(chan string, 1)
	e := newEnv(t, func(_ *Options, f *fakeRevalidator) { f.gate, f.started = gate, started })
	r := e.call(t, http.MethodGet, "/api/revalidate?path=/a&path=/b&async=1")
	require.Equal(t, http.StatusAccepted, r.Status)
	<-started
	e.closeWithin(t) // returns only once the job has ended

	r = e.call(t, http.MethodGet, "/api/revalidate/jobs/"+r.Job)
	require.Equal(t, http.StatusOK, r.Status)
	assert.True(t, r.Done)
	assert.Equal(t, []string{"/a failed", "/b failed"}, paths(r.Results))
}

func TestJobTable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	js := newJobs(2)
	a, err := js.add(1, now)
	require.NoError(t, err)
	b, err := js.add(1, now)
	require.NoError(t, err)
	assert.NotEqual(t, a.id, b.id)

	_, err = js.add(1, now.Add(time.Hour))
	assert.ErrorIs(t, err, errTooManyJobs, "both jobs are running: none may go")

	a.finish(now)
	b.finish(now.Add(time.Second))
	c, err := js.add(1, now.Add(2*time.Second))
	require.NoError(t, err)
	assert.Nil(t, js.get(a.id, now), "the oldest finished job made room")
	assert.Same(t, b, js.get(b.id, now))
	assert.Same(t, c, js.get(c.id, now))
	assert.Nil(t, js.get(b.id, now.Add(time.Second+jobTTL)), "expired")
	assert.Len(t, js.byID, 1)
	assert.Regexp(t, jobID, c.id)
}

// A call that is a job only because its tags matched over 100 pages still
// refetches its path targets before it answers: read-your-writes holds for
// the pages the CMS named, and the 202 lists their results.
func TestLargeTagCallRefetchesItsPathsBeforeAnswering(t *testing.T) {
	e := newEnv(t)
	for i := range asyncAbove + 1 {
		e.index.keys[fmt.Sprintf("%s/t/%03d", e.host(), i)] = []string{"big"}
	}
	r := e.call(t, http.MethodGet, "/api/revalidate?tag=big&path=/saved-post&path=/")
	require.Equal(t, http.StatusAccepted, r.Status, r.Raw)
	require.NotEmpty(t, r.Job)
	assert.Equal(t, []Result{
		{Path: "/", Status: 200, Outcome: revalidation.Replaced},
		{Path: "/saved-post", Status: 200, Outcome: revalidation.Replaced},
	}, r.Results, "the paths are done when the call answers")
	e.waitJob(t, r.Job)
	assert.Len(t, e.rev.Calls(), asyncAbove+3, "each page once: the paths in the call, the tag's pages in the job")
	v := e.call(t, http.MethodGet, "/api/revalidate/jobs/"+r.Job)
	assert.Contains(t, v.Raw, `"total":103`)
	assert.Contains(t, v.Raw, `"completed":103`)
}
