// Command snapshot measures isrproxy's warm start on the real binary
// (docs/performance.md#snapshots): it writes a snapshot of -pages pages of
// 16 KiB HTML, gzip-stored, starts isrproxy on it, and reports how long
// the load took, the peak resident memory after it, and the hit latency
// while a snapshot is being written against the latency between writes.
// Every request goes to 127.0.0.1.
//
//	go build -o /tmp/isrproxy . && go run ./bench/snapshot -bin /tmp/isrproxy
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/internal/benchhtml"
	"github.com/isrproxy/isrproxy/snapshot"
)

func main() {
	pages := flag.Int("pages", 100_000, "pages in the snapshot")
	bin := flag.String("bin", "", "the isrproxy binary (go build -o … .)")
	budget := flag.String("cache", "1GiB", "CACHE_MAX_BYTES")
	rate := flag.Int("rate", 2000, "hits per second sent while measuring latency")
	secs := flag.Int("seconds", 40, "how long to measure latency")
	interval := flag.String("interval", "10s", "SNAPSHOT_INTERVAL while measuring latency")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-bin is required")
	}
	dir, err := os.MkdirTemp("", "isrproxy-snapshot-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "isrproxy.snapshot")

	store, err := cache.New(cache.Config{MaxBytes: 4 << 30})
	if err != nil {
		log.Fatal(err)
	}
	fillStore(store, *pages)
	w, err := snapshot.Write(path, store)
	if err != nil {
		log.Fatal(err)
	}
	store.Close()
	fmt.Printf("write (in-process): %d pages, %.1f MB in %.2f s: %.0f pages/s, %.0f MB/s\n",
		w.Pages, float64(w.Bytes)/1e6, w.Took.Seconds(), float64(w.Pages)/w.Took.Seconds(), float64(w.Bytes)/1e6/w.Took.Seconds())

	p := start(*bin, path, *budget, *interval)
	defer p.stop()
	loaded := p.wait("snapshot loaded")
	serving := p.wait("isrproxy serving")
	sec, _ := loaded["seconds"].(float64)
	n, _ := loaded["pages"].(float64)
	fmt.Printf("load (real binary, CACHE_MAX_BYTES=%s): %.0f pages, %.1f MB in %.2f s: %.0f pages/s, %.0f MB/s\n",
		*budget, n, float64(w.Bytes)/1e6, sec, n/sec, float64(w.Bytes)/1e6/sec)
	cpu := p.cpu()
	fmt.Printf("  CPU time of the process up to then: %.2f s: %.0f MB per CPU second\n", cpu, float64(w.Bytes)/1e6/cpu)
	fmt.Printf("peak RSS after the load: %.0f MiB (VmHWM)\n", float64(p.hwm())/(1<<20))

	listen := serving["listen"].(string)
	lat := measure(listen, *pages, *rate, time.Duration(*secs)*time.Second)
	windows := p.writeWindows()
	var quiet, writing []time.Duration
	for _, s := range lat {
		if inWindow(s.at, windows) {
			writing = append(writing, s.took)
		} else {
			quiet = append(quiet, s.took)
		}
	}
	fmt.Printf("hits at %d/s for %d s, %d snapshot writes (%s):\n", *rate, *secs, len(windows), describe(windows))
	fmt.Printf("  quiet:   %6d hits, p50 %v, p99 %v\n", len(quiet), pct(quiet, 50), pct(quiet, 99))
	fmt.Printf("  writing: %6d hits, p50 %v, p99 %v\n", len(writing), pct(writing, 50), pct(writing, 99))
	if q := pct(quiet, 99); q > 0 {
		fmt.Printf("  p99 while writing / quiet: %.2f×\n", float64(pct(writing, 99))/float64(q))
	}
	fmt.Printf("peak RSS over the run: %.0f MiB (VmHWM)\n", float64(p.hwm())/(1<<20))
}

// fillStore stores n pages of 16 KiB HTML, gzipped, as a CMS sends them.
func fillStore(s *cache.Store, n int) {
	const bodies = 64
	type body struct {
		plain int
		gz    []byte
	}
	var bs [bodies]body
	for i := range bodies {
		bs[i].plain, bs[i].gz = benchhtml.Gzipped(i)
	}
	now := time.Now()
	for i := range n {
		bd := bs[i%bodies]
		h := http.Header{
			"Content-Type":     {"text/html; charset=UTF-8"},
			"Content-Encoding": {"gzip"},
			"Content-Length":   {strconv.Itoa(len(bd.gz))},
			"Vary":             {"Accept-Encoding"},
			"Etag":             {`W/"` + strconv.Itoa(i) + `"`},
			"Last-Modified":    {"Mon, 02 Jan 2026 15:04:05 GMT"},
		}
		// Each page its own body, as on a real site (shared bodies would
		// make the load look lighter than it is).
		p := &cache.Page{
			Key:    cache.Key{Host: "www.example.com", Path: fmt.Sprintf("/blog/post-%d/", i)},
			Status: 200, Header: cache.FieldsOf(h), Body: bytes.Clone(bd.gz), Gzip: true, PlainLen: int64(bd.plain),
			Tags: []string{"post-" + strconv.Itoa(i)}, StoredAt: now, Gen: s.NextGen(), ETag: `W/"` + strconv.Itoa(i) + `"`,
		}
		if r := s.Put(p); r != cache.Stored {
			log.Fatalf("page %d: %v", i, r)
		}
	}
}

// proc is the isrproxy process and its log.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []logLine
	cond  *sync.Cond
}

type logLine struct {
	at time.Time
	m  map[string]any
}

func start(bin, path, budget, interval string) *proc {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"ORIGIN_URL=http://127.0.0.1:9", "REVALIDATE_SECRET=bench-secret-0123456789",
		"LISTEN_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "LOG_LEVEL=info", "LOG_FORMAT=json",
		"CACHE_MAX_BYTES="+budget, "SNAPSHOT_PATH="+path, "SNAPSHOT_INTERVAL="+interval)
	out, err := cmd.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	p := &proc{cmd: cmd}
	p.cond = sync.NewCond(&p.mu)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			p.mu.Lock()
			p.lines = append(p.lines, logLine{time.Now(), m})
			p.cond.Broadcast()
			p.mu.Unlock()
		}
	}()
	return p
}

// wait returns the first log line whose msg is msg.
func (p *proc) wait(msg string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for _, l := range p.lines {
			if l.m["msg"] == msg {
				return l.m
			}
		}
		p.cond.Wait()
	}
}

// writeWindows returns the [start, end] of each snapshot write logged.
func (p *proc) writeWindows() [][2]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ws [][2]time.Time
	var open time.Time
	for _, l := range p.lines {
		switch l.m["msg"] {
		case "writing snapshot":
			open = l.at
		case "snapshot written":
			if !open.IsZero() {
				ws = append(ws, [2]time.Time{open, l.at})
				open = time.Time{}
			}
		}
	}
	return ws
}

func (p *proc) hwm() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpu is the process's user and system time so far, in seconds.
func (p *proc) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ is 100 on Linux)
}

func (p *proc) stop() {
	p.cmd.Process.Kill() // the process this program started, by its PID
	p.cmd.Wait()
}

type sample struct {
	at   time.Time
	took time.Duration
}

// measure sends rate hits a second for d, evenly spaced, to random pages.
func measure(listen string, pages, rate int, d time.Duration) []sample {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var samples []sample
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	end := time.Now().Add(d)
	sem := make(chan struct{}, 256)
	for at := time.Now(); at.Before(end); at = at.Add(interval) {
		time.Sleep(time.Until(at))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodGet, "http://"+listen+fmt.Sprintf("/blog/post-%d/", rand.IntN(pages)), nil)
			req.Host = "www.example.com"
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Header.Get("X-Cache") != "HIT" {
				log.Fatalf("not a hit: %s", resp.Header.Get("X-Cache"))
			}
			mu.Lock()
			samples = append(samples, sample{start, time.Since(start)})
			mu.Unlock()
		}()
	}
	wg.Wait()
	return samples
}

func inWindow(t time.Time, ws [][2]time.Time) bool {
	for _, w := range ws {
		if !t.Before(w[0]) && !t.After(w[1]) {
			return true
		}
	}
	return false
}

func describe(ws [][2]time.Time) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%.2f s", w[1].Sub(w[0]).Seconds()))
	}
	return strings.Join(parts, ", ")
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
