package purge

import (
	"net/http"
	"net/url"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// statusView is the answer to GET Path/status?path=…: what is stored for
// the key, whether it passes through and why, and its last revalidation
// (README.md#status).
type statusView struct {
	Host     string        `json:"host"`
	Path     string        `json:"path"`
	Stored   bool          `json:"stored"`
	Variants []variantView `json:"variants"`
	// PassThroughUntil is set while the key passes through to the origin.
	PassThroughUntil *string `json:"pass_through_until"`
	Reason           string  `json:"reason,omitempty"`
	ReasonDetail     string  `json:"reason_detail,omitempty"`
	// LastRevalidation is nil when none is remembered.
	LastRevalidation *lastRevalidation `json:"last_revalidation"`
	Now              int64             `json:"now"` // Unix milliseconds
}

type variantView struct {
	HTTPS      bool               `json:"https"`
	Status     int                `json:"status"`
	StoredAt   string             `json:"stored_at"` // RFC 3339, UTC
	Age        int64              `json:"age"`       // seconds, as visitors are told
	Bytes      int64              `json:"bytes"`     // as stored (compressed when gzip)
	PlainBytes int64              `json:"plain_bytes"`
	Gzip       bool               `json:"gzip"`
	Tags       []string           `json:"tags"`
	State      string             `json:"state"` // fresh or stale
	Vary       map[string]*string `json:"vary"`  // null: the header was absent
	Links      int                `json:"links"`
}

// serveStatus answers GET Path/status with the same secret as the API.
func (h *Handler) serveStatus(c *call, r *http.Request) {
	if r.Method != http.MethodGet {
		c.methodNotAllowed(r.Method, "GET")
		return
	}
	if h.locked(c, r) || !h.authenticate(c, r) {
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		c.fail(http.StatusBadRequest, "Malformed query string: "+err.Error())
		return
	}
	paths := q["path"]
	switch {
	case len(paths) == 0 || paths[0] == "":
		c.fail(http.StatusBadRequest, "No path given: use ?path=/a")
		return
	case len(paths) > 1:
		c.fail(http.StatusBadRequest, "Give one path")
		return
	}
	explicit, err := oneHost(q["host"])
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return
	}
	host, err := h.resolveHost(explicit, r)
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return
	}
	v, err := h.status(host, paths[0])
	if err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return
	}
	c.reply(http.StatusOK, v)
}

// Status is what GET Path/status answers for target ("/a?x=1") on host
// (normalised like a key's host; it must be an allowed one): the admin
// dashboard's lookup box shows the same, without the secret, on the
// private admin listener.
func (h *Handler) Status(host, target string) (any, error) {
	// No request: an empty host means the one allowed host, if there is one.
	host, err := h.resolveHost(cache.NormalizeHost(host, false), &http.Request{})
	if err != nil {
		return nil, err
	}
	return h.status(host, target)
}

func (h *Handler) status(host, target string) (statusView, error) {
	path, query, err := checkTarget("path", target, true)
	if err != nil {
		return statusView{}, err
	}
	key, err := cache.NewKey(host, path, query, h.opts.Ignore, h.opts.Keep)
	if err != nil {
		return statusView{}, badInput("Invalid path %s: %v", target, err)
	}
	var st revalidation.KeyState
	if h.opts.Inspector != nil {
		st = h.opts.Inspector.Inspect(key)
	}
	return statusOf(key, st, h.recent.get(key.String()), h.now()), nil
}

func statusOf(key cache.Key, st revalidation.KeyState, last *lastRevalidation, now time.Time) statusView {
	v := statusView{Host: key.Host, Path: key.Target(), Stored: len(st.Variants) > 0,
		Variants: []variantView{}, LastRevalidation: last, Now: now.UnixMilli()}
	for _, s := range st.Variants {
		vv := variantView{HTTPS: s.HTTPS, Status: s.Status, StoredAt: s.StoredAt.UTC().Format(time.RFC3339Nano),
			Age: s.Age, Bytes: s.Bytes, PlainBytes: s.PlainBytes, Gzip: s.Gzip, Tags: s.Tags,
			State: "fresh", Vary: map[string]*string{}, Links: s.Links}
		if vv.Tags == nil {
			vv.Tags = []string{}
		}
		if s.Stale {
			vv.State = "stale"
		}
		for name, value := range s.Vary {
			vv.Vary[name] = &value
		}
		for _, name := range s.VaryAbsent {
			vv.Vary[name] = nil
		}
		v.Variants = append(v.Variants, vv)
	}
	if !st.PassThroughUntil.IsZero() {
		until := st.PassThroughUntil.UTC().Format(time.RFC3339Nano)
		v.PassThroughUntil = &until
		v.Reason, v.ReasonDetail = st.PassReason, st.PassDetail
	}
	return v
}
