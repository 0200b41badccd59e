// Command report turns the raw records of bench/run.sh (one JSON object a
// line) into the results: a table on standard output, results.json,
// results.md and chart.png (through gnuplot, when it is installed).
//
// Ratios are medians of same-round ratios: in round r, system S's r/s is
// divided by the ceiling's r/s of round r, and the median is taken over
// the rounds. Machines are noisy; a ratio measured within one round is
// far steadier than a ratio of two medians.
//
//	report -raw raw.jsonl -meta '{...}' -out bench/results
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// wrkResult is the JSON line printed by bench/wrk/bench.lua.
type wrkResult struct {
	Requests      int64   `json:"requests"`
	DurationS     float64 `json:"duration_s"`
	Bytes         int64   `json:"bytes"`
	RPS           float64 `json:"rps"`
	ConnectErrors int64   `json:"connect_errors"`
	ReadErrors    int64   `json:"read_errors"`
	WriteErrors   int64   `json:"write_errors"`
	Timeouts      int64   `json:"timeouts"`
	Non2xx        int64   `json:"non2xx"`
	P50           float64 `json:"p50_us"`
	P90           float64 `json:"p90_us"`
	P99           float64 `json:"p99_us"`
	P999          float64 `json:"p999_us"`
}

func (w *wrkResult) errors() int64 {
	return w.ConnectErrors + w.ReadErrors + w.WriteErrors + w.Timeouts + w.Non2xx
}

type fillResult struct {
	Requests  int            `json:"requests"`
	Errors    int            `json:"errors"`
	Status    map[string]int `json:"status"`
	XCache    map[string]int `json:"x_cache"`
	Gzip      int            `json:"gzip_bodies"`
	Versioned int            `json:"versioned_bodies"`
	Seconds   float64        `json:"seconds"`
	FirstErr  string         `json:"first_error"`
}

type burstResult struct {
	N              int            `json:"n"`
	OK             int            `json:"ok"`
	Errors         int            `json:"errors"`
	Status         map[string]int `json:"status"`
	XCache         map[string]int `json:"x_cache"`
	OriginRequests int            `json:"origin_requests"`
	FirstMs        float64        `json:"first_ms"`
	MedianMs       float64        `json:"median_ms"`
	LastMs         float64        `json:"last_ms"`
	OriginDelayMs  float64        `json:"origin_delay_ms"`
	FirstErr       string         `json:"first_error"`
}

type stormResult struct {
	Pages         int     `json:"pages"`
	Acked         int     `json:"acked"`
	Errors        int     `json:"errors"`
	Stale         int     `json:"stale"`
	Seconds       float64 `json:"seconds"`
	FloorSeconds  float64 `json:"floor_seconds"`
	FloorRatio    float64 `json:"floor_ratio"`
	AckP50Ms      float64 `json:"ack_p50_ms"`
	AckP99Ms      float64 `json:"ack_p99_ms"`
	OriginDelayMs float64 `json:"origin_delay_ms"`
	FirstErr      string  `json:"first_error"`
}

type record struct {
	Kind        string       `json:"kind"`
	Scenario    string       `json:"scenario"`
	System      string       `json:"system"`
	Round       int          `json:"round"`
	AE          string       `json:"ae"`
	Wrk         *wrkResult   `json:"wrk"`
	Fill        *fillResult  `json:"fill"`
	Burst       *burstResult `json:"burst"`
	Storm       *stormResult `json:"storm"`
	Pages       int          `json:"pages"`
	BeforeBytes float64      `json:"before_bytes"`
	AfterBytes  float64      `json:"after_bytes"`
	StoreBefore float64      `json:"store_before_bytes"`
	StoreAfter  float64      `json:"store_after_bytes"`
	LoadSeconds float64      `json:"load_seconds"`
	CPUTicks    *float64     `json:"cpu_ticks"` // the server's utime + stime during a wrk run
	Hz          float64      `json:"hz"`
}

// cpuPerRequest is the server's CPU time per answered request of r, in
// microseconds, or NaN when r has no CPU count.
func (r *record) cpuPerRequest() float64 {
	if r.CPUTicks == nil || r.Hz <= 0 || r.Wrk == nil || r.Wrk.Requests <= 0 {
		return math.NaN()
	}
	return *r.CPUTicks / r.Hz * 1e6 / float64(r.Wrk.Requests)
}

// Output types.

type throughputRow struct {
	Scenario      string    `json:"scenario"`
	System        string    `json:"system"`
	Rounds        int       `json:"rounds"`
	RPS           float64   `json:"rps_median"`
	RPSRatio      float64   `json:"rps_ratio_vs_ceiling"`
	P99Ms         float64   `json:"p99_ms_median"`
	P99Ratio      float64   `json:"p99_ratio_vs_ceiling"`
	Errors        int64     `json:"errors"`
	RPSByRound    []float64 `json:"rps_by_round"`
	P99MsByRound  []float64 `json:"p99_ms_by_round"`
	RatioByRound  []float64 `json:"rps_ratio_by_round"`
	MBytesPerSec  float64   `json:"mbytes_per_s_median"`
	BytesPerReply float64   `json:"bytes_per_reply"`
	// CPUUs is the server's CPU time per request (µs, median over rounds);
	// CPURatio the median of its same-round ratios to the ceiling's.
	CPUUs    float64 `json:"cpu_us_per_request,omitempty"`
	CPURatio float64 `json:"cpu_ratio_vs_ceiling,omitempty"`
}

// pacedRow is one system's tail at equal load: every system offered the
// same rate (light: well below saturation; near capacity: below that of
// isrproxy's peers, nginx for identity clients and Varnish for browsers).
type pacedRow struct {
	Scenario string  `json:"scenario"`
	System   string  `json:"system"`
	Rounds   int     `json:"rounds"`
	RPS      float64 `json:"rps_median"`
	P50Ms    float64 `json:"p50_ms_median"`
	P99Ms    float64 `json:"p99_ms_median"`
	P999Ms   float64 `json:"p999_ms_median"`
	Errors   int64   `json:"errors"`
	// Short is true when the system answered at its capacity (at
	// atCapacity of its median rate at saturation or more): it could not
	// carry the load offered, its p99 is its saturation's, and no ratio
	// is taken against it.
	Short bool `json:"short_of_the_load,omitempty"`
	// Same-round medians of isrproxy's p99 over the peer's (isrproxy's
	// row); none against a peer that could not carry the load (Short).
	P99VsVarnish float64 `json:"p99_ratio_vs_varnish,omitempty"`
	P99VsNginx   float64 `json:"p99_ratio_vs_nginx,omitempty"`
}

type burstRow struct {
	System            string    `json:"system"`
	Rounds            int       `json:"rounds"`
	OriginRequests    []int     `json:"origin_requests_by_round"`
	OriginRequestsMax int       `json:"origin_requests_max"`
	LastMsMedian      float64   `json:"last_ms_median"`
	LastMsMax         float64   `json:"last_ms_max"`
	LastMs            []float64 `json:"last_ms_by_round"`
	OK                int       `json:"ok_answers"`
	Answers           int       `json:"answers"`
	OriginDelayMs     float64   `json:"origin_delay_ms"`
}

// memoryRow is one system's memory per stored page: the median over
// rounds, each storing Pages new pages; BeforeBytes and AfterBytes are the
// first round's readings.
type memoryRow struct {
	System       string  `json:"system"`
	Pages        int     `json:"pages"`
	Rounds       int     `json:"rounds"`
	BytesPerPage float64 `json:"bytes_per_page"`
	// ByRound is each round's bytes per page, in round order.
	ByRound     []float64 `json:"bytes_per_page_by_round"`
	BeforeBytes float64   `json:"before_bytes"`
	AfterBytes  float64   `json:"after_bytes"`
	FillErrors  int       `json:"fill_errors"`
	// StoreBytesPerPage is the system's own count of stored bytes per page
	// (isrproxy_cache_bytes), when it has one: the rest of BytesPerPage is
	// index, allocator and garbage-collector overhead.
	StoreBytesPerPage float64 `json:"store_bytes_per_page,omitempty"`
}

type stormRow struct {
	Pages         int     `json:"pages"`
	Acked         int     `json:"acked"`
	Errors        int     `json:"errors"`
	Stale         int     `json:"stale_after_ack"`
	Seconds       float64 `json:"seconds"`
	FloorSeconds  float64 `json:"floor_seconds"`
	FloorRatio    float64 `json:"floor_ratio"`
	AckP99Ms      float64 `json:"ack_p99_ms"`
	QuietP99Ms    float64 `json:"quiet_hit_p99_ms"`
	StormP99Ms    float64 `json:"storm_hit_p99_ms"`
	P99Ratio      float64 `json:"p99_ratio_storm_vs_quiet"`
	QuietRPS      float64 `json:"quiet_rps"`
	StormRPS      float64 `json:"storm_rps"`
	LoadSeconds   float64 `json:"load_seconds"`
	LoadErrors    int64   `json:"load_errors"`
	FirstErr      string  `json:"first_error,omitempty"`
	OriginDelayMs float64 `json:"origin_delay_ms"`
}

type target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Op     string  `json:"op"`
	Target float64 `json:"target"`
	Met    bool    `json:"met"`
	Unit   string  `json:"unit,omitempty"`
	// Info marks a figure shown beside the targets, not judged.
	Info bool `json:"info,omitempty"`
}

type results struct {
	Meta       json.RawMessage `json:"meta,omitempty"`
	Systems    []string        `json:"systems"`
	Throughput []throughputRow `json:"throughput"`
	Paced      []pacedRow      `json:"paced"`
	Loaded     []pacedRow      `json:"loaded"`
	Burst      []burstRow      `json:"burst"`
	Memory     []memoryRow     `json:"memory"`
	Storm      *stormRow       `json:"storm,omitempty"`
	Targets    []target        `json:"targets"`
	Warnings   []string        `json:"warnings"`
}

var scenarios = []string{"hot-identity", "hot-browser", "uniform-identity", "uniform-browser"}

var systemOrder = []string{"ceiling", "nginx", "varnish", "isrproxy"}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("report: ")
	rawPath := flag.String("raw", "", "raw records (JSON lines)")
	meta := flag.String("meta", "", "run description (JSON) to include")
	out := flag.String("out", "", "results directory")
	flag.Parse()
	if *rawPath == "" || *out == "" {
		log.Fatal("-raw and -out are required")
	}
	recs, err := readRecords(*rawPath)
	if err != nil {
		log.Fatal(err)
	}
	res := analyse(recs)
	if *meta != "" {
		if !json.Valid([]byte(*meta)) {
			log.Printf("-meta is not valid JSON; left out")
		} else {
			var buf bytes.Buffer
			json.Compact(&buf, []byte(*meta))
			res.Meta = buf.Bytes()
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(*out, "results.json"), append(js, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	var md bytes.Buffer
	writeMarkdown(&md, res)
	if err := os.WriteFile(filepath.Join(*out, "results.md"), md.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	writeText(os.Stdout, res)
	if err := chart(*out, res); err != nil {
		log.Printf("chart: %v", err)
	}
}

func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			log.Printf("%s:%d: %v (skipped)", path, line, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// put sets m[scenario][round][system], making the inner maps as needed.
func put[V any](m map[string]map[int]map[string]V, scenario string, round int, system string, v V) {
	if m[scenario] == nil {
		m[scenario] = map[int]map[string]V{}
	}
	if m[scenario][round] == nil {
		m[scenario][round] = map[string]V{}
	}
	m[scenario][round][system] = v
}

func analyse(recs []record) *results {
	res := &results{Throughput: []throughputRow{}, Paced: []pacedRow{}, Loaded: []pacedRow{}, Burst: []burstRow{}, Memory: []memoryRow{},
		Targets: []target{}, Warnings: []string{}}
	present := map[string]bool{}
	// wrk[scenario][round][system]
	wrk := map[string]map[int]map[string]*wrkResult{}
	paced := map[string]map[int]map[string]*wrkResult{}
	loaded := map[string]map[int]map[string]*wrkResult{} // equal load near capacity
	cpu := map[string]map[int]map[string]float64{}       // µs per request, wrk runs
	var quiet, storm *record
	bursts := map[string][]*burstResult{}
	mem := map[string]map[int]memoryRow{} // mem[system][round]
	for i := range recs {
		r := &recs[i]
		if r.System != "" {
			present[r.System] = true
		}
		switch r.Kind {
		case "wrk", "paced", "loaded":
			if r.Wrk == nil {
				continue
			}
			runs := wrk
			switch {
			case r.Kind == "paced":
				runs = paced
			case r.Kind == "loaded":
				runs = loaded
			default:
				if c := r.cpuPerRequest(); !math.IsNaN(c) {
					put(cpu, r.Scenario, r.Round, r.System, c)
				}
			}
			put(runs, r.Scenario, r.Round, r.System, r.Wrk)
			if e := r.Wrk.errors(); e > 0 {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s on %s round %d: %d errors or non-2xx answers", r.Scenario, r.System, r.Round, e))
			}
		case "check":
			res.Warnings = append(res.Warnings, checkWarnings(r)...)
		case "warm":
			if r.Fill == nil || r.Fill.Errors > 0 || r.Fill.Status["200"] != r.Fill.Requests {
				res.Warnings = append(res.Warnings, fmt.Sprintf("warm-up of %s (%s clients) had errors: %+v", r.System, aeName(r.AE), r.Fill))
			}
		case "burst":
			if r.Burst != nil {
				bursts[r.System] = append(bursts[r.System], r.Burst)
			}
		case "memory":
			row := memoryRow{System: r.System, Pages: r.Pages, BeforeBytes: r.BeforeBytes, AfterBytes: r.AfterBytes}
			if r.Pages > 0 {
				row.BytesPerPage = (r.AfterBytes - r.BeforeBytes) / float64(r.Pages)
				row.StoreBytesPerPage = (r.StoreAfter - r.StoreBefore) / float64(r.Pages)
			}
			if r.Fill != nil {
				row.FillErrors = r.Fill.Errors + (r.Fill.Requests - r.Fill.Status["200"])
			}
			if row.FillErrors > 0 {
				res.Warnings = append(res.Warnings, fmt.Sprintf("memory fill of %s round %d: %d failed requests", r.System, r.Round, row.FillErrors))
			}
			if mem[r.System] == nil {
				mem[r.System] = map[int]memoryRow{}
			}
			mem[r.System][r.Round] = row
		case "storm-quiet":
			quiet = r
		case "storm":
			storm = r
		}
	}
	for _, s := range systemOrder {
		if present[s] {
			res.Systems = append(res.Systems, s)
		}
	}

	// Throughput: medians and same-round ratios against the ceiling.
	for _, sc := range scenarios {
		rounds := sortedKeys(wrk[sc])
		for _, sys := range res.Systems {
			row := throughputRow{Scenario: sc, System: sys}
			var p99Ratios, mbps, bpr, cpus, cpuRatios []float64
			for _, rd := range rounds {
				w := wrk[sc][rd][sys]
				if w == nil {
					continue
				}
				row.Rounds++
				row.Errors += w.errors()
				row.RPSByRound = append(row.RPSByRound, w.RPS)
				row.P99MsByRound = append(row.P99MsByRound, w.P99/1000)
				mbps = append(mbps, float64(w.Bytes)/w.DurationS/1e6)
				if w.Requests > 0 {
					bpr = append(bpr, float64(w.Bytes)/float64(w.Requests))
				}
				if c := wrk[sc][rd]["ceiling"]; c != nil && c.RPS > 0 && c.P99 > 0 {
					row.RatioByRound = append(row.RatioByRound, w.RPS/c.RPS)
					p99Ratios = append(p99Ratios, w.P99/c.P99)
				}
				if c, ok := cpu[sc][rd][sys]; ok {
					cpus = append(cpus, c)
					if cc, ok := cpu[sc][rd]["ceiling"]; ok && cc > 0 {
						cpuRatios = append(cpuRatios, c/cc)
					}
				}
			}
			if row.Rounds == 0 {
				continue
			}
			row.RPS = median(row.RPSByRound)
			row.P99Ms = median(row.P99MsByRound)
			row.RPSRatio = median(row.RatioByRound)
			row.P99Ratio = median(p99Ratios)
			row.MBytesPerSec = median(mbps)
			row.BytesPerReply = median(bpr)
			row.CPUUs, row.CPURatio = orZero(median(cpus)), orZero(median(cpuRatios))
			res.Throughput = append(res.Throughput, row)
		}
	}
	capacity := map[string]map[string]float64{}
	for _, row := range res.Throughput {
		if capacity[row.Scenario] == nil {
			capacity[row.Scenario] = map[string]float64{}
		}
		capacity[row.Scenario][row.System] = row.RPS
	}
	res.Paced = pacedRows(paced, res.Systems, capacity)
	res.Loaded = pacedRows(loaded, res.Systems, capacity)

	for _, sys := range res.Systems {
		bs := bursts[sys]
		if len(bs) == 0 {
			continue
		}
		row := burstRow{System: sys, Rounds: len(bs)}
		for _, b := range bs {
			row.OriginRequests = append(row.OriginRequests, b.OriginRequests)
			row.OriginRequestsMax = max(row.OriginRequestsMax, b.OriginRequests)
			row.LastMs = append(row.LastMs, b.LastMs)
			row.LastMsMax = max(row.LastMsMax, b.LastMs)
			row.OK += b.OK
			row.Answers += b.N
			row.OriginDelayMs = b.OriginDelayMs
			if b.OK != b.N {
				res.Warnings = append(res.Warnings, fmt.Sprintf("burst on %s: %d of %d answers were not a 200 page (first error: %s)", sys, b.N-b.OK, b.N, b.FirstErr))
			}
		}
		row.LastMsMedian = median(row.LastMs)
		res.Burst = append(res.Burst, row)
	}
	for _, sys := range res.Systems {
		rounds := sortedKeys(mem[sys])
		if len(rounds) == 0 {
			continue
		}
		first := mem[sys][rounds[0]]
		row := memoryRow{System: sys, Pages: first.Pages, Rounds: len(rounds), BeforeBytes: first.BeforeBytes, AfterBytes: first.AfterBytes}
		var own []float64
		for _, rd := range rounds {
			m := mem[sys][rd]
			row.ByRound = append(row.ByRound, m.BytesPerPage)
			own = append(own, m.StoreBytesPerPage)
			row.FillErrors += m.FillErrors
		}
		row.BytesPerPage, row.StoreBytesPerPage = median(row.ByRound), median(own)
		res.Memory = append(res.Memory, row)
	}
	if storm != nil && storm.Storm != nil {
		st := storm.Storm
		row := &stormRow{Pages: st.Pages, Acked: st.Acked, Errors: st.Errors, Stale: st.Stale,
			Seconds: st.Seconds, FloorSeconds: st.FloorSeconds, FloorRatio: st.FloorRatio,
			AckP99Ms: st.AckP99Ms, FirstErr: st.FirstErr, LoadSeconds: storm.LoadSeconds,
			OriginDelayMs: st.OriginDelayMs}
		if storm.Wrk != nil {
			row.StormP99Ms = storm.Wrk.P99 / 1000
			row.StormRPS = storm.Wrk.RPS
			row.LoadErrors = storm.Wrk.errors()
		}
		if quiet != nil && quiet.Wrk != nil {
			row.QuietP99Ms = quiet.Wrk.P99 / 1000
			row.QuietRPS = quiet.Wrk.RPS
			if row.QuietP99Ms > 0 && row.StormP99Ms > 0 {
				row.P99Ratio = row.StormP99Ms / row.QuietP99Ms
			}
		}
		if st.Seconds > storm.LoadSeconds && storm.LoadSeconds > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the storm (%.1fs) outlasted its load (%.0fs): its p99 covers only part of it", st.Seconds, storm.LoadSeconds))
		}
		if st.Errors > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("storm: %d errors (first: %s)", st.Errors, st.FirstErr))
		}
		res.Storm = row
	}
	res.Targets = targets(res, wrk, mem)
	return res
}

func aeName(ae string) string {
	if ae == "" {
		return "identity"
	}
	return "browser"
}

func checkWarnings(r *record) []string {
	f := r.Fill
	if f == nil {
		return []string{fmt.Sprintf("check of %s (%s clients) gave no result", r.System, aeName(r.AE))}
	}
	var w []string
	who := fmt.Sprintf("check of %s (%s clients)", r.System, aeName(r.AE))
	if f.Errors > 0 || f.Status["200"] != f.Requests {
		w = append(w, fmt.Sprintf("%s: %d errors, statuses %v, first error %q", who, f.Errors, f.Status, f.FirstErr))
	}
	if f.Versioned != f.Requests-f.Errors {
		w = append(w, fmt.Sprintf("%s: %d of %d bodies lack the version marker", who, f.Requests-f.Errors-f.Versioned, f.Requests-f.Errors))
	}
	if r.AE != "" && f.Gzip != f.Requests-f.Errors {
		w = append(w, fmt.Sprintf("%s: only %d of %d answers gzipped", who, f.Gzip, f.Requests-f.Errors))
	}
	if r.AE == "" && f.Gzip > 0 {
		w = append(w, fmt.Sprintf("%s: %d gzip answers to clients that did not ask", who, f.Gzip))
	}
	if r.System != "ceiling" && f.XCache["HIT"] != f.Requests-f.Errors {
		w = append(w, fmt.Sprintf("%s: not all stored after warm-up, X-Cache %v", who, f.XCache))
	}
	return w
}

func sortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// targets evaluates isrproxy against the performance targets (docs/performance.md#targets). Nothing here fails
// the run: the machine is noisy, and the numbers are for people.
func targets(res *results, wrk map[string]map[int]map[string]*wrkResult, mem map[string]map[int]memoryRow) []target {
	ts := []target{}
	if !slices.Contains(res.Systems, "isrproxy") {
		return ts
	}
	add := func(name string, v float64, op string, t float64, unit string) {
		if math.IsNaN(v) {
			return
		}
		v = round(v, 3) // judged as shown
		met := v <= t
		if op == ">=" {
			met = v >= t
		}
		ts = append(ts, target{Name: name, Value: v, Op: op, Target: t, Met: met, Unit: unit})
	}
	info := func(name string, v float64, op string, t float64, unit string) {
		n := len(ts)
		add(name, v, op, t, unit)
		if len(ts) > n {
			ts[n].Info = true
		}
	}
	// Same-round ratios against Varnish and nginx: browsers (gzip) are
	// held to Varnish's rate, clients without gzip to nginx's; every
	// client's p99 to 1.5× Varnish's and to nginx's, compared at equal
	// load: near capacity when the peer carried it, else the light one.
	// At saturation each system answers at its own rate (isrproxy at more
	// than its peers), so the p99 there compares unequal loads: shown, not
	// judged.
	for _, sc := range scenarios {
		var rps, p99Varnish, p99Nginx, cpuCeil []float64
		peer := "nginx"
		if strings.HasSuffix(sc, "-browser") {
			peer = "varnish"
		}
		for _, rd := range sortedKeys(wrk[sc]) {
			m := wrk[sc][rd]
			isr := m["isrproxy"]
			if isr == nil {
				continue
			}
			if p := m[peer]; p != nil && p.RPS > 0 {
				rps = append(rps, isr.RPS/p.RPS)
			}
			if v := m["varnish"]; v != nil && v.P99 > 0 {
				p99Varnish = append(p99Varnish, isr.P99/v.P99)
			}
			if n := m["nginx"]; n != nil && n.P99 > 0 {
				p99Nginx = append(p99Nginx, isr.P99/n.P99)
			}
		}
		for _, row := range res.Throughput {
			if row.Scenario == sc && row.System == "isrproxy" && row.CPURatio > 0 {
				cpuCeil = append(cpuCeil, row.CPURatio)
			}
		}
		name := map[string]string{"nginx": "nginx", "varnish": "Varnish"}[peer]
		add(sc+": r/s vs "+name, median(rps), ">=", 1.1, "×")
		for _, p := range []struct {
			peer, name string
			limit      float64
		}{{"varnish", "Varnish", 1.5}, {"nginx", "nginx", 1.0}} {
			load, v := equalLoadP99(res, sc, p.peer)
			add(sc+": p99 vs "+p.name+" at equal load ("+load+")", v, "<=", p.limit, "×")
		}
		info(sc+": p99 vs Varnish at saturation", median(p99Varnish), "<=", 1.5, "×")
		info(sc+": p99 vs nginx at saturation", median(p99Nginx), "<=", 1.0, "×")
		add(sc+": CPU per hit vs the ceiling", median(cpuCeil), "<=", 0.8, "×")
	}
	// Memory: the median of same-round ratios, like the rest.
	memRatio := func(peer string) float64 {
		var rs []float64
		for rd, isr := range mem["isrproxy"] {
			if p, ok := mem[peer][rd]; ok && p.BytesPerPage > 0 {
				rs = append(rs, isr.BytesPerPage/p.BytesPerPage)
			}
		}
		return median(rs)
	}
	add("memory per page vs Varnish", memRatio("varnish"), "<=", 0.9, "×")
	add("memory per page vs nginx", memRatio("nginx"), "<=", 0.3, "×")
	floorMs := -1.0 // the ceiling answering the same burst from memory
	for _, b := range res.Burst {
		if b.System == "ceiling" {
			floorMs = b.LastMsMedian
		}
	}
	for _, b := range res.Burst {
		if b.System != "isrproxy" {
			continue
		}
		add("cold burst: origin requests (worst round)", float64(b.OriginRequestsMax), "<=", 1, "")
		add("cold burst: time to last answer (median)", b.LastMsMedian, "<=", b.OriginDelayMs+25, "ms")
		if floorMs >= 0 {
			add("cold burst: time to last answer beyond the ceiling's stored-page burst", b.LastMsMedian-floorMs, "<=", b.OriginDelayMs+25, "ms")
		}
	}
	if s := res.Storm; s != nil {
		add("storm: hit p99 during vs quiet", s.P99Ratio, "<=", 1.2, "×")
		add("storm: stale answers after an ack", float64(s.Stale), "<=", 0, "")
		add("storm: duration vs the floor", s.FloorRatio, "<=", 1.1, "×")
	}
	return ts
}

// atCapacity is the share of a system's rate at saturation from which a
// run at equal load counts as saturated too: the usual 80% line of a busy
// server, past which its answers wait mostly in its queues (Varnish
// gunzipping for plain clients came at 84-87% of its saturated rate, its
// median latency four times isrproxy's). Below it the system carried the
// load; that it answered a little less than another (each connection
// waits for its answer, so a slower answer means fewer requests) only
// makes its load lighter.
const atCapacity = 0.8

// equalLoadP99 is isrproxy's p99 over peer's in scenario sc at the
// highest equal load the peer carried ("near capacity" or "light"), or
// NaN when neither was measured.
func equalLoadP99(res *results, sc, peer string) (string, float64) {
	for _, level := range []struct {
		name string
		rows []pacedRow
	}{{"near capacity", res.Loaded}, {"light", res.Paced}} {
		for _, r := range level.rows {
			if r.Scenario != sc || r.System != "isrproxy" {
				continue
			}
			v := r.P99VsNginx
			if peer == "varnish" {
				v = r.P99VsVarnish
			}
			if v > 0 {
				return level.name, v
			}
		}
	}
	return "", math.NaN()
}

// pacedRows sums up the runs at equal load, with isrproxy's p99 as
// same-round ratios to Varnish's and nginx's. A system whose median rate
// reached atCapacity of its rate at saturation (capacity[scenario][system],
// the wrk runs' median) is Short, and no ratio is taken against it.
func pacedRows(paced map[string]map[int]map[string]*wrkResult, systems []string, capacity map[string]map[string]float64) []pacedRow {
	rows := []pacedRow{}
	for _, sc := range scenarios {
		for _, sys := range systems {
			row := pacedRow{Scenario: sc, System: sys}
			var rps, p50, p99, p999, vsVarnish, vsNginx []float64
			for _, rd := range sortedKeys(paced[sc]) {
				w := paced[sc][rd][sys]
				if w == nil {
					continue
				}
				row.Rounds++
				row.Errors += w.errors()
				rps, p50 = append(rps, w.RPS), append(p50, w.P50/1000)
				p99, p999 = append(p99, w.P99/1000), append(p999, w.P999/1000)
				if sys != "isrproxy" {
					continue
				}
				if v := paced[sc][rd]["varnish"]; v != nil && v.P99 > 0 {
					vsVarnish = append(vsVarnish, w.P99/v.P99)
				}
				if n := paced[sc][rd]["nginx"]; n != nil && n.P99 > 0 {
					vsNginx = append(vsNginx, w.P99/n.P99)
				}
			}
			if row.Rounds == 0 {
				continue
			}
			row.RPS, row.P50Ms, row.P99Ms, row.P999Ms = median(rps), median(p50), median(p99), median(p999)
			if c, ok := capacity[sc][sys]; ok && row.RPS >= atCapacity*c {
				row.Short = true
			}
			row.P99VsVarnish, row.P99VsNginx = orZero(median(vsVarnish)), orZero(median(vsNginx))
			rows = append(rows, row)
		}
		// No ratio against a peer that could not carry the load.
		short := map[string]bool{}
		for _, r := range rows {
			if r.Scenario == sc {
				short[r.System] = r.Short
			}
		}
		for i := range rows {
			if rows[i].Scenario == sc && rows[i].System == "isrproxy" {
				if short["varnish"] {
					rows[i].P99VsVarnish = 0
				}
				if short["nginx"] {
					rows[i].P99VsNginx = 0
				}
			}
		}
	}
	return rows
}

// fmtRounds is a list of per-round figures, "8288 · 7626 · 7842".
func fmtRounds(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, " · ")
}

// fmtRPS is the row's rate, with a * when the system could not carry the
// load offered.
func fmtRPS(r pacedRow) string {
	if r.Short {
		return fmt.Sprintf("%.0f*", r.RPS)
	}
	return fmt.Sprintf("%.0f", r.RPS)
}

// orZero is v, or 0 for NaN (no value: omitted from the JSON).
func orZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func round(v float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}

// nanIfZero is v, or NaN (shown as "—") for 0: no value.
func nanIfZero(v float64) float64 {
	if v == 0 {
		return math.NaN()
	}
	return v
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

func writeText(w io.Writer, res *results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nHit throughput (median over rounds; ratios are medians of same-round ratios to the ceiling)")
	fmt.Fprintln(tw, "scenario\tsystem\tr/s\t× ceiling\tp99 ms\tp99 × ceiling\tCPU µs/req\tCPU × ceiling\tKiB/reply\terrors\t")
	for _, r := range res.Throughput {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%.2f\t%s\t%.1f\t%s\t%.1f\t%d\t\n", r.Scenario, r.System, r.RPS,
			fmtRatio(r.RPSRatio), r.P99Ms, fmtRatio(r.P99Ratio), r.CPUUs, fmtRatio(nanIfZero(r.CPURatio)), r.BytesPerReply/1024, r.Errors)
	}
	tw.Flush()
	for _, level := range []struct {
		title string
		rows  []pacedRow
	}{
		{"The tail at equal load, light (every system offered the same rate; medians over rounds)", res.Paced},
		{"The tail at equal load, near capacity (r/s*: at the system's capacity, it could not carry the load; no ratio taken against it)", res.Loaded},
	} {
		if len(level.rows) == 0 {
			continue
		}
		fmt.Fprintln(w, "\n"+level.title)
		fmt.Fprintln(tw, "scenario\tsystem\tr/s\tp50 ms\tp99 ms\tp99.9 ms\tp99 × Varnish\tp99 × nginx\terrors\t")
		for _, r := range level.rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%s\t%d\t\n", r.Scenario, r.System, fmtRPS(r), r.P50Ms, r.P99Ms, r.P999Ms,
				fmtRatio(nanIfZero(r.P99VsVarnish)), fmtRatio(nanIfZero(r.P99VsNginx)), r.Errors)
		}
		tw.Flush()
	}
	if len(res.Burst) > 0 {
		fmt.Fprintln(w, "\nCold burst (simultaneous requests for one cold page)")
		fmt.Fprintln(tw, "system\torigin requests by round\tlast answer ms (median)\tlast ms (worst)\tOK answers\t")
		for _, b := range res.Burst {
			fmt.Fprintf(tw, "%s\t%v\t%.1f\t%.1f\t%d/%d\t\n", b.System, b.OriginRequests, b.LastMsMedian, b.LastMsMax, b.OK, b.Answers)
		}
		tw.Flush()
	}
	if len(res.Memory) > 0 {
		fmt.Fprintln(w, "\nMemory per stored page")
		fmt.Fprintln(tw, "system\tpages a round\tbytes/page (median)\tby round\tits own count of stored bytes/page\t")
		for _, m := range res.Memory {
			own := "—"
			if m.StoreBytesPerPage > 0 {
				own = fmt.Sprintf("%.0f", m.StoreBytesPerPage)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t\n", m.System, m.Pages, m.BytesPerPage, fmtRounds(m.ByRound), own)
		}
		tw.Flush()
	}
	if s := res.Storm; s != nil {
		fmt.Fprintln(w, "\nRevalidation storm (isrproxy)")
		fmt.Fprintf(w, "  %d pages, %d acked, %d errors, %d stale answers after an ack\n", s.Pages, s.Acked, s.Errors, s.Stale)
		fmt.Fprintf(w, "  took %.2fs, floor %.2fs (%.2f×), ack p99 %.1f ms\n", s.Seconds, s.FloorSeconds, s.FloorRatio, s.AckP99Ms)
		fmt.Fprintf(w, "  hit p99 quiet %.2f ms, during the storm %.2f ms (%s); r/s %.0f → %.0f\n",
			s.QuietP99Ms, s.StormP99Ms, fmtRatio(s.P99Ratio), s.QuietRPS, s.StormRPS)
	}
	if len(res.Targets) > 0 {
		fmt.Fprintln(w, "\nisrproxy against the performance targets")
		for _, t := range res.Targets {
			mark := "met "
			switch {
			case t.Info:
				mark = "info"
			case !t.Met:
				mark = "MISS"
			}
			fmt.Fprintf(w, "  [%s] %-62s %8.3f%s  (target %s %g%s)\n", mark, t.Name, t.Value, t.Unit, t.Op, t.Target, t.Unit)
		}
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings")
		for _, s := range res.Warnings {
			fmt.Fprintln(w, "  - "+s)
		}
	}
}

func writeMarkdown(w io.Writer, res *results) {
	var meta struct {
		Date    string `json:"date"`
		Machine struct {
			CPU   string `json:"cpu"`
			Cores int    `json:"cores"`
		} `json:"machine"`
		Knobs struct {
			Quick    int    `json:"quick"`
			Rounds   int    `json:"rounds"`
			Duration string `json:"duration"`
			Conns    int    `json:"conns"`
			Delay    string `json:"origin_delay"`

			PacedRounds   int    `json:"paced_rounds"`
			PacedDuration string `json:"paced_duration"`
			PaceMs        int    `json:"pace_ms"`
			LoadedConns   int    `json:"loaded_conns"`
			LoadedPaceMs  int    `json:"loaded_pace_ms"`
		} `json:"knobs"`
		Versions map[string]string `json:"versions"`
	}
	if res.Meta != nil {
		json.Unmarshal(res.Meta, &meta)
	}
	fmt.Fprintf(w, "# Benchmark results\n\n")
	quick := ""
	if meta.Knobs.Quick == 1 {
		quick = " (QUICK smoke run: not for publication)"
	}
	var vs []string
	for _, k := range slices.Sorted(maps.Keys(meta.Versions)) {
		if meta.Versions[k] != "" {
			vs = append(vs, k+" "+meta.Versions[k])
		}
	}
	fmt.Fprintf(w, "%s, %s, %d cores%s. %d rounds of %s, %d connections, origin delay %s. Versions: %s.\n\n",
		meta.Date, meta.Machine.CPU, meta.Machine.Cores, quick, meta.Knobs.Rounds, meta.Knobs.Duration,
		meta.Knobs.Conns, meta.Knobs.Delay, strings.Join(vs, ", "))
	fmt.Fprintf(w, "![r/s per system and scenario](chart.png)\n\n")
	fmt.Fprintf(w, "| scenario | system | r/s | × ceiling | p99 ms | p99 × ceiling | CPU µs per request | CPU × ceiling |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range res.Throughput {
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.2f | %s | %.1f | %s |\n", r.Scenario, r.System, r.RPS, fmtRatio(r.RPSRatio), r.P99Ms, fmtRatio(r.P99Ratio),
			r.CPUUs, fmtRatio(nanIfZero(r.CPURatio)))
	}
	for _, level := range []struct {
		title string
		rows  []pacedRow
	}{
		{fmt.Sprintf("The tail at equal load, light (%d rounds of %s, %d connections, %d ms between an answer and the next request on each)",
			meta.Knobs.PacedRounds, meta.Knobs.PacedDuration, meta.Knobs.Conns, meta.Knobs.PaceMs), res.Paced},
		{fmt.Sprintf("The tail at equal load, near capacity (%d rounds of %s, %d connections, %d ms between an answer and the next request on each; "+
			"r/s\\*: at the system's capacity, it could not carry the load, and no ratio is taken against it)",
			meta.Knobs.PacedRounds, meta.Knobs.PacedDuration, meta.Knobs.LoadedConns, meta.Knobs.LoadedPaceMs), res.Loaded},
	} {
		if len(level.rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n\n", level.title)
		fmt.Fprintf(w, "| scenario | system | r/s | p50 ms | p99 ms | p99.9 ms | p99 × Varnish | p99 × nginx |\n|---|---|--:|--:|--:|--:|--:|--:|\n")
		for _, r := range level.rows {
			fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.2f | %.2f | %s | %s |\n", r.Scenario, r.System, strings.ReplaceAll(fmtRPS(r), "*", "\\*"),
				r.P50Ms, r.P99Ms, r.P999Ms, fmtRatio(nanIfZero(r.P99VsVarnish)), fmtRatio(nanIfZero(r.P99VsNginx)))
		}
	}
	if len(res.Burst) > 0 {
		fmt.Fprintf(w, "\n| cold burst | origin requests by round | last answer ms (median) | worst |\n|---|---|--:|--:|\n")
		for _, b := range res.Burst {
			fmt.Fprintf(w, "| %s | %v | %.1f | %.1f |\n", b.System, b.OriginRequests, b.LastMsMedian, b.LastMsMax)
		}
	}
	if len(res.Memory) > 0 {
		fmt.Fprintf(w, "\n| memory | pages a round | bytes per stored page (median) | by round | its own count of stored bytes per page |\n|---|--:|--:|--:|--:|\n")
		for _, m := range res.Memory {
			own := "—"
			if m.StoreBytesPerPage > 0 {
				own = fmt.Sprintf("%.0f", m.StoreBytesPerPage)
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s |\n", m.System, m.Pages, m.BytesPerPage, fmtRounds(m.ByRound), own)
		}
	}
	if s := res.Storm; s != nil {
		fmt.Fprintf(w, "\nRevalidation storm: %d pages in %.2fs (floor %.2fs, %.2f×), %d stale answers after an ack, hit p99 %.2f ms quiet → %.2f ms during (%s).\n",
			s.Pages, s.Seconds, s.FloorSeconds, s.FloorRatio, s.Stale, s.QuietP99Ms, s.StormP99Ms, fmtRatio(s.P99Ratio))
	}
	if len(res.Targets) > 0 {
		fmt.Fprintf(w, "\n| isrproxy target | value | target | met |\n|---|--:|--:|:-:|\n")
		for _, t := range res.Targets {
			met := "yes"
			switch {
			case t.Info:
				met = "(shown, not judged)"
			case !t.Met:
				met = "**no**"
			}
			fmt.Fprintf(w, "| %s | %.3f%s | %s %g%s | %s |\n", t.Name, t.Value, t.Unit, t.Op, t.Target, t.Unit, met)
		}
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings:\n\n")
		for _, s := range res.Warnings {
			fmt.Fprintf(w, "- %s\n", s)
		}
	}
}

// chart draws median r/s per system (bars) for each scenario with gnuplot.
func chart(dir string, res *results) error {
	if len(res.Throughput) == 0 {
		return fmt.Errorf("no throughput results")
	}
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		return fmt.Errorf("gnuplot is not installed (apt-get install gnuplot-nox): no chart")
	}
	rps := map[string]map[string]float64{}
	ratio := map[string]map[string]float64{}
	for _, r := range res.Throughput {
		if rps[r.Scenario] == nil {
			rps[r.Scenario], ratio[r.Scenario] = map[string]float64{}, map[string]float64{}
		}
		rps[r.Scenario][r.System] = r.RPS
		ratio[r.Scenario][r.System] = r.RPSRatio
	}
	tmp, err := os.MkdirTemp("", "isrbench-chart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// No header line: gnuplot would count it as a row of the histogram.
	var dat bytes.Buffer
	for _, sc := range scenarios {
		if rps[sc] == nil {
			continue
		}
		fmt.Fprintf(&dat, "%s", sc)
		for _, s := range res.Systems {
			v, ok := rps[sc][s]
			if !ok {
				fmt.Fprint(&dat, " 0")
				continue
			}
			fmt.Fprintf(&dat, " %.0f", v)
		}
		fmt.Fprintln(&dat)
	}
	datPath := filepath.Join(tmp, "chart.dat")
	if err := os.WriteFile(datPath, dat.Bytes(), 0o644); err != nil {
		return err
	}
	var meta struct {
		Date  string `json:"date"`
		Knobs struct {
			Quick    int    `json:"quick"`
			Rounds   int    `json:"rounds"`
			Duration string `json:"duration"`
			Conns    int    `json:"conns"`
		} `json:"knobs"`
		Machine struct {
			Cores int `json:"cores"`
		} `json:"machine"`
	}
	if res.Meta != nil {
		json.Unmarshal(res.Meta, &meta)
	}
	sub := fmt.Sprintf("median of %d rounds × %s, %d connections, %d cores shared with wrk, %s",
		meta.Knobs.Rounds, meta.Knobs.Duration, meta.Knobs.Conns, meta.Machine.Cores, meta.Date)
	if meta.Knobs.Quick == 1 {
		sub += " — QUICK run"
	}
	colors := map[string]string{"ceiling": "#9e9e9e", "nginx": "#2e7d32", "varnish": "#1565c0", "isrproxy": "#e65100"}
	var plot []string
	for i, s := range res.Systems {
		src := "''"
		if i == 0 {
			src = fmt.Sprintf("'%s'", datPath)
		}
		col := fmt.Sprintf("%d", i+2)
		if i == 0 {
			plot = append(plot, fmt.Sprintf("%s using %s:xtic(1) title '%s' lc rgb '%s'", src, col, s, colors[s]))
		} else {
			plot = append(plot, fmt.Sprintf("%s using %s title '%s' lc rgb '%s'", src, col, s, colors[s]))
		}
	}
	// Ratio labels above the bars: x of bar j in cluster i is
	// i + (j - (n-1)/2) * width, width = 1/(n+gap).
	n := len(res.Systems)
	var labels []string
	for ci, sc := range scenarios {
		if rps[sc] == nil {
			continue
		}
		for j, s := range res.Systems {
			v, ok := rps[sc][s]
			if !ok || s == "ceiling" {
				continue
			}
			x := float64(ci) + (float64(j)-float64(n-1)/2)/float64(n+1)
			labels = append(labels, fmt.Sprintf("set label '%.2f' at %f,%f center offset 0,0.7 font ',8'", ratio[sc][s], x, v))
		}
	}
	script := fmt.Sprintf(`set terminal pngcairo size 1100,600 font "sans,10"
set output '%s'
set title "Hit throughput per scenario (bars: median r/s; labels: same-round ratio to the Go ceiling)\n{/*0.85 %s}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.95
set ylabel "requests per second"
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set grid ytics
set key outside top center horizontal
set xtics nomirror
set xrange [-0.6:%.1f]
%s
plot %s
`, filepath.Join(dir, "chart.png"), sub, float64(len(scenarios))-0.4, strings.Join(labels, "\n"), strings.Join(plot, ", \\\n     "))
	cmd := exec.Command(gp)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("gnuplot: %v: %s", err, out)
	}
	return nil
}
