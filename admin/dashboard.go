package admin

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/metrics"
)

// Lookup answers the dashboard's lookup box: the status of the key of host
// and path (a path plus its query, "/a?x=1"), as the revalidate API's
// status call reports it. Its answer is shown through its JSON encoding,
// whose fields are those of that call: stored, variants (stored_at, age,
// bytes, gzip, tags, state), pass_through_until, reason and
// last_revalidation; others are shown raw. An error is the visitor's
// (a malformed path, no host): its text is shown.
type Lookup interface {
	Status(host, path string) (any, error)
}

// Dashboard feeds the page at "/".
type Dashboard struct {
	// Recent reads the counters and history the page shows. It must not
	// be nil.
	Recent func() metrics.Snapshot
	// Lookup answers the lookup box. nil: the page has no box.
	Lookup Lookup
	// Host is the host the lookup box proposes (the one ALLOWED_HOSTS
	// names, if it names one).
	Host string
	// Replicas lists the live replicas of a cluster, this one included;
	// nil: a single node.
	Replicas func() []string
	// Node is this replica's NODE_ID, in a cluster.
	Node string
}

//go:embed dashboard.html
var dashboardHTML string

var dashboardPage = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"show": show,
}).Parse(dashboardHTML))

// view is what dashboard.html renders.
type view struct {
	Now, Started string
	Uptime       string
	Refresh      bool

	RatioAll, RatioRecent   string
	Totals, Recent          metrics.Totals
	MeanOrigin              string
	Entries                 int
	Bytes                   string
	Requests, Latency       chart
	Revalidations           []revalRow
	Failed                  int
	HasLookup               bool
	LookupHost, LookupPath  string
	LookupError             string
	Status                  *keyStatus
	StatusJSON              string
	Buckets, BucketSeconds  int
	HistoryMinutes, RevKept int
	Cluster                 bool
	Node                    string
	Replicas                []string
}

type revalRow struct {
	metrics.Revalidation
	When string
}

// keyStatus is the status call's answer, read through its JSON; fields are
// kept loose (any) so that a change of type there still shows here.
type keyStatus struct {
	Host             any       `json:"host"`
	Path             any       `json:"path"`
	Stored           bool      `json:"stored"`
	Variants         []variant `json:"variants"`
	PassThroughUntil any       `json:"pass_through_until"`
	Reason           any       `json:"reason"`
	LastRevalidation *struct {
		At      any `json:"at"`
		Outcome any `json:"outcome"`
		Error   any `json:"error"`
	} `json:"last_revalidation"`
}

type variant struct {
	HTTPS    any `json:"https"`
	Vary     any `json:"vary"`
	Status   any `json:"status"`
	StoredAt any `json:"stored_at"`
	Age      any `json:"age"`
	Bytes    any `json:"bytes"`
	Gzip     any `json:"gzip"`
	Tags     any `json:"tags"`
	State    any `json:"state"`
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	d := h.dash
	s := d.Recent()
	var replicas []string
	if d.Replicas != nil {
		replicas = d.Replicas()
	}
	recent := metrics.Totals{}
	for _, b := range s.Buckets {
		recent = recent.Plus(b.Totals)
	}
	v := view{
		Now:            s.Now.Format("2006-01-02 15:04:05 MST"),
		Started:        s.Started.Format("2006-01-02 15:04:05 MST"),
		Uptime:         s.Now.Sub(s.Started).Round(time.Second).String(),
		RatioAll:       ratio(s.Totals),
		RatioRecent:    ratio(recent),
		Totals:         s.Totals,
		Recent:         recent,
		MeanOrigin:     "—",
		Entries:        s.Entries,
		Bytes:          formatBytes(s.Bytes),
		Requests:       requestsChart(s.Now, s.Buckets),
		Latency:        latencyChart(s.Now, s.Buckets),
		HasLookup:      d.Lookup != nil,
		Cluster:        d.Replicas != nil,
		Node:           d.Node,
		LookupHost:     d.Host,
		Replicas:       replicas,
		BucketSeconds:  int(metrics.BucketWidth / time.Second),
		HistoryMinutes: int(metrics.HistoryBuckets * metrics.BucketWidth / time.Minute),
		RevKept:        metrics.RevalidationsKept,
	}
	if s.Totals.OriginRequests > 0 {
		v.MeanOrigin = formatDuration(s.Totals.MeanOrigin())
	}
	for _, rv := range s.Revalidations {
		v.Revalidations = append(v.Revalidations, revalRow{Revalidation: rv, When: rv.At.Format("15:04:05")})
		if rv.Outcome == "failed" {
			v.Failed++
		}
	}

	status := http.StatusOK
	q := r.URL.Query()
	if path := q.Get("path"); path != "" && d.Lookup != nil {
		v.LookupPath = path
		if q.Has("host") {
			v.LookupHost = q.Get("host")
		}
		if err := v.lookup(d.Lookup); err != nil {
			v.LookupError = err.Error()
			status = http.StatusBadRequest
		}
	} else {
		v.Refresh = true // a page left open keeps itself current; a lookup stays put
	}

	var buf bytes.Buffer
	if err := dashboardPage.Execute(&buf, v); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	// Nothing but the page itself: inline style and SVG, no script, no
	// request to anywhere else, not framed.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// lookup asks l for the status of v's host and path and keeps it to show.
func (v *view) lookup(l Lookup) error {
	got, err := l.Status(v.LookupHost, v.LookupPath)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	v.StatusJSON = string(raw)
	var ks keyStatus
	if json.Unmarshal(raw, &ks) == nil {
		v.Status = &ks
	}
	return nil
}

// ratio is the share of t's cacheable answers given from memory: hits and
// stale answers over those and misses (pass-throughs never could be).
func ratio(t metrics.Totals) string {
	mem := t.Hits + t.Stale
	if mem+t.Misses == 0 {
		return "—"
	}
	return strconv.FormatFloat(100*float64(mem)/float64(mem+t.Misses), 'f', 1, 64) + " %"
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 3 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i])
}

// show prints a value decoded from JSON: whole numbers without an
// exponent, lists joined by spaces, objects as name=value, null as "—".
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case string:
		if x == "" {
			return "—"
		}
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e)
		}
		if len(parts) == 0 {
			return "—"
		}
		return strings.Join(parts, " ")
	case map[string]any:
		parts := make([]string, 0, len(x))
		for k, e := range x {
			parts = append(parts, k+"="+show(e))
		}
		if len(parts) == 0 {
			return "—"
		}
		slices.Sort(parts)
		return strings.Join(parts, " ")
	}
	return fmt.Sprint(v)
}
