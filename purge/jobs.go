package purge

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

const (
	// jobTTL is how long a finished job stays readable (at least 10
	// minutes). A running job never expires.
	jobTTL = 15 * time.Minute
	// maxJobs bounds the job table. When it is full of unexpired jobs the
	// oldest finished one goes early; when every job is still running, a
	// new one is refused (503).
	maxJobs = 1000
)

// job is one background revalidation.
type job struct {
	id    string        // 128 random bits, hex
	total int           // keys to act on
	ended chan struct{} // closed by finish

	mu       sync.Mutex // guards the fields below
	results  []Result   // in completion order
	done     bool
	finished time.Time // when done became true
}

// add records a finished result; safe for concurrent use.
func (j *job) add(res Result) {
	j.mu.Lock()
	j.results = append(j.results, res)
	j.mu.Unlock()
}

func (j *job) finish(now time.Time) {
	j.mu.Lock()
	j.done, j.finished = true, now
	j.mu.Unlock()
	close(j.ended)
}

// expired reports whether j may be forgotten at now.
func (j *job) expired(now time.Time) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done && now.Sub(j.finished) >= jobTTL
}

// jobView is the answer to GET Path/jobs/<id>.
type jobView struct {
	Job       string   `json:"job"`
	Done      bool     `json:"done"`
	Total     int      `json:"total"`
	Completed int      `json:"completed"` // len(Results)
	Results   []Result `json:"results"`   // sorted by path
}

// view is a snapshot of j's progress.
func (j *job) view() jobView {
	j.mu.Lock()
	v := jobView{Job: j.id, Done: j.done, Total: j.total, Results: append([]Result{}, j.results...)}
	j.mu.Unlock()
	v.Completed = len(v.Results)
	sortResults(v.Results)
	return v
}

// jobs is the table of jobs by id.
type jobs struct {
	max int // most jobs kept

	mu   sync.Mutex // guards byID
	byID map[string]*job
}

func newJobs(maxCount int) *jobs {
	return &jobs{max: maxCount, byID: make(map[string]*job)}
}

var errTooManyJobs = badInput("Too many revalidation jobs running; retry later")

// add registers a new job over total keys.
func (js *jobs) add(total int, now time.Time) (*job, error) {
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand, Go 1.24+)
	j := &job{id: hex.EncodeToString(id[:]), total: total, ended: make(chan struct{})}

	js.mu.Lock()
	defer js.mu.Unlock()
	if len(js.byID) >= js.max {
		js.pruneLocked(now)
	}
	if len(js.byID) >= js.max {
		return nil, errTooManyJobs
	}
	js.byID[j.id] = j
	return j, nil
}

// get returns the job id names, or nil when it is unknown or expired.
func (js *jobs) get(id string, now time.Time) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	j := js.byID[id]
	if j != nil && j.expired(now) {
		delete(js.byID, id)
		return nil
	}
	return j
}

// pruneLocked forgets expired jobs and, if none was, the oldest finished one.
func (js *jobs) pruneLocked(now time.Time) {
	var oldest *job
	var oldestAt time.Time
	for id, j := range js.byID {
		if j.expired(now) {
			delete(js.byID, id)
			continue
		}
		j.mu.Lock()
		if j.done && (oldest == nil || j.finished.Before(oldestAt)) {
			oldest, oldestAt = j, j.finished
		}
		j.mu.Unlock()
	}
	if len(js.byID) >= js.max && oldest != nil {
		delete(js.byID, oldest.id)
	}
}

// startJob runs p in the background and answers 202 with the job's id. A
// call made a job only because its tags and prefixes matched so many pages
// has its path targets refetched first, while it waits: read-your-writes
// holds for every page named by path, and the 202 lists their results. The
// caller has called h.begin; the job's goroutine ends the registration.
func (h *Handler) startJob(c *call, r *http.Request, p *plan) {
	j, err := h.jobs.add(len(p.keys), h.now())
	if err != nil {
		h.wg.Done()
		c.Header().Set("Retry-After", "60")
		c.fail(http.StatusServiceUnavailable, err.Error())
		return
	}
	ctx, cancel := h.detach(r)
	var first []Result // the paths' results, for a large call
	rest := p
	if p.large && p.paths > 0 {
		var mu sync.Mutex // guards first
		h.run(ctx, &plan{mode: p.mode, keys: p.keys[:p.paths]}, func(res Result) {
			j.add(res)
			mu.Lock()
			first = append(first, res)
			mu.Unlock()
		})
		sortResults(first)
		rest = &plan{mode: p.mode, keys: p.keys[p.paths:]}
	}
	go func() {
		defer h.wg.Done()
		defer cancel()
		h.run(ctx, rest, j.add)
		j.finish(h.now())
		v := j.view()
		h.logger.LogAttrs(ctx, slog.LevelInfo, "revalidate job done",
			slog.String("job", j.id), slog.Int("keys", j.total), outcomeAttrs(v.Results))
	}()
	c.attrs = append(c.attrs, slog.String("job", j.id))
	c.Header().Set("Location", h.opts.Path+"/jobs/"+j.id)
	c.reply(http.StatusAccepted, struct {
		Job     string   `json:"job"`
		Results []Result `json:"results,omitempty"`
	}{j.id, first})
}
