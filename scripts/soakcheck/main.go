// Command soakcheck is the driver and checker of scripts/soak.sh. It uses
// the standard library only, and talks to 127.0.0.1 only.
//
//	soakcheck freeport                       print a free TCP port on 127.0.0.1
//	soakcheck wait   -url U [-timeout D]     wait until U answers 200
//	soakcheck warm   -proxy P -origin O -pages N
//	                                         store /p/0 … /p/N-1, check they are
//	                                         HITs, then arm the origin's failure rule
//	soakcheck metric -admin A -name M        print one unlabelled metric
//	soakcheck run    -proxy P -origin O -admin A -secret S -duration D …
//	                                         the revalidation loop and its checker
//
// run, every -interval (100 ms): bump one of the -changing pages at the
// origin (POST /_bump), then POST /api/revalidate?path=… with the secret.
// A 200 is an acknowledgement: a probe that starts after it must show a
// version at least the acknowledged one. A 502 is the expected failure of
// that round (the origin fails one refetch in five): the old page stays,
// and must still be at least the last acknowledged version. Meanwhile a
// prober reads the changing pages in a loop with the same rule, and a
// churner fills -bulk-rate large pages a second to push the cache past its
// budget. It prints one "SOAKCHECK key=value …" line, and exits 1 when a
// page was older than an acknowledged revalidation, torn, or answered
// other than 200, or when an API answer was neither 200 nor 502.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: soakcheck freeport|wait|warm|metric|run [flags]")
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "freeport":
		err = freeport()
	case "wait":
		err = wait(args)
	case "warm":
		err = warm(args)
	case "metric":
		err = metric(args)
	case "run":
		err = runSoak(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fatalf("soakcheck %s: %v", cmd, err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

var client = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil},
	Timeout:   10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func freeport() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

func wait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	url := fs.String("url", "", "URL that must answer 200")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait")
	fs.Parse(args)
	deadline := time.Now().Add(*timeout)
	for {
		resp, err := client.Get(*url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %v", *url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get fetches url as a visitor (X-Soak-Visitor), whole.
func get(url string) (int, http.Header, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("X-Soak-Visitor", "1")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

func post(url string, header ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func warm(args []string) error {
	fs := flag.NewFlagSet("warm", flag.ExitOnError)
	proxy := fs.String("proxy", "", "isrproxy base URL")
	origin := fs.String("origin", "", "origin base URL")
	pages := fs.Int("pages", 200, "pages to store: /p/0 … /p/N-1")
	fs.Parse(args)
	for i := range *pages {
		url := fmt.Sprintf("%s/p/%d", *proxy, i)
		status, _, body, err := get(url)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s: status %d: %.200s", url, status, body)
		}
	}
	for i := range *pages {
		url := fmt.Sprintf("%s/p/%d", *proxy, i)
		status, h, _, err := get(url)
		if err != nil {
			return err
		}
		if status != http.StatusOK || h.Get("X-Cache") != "HIT" {
			return fmt.Errorf("%s: %d %s after warm-up, want 200 HIT", url, status, h.Get("X-Cache"))
		}
	}
	if status, body, err := post(*origin + "/_arm"); err != nil || status != http.StatusOK {
		return fmt.Errorf("arming the origin: %d %s %v", status, body, err)
	}
	fmt.Printf("warmed %d pages\n", *pages)
	return nil
}

// readMetric reads one unlabelled sample from admin's /metrics.
func readMetric(admin, name string) (float64, error) {
	resp, err := client.Get(admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

func metric(args []string) error {
	fs := flag.NewFlagSet("metric", flag.ExitOnError)
	admin := fs.String("admin", "", "admin base URL")
	name := fs.String("name", "", "metric name")
	fs.Parse(args)
	v, err := readMetric(*admin, *name)
	if err != nil {
		return err
	}
	fmt.Println(strconv.FormatFloat(v, 'f', -1, 64))
	return nil
}

// ---------------------------------------------------------------- run

var (
	headMarker = regexp.MustCompile(`^<!-- version=(\d+) -->`)
	tailMarker = regexp.MustCompile(`<p>version=(\d+)</p>\n$`)
)

// version reads a page's version markers; torn when they differ.
func version(body string) (v int64, torn bool, err error) {
	h := headMarker.FindStringSubmatch(body)
	t := tailMarker.FindStringSubmatch(body)
	if h == nil || t == nil {
		return 0, false, fmt.Errorf("no version marker in %.80q", body)
	}
	v, _ = strconv.ParseInt(h[1], 10, 64)
	tv, _ := strconv.ParseInt(t[1], 10, 64)
	return v, v != tv, nil
}

type counters struct {
	rounds, acked, failed, unexpected, skipped atomic.Int64
	probes, older, torn, badProbe              atomic.Int64
	bulk, bulkBad                              atomic.Int64
	peakGoroutines                             atomic.Int64

	mu       sync.Mutex
	problems []string // the first few, for the report
}

func (c *counters) problem(format string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) < 20 {
		c.problems = append(c.problems, fmt.Sprintf(format, a...))
	}
}

// acks holds the highest acknowledged version of each changing page.
type acks struct {
	mu sync.Mutex
	v  map[string]int64
}

func (a *acks) get(path string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.v[path]
}

func (a *acks) raise(path string, v int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.v[path] = max(a.v[path], v)
}

// probe reads path and checks it is whole, 200, and at least floor.
func probe(c *counters, proxy, path string, floor int64, why string) {
	c.probes.Add(1)
	status, _, body, err := get(proxy + path)
	if err != nil || status != http.StatusOK {
		c.badProbe.Add(1)
		c.problem("%s probe of %s: status %d, err %v", why, path, status, err)
		return
	}
	v, torn, err := version(body)
	switch {
	case err != nil:
		c.badProbe.Add(1)
		c.problem("%s probe of %s: %v", why, path, err)
	case torn:
		c.torn.Add(1)
		c.problem("%s probe of %s: torn page", why, path)
	case v < floor:
		c.older.Add(1)
		c.problem("%s probe of %s: version %d, but %d was acknowledged", why, path, v, floor)
	}
}

type apiAnswer struct {
	Results []struct {
		Path    string `json:"path"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"results"`
}

func runSoak(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	proxy := fs.String("proxy", "", "isrproxy base URL")
	origin := fs.String("origin", "", "origin base URL")
	admin := fs.String("admin", "", "isrproxy admin base URL")
	secret := fs.String("secret", "", "REVALIDATE_SECRET")
	duration := fs.Duration("duration", 60*time.Second, "how long to run")
	interval := fs.Duration("interval", 100*time.Millisecond, "time between revalidations")
	changing := fs.Int("changing", 20, "pages /p/0 … /p/N-1 that change")
	bulkRate := fs.Int("bulk-rate", 200, "large cold pages filled per second (0: none)")
	fs.Parse(args)
	if *changing < 1 {
		return errors.New("-changing must be at least 1")
	}

	var c counters
	a := &acks{v: map[string]int64{}}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup

	// The prober: reads the changing pages in a loop; each read must be at
	// least the version acknowledged before it started.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			path := fmt.Sprintf("/p/%d", i%*changing)
			probe(&c, *proxy, path, a.get(path), "background")
			time.Sleep(2 * time.Millisecond)
		}
	}()

	// The churner: fills large cold pages, pushing the store past its
	// budget, so that the peak RSS is measured with evictions going on.
	if *bulkRate > 0 {
		tokens := make(chan int)
		wg.Add(1)
		go func() { // paces the fills at -bulk-rate
			defer wg.Done()
			defer close(tokens)
			tick := time.NewTicker(time.Second / time.Duration(*bulkRate))
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				select {
				case <-ctx.Done():
					return
				case tokens <- n:
				default: // every filler busy: this one is skipped
				}
			}
		}()
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range tokens {
					c.bulk.Add(1)
					status, _, _, err := get(fmt.Sprintf("%s/bulk/%d", *proxy, n))
					if err != nil || status != http.StatusOK {
						c.bulkBad.Add(1)
						c.problem("bulk fill /bulk/%d: status %d, err %v", n, status, err)
					}
				}
			}()
		}
	}

	// The goroutine sampler: the peak of go_goroutines under load.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := readMetric(*admin, "go_goroutines"); err == nil {
				for {
					old := c.peakGoroutines.Load()
					if int64(v) <= old || c.peakGoroutines.CompareAndSwap(old, int64(v)) {
						break
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// The revalidation loop: a round every -interval, each on its own
	// goroutine so that a slow round does not delay the next; at most 4
	// at once (a tick finding all 4 busy is counted as skipped).
	round := func(i int) {
		path := fmt.Sprintf("/p/%d", i%*changing)
		status, body, err := post(*origin + "/_bump?path=" + path)
		if err != nil || status != http.StatusOK {
			c.unexpected.Add(1)
			c.problem("bumping %s at the origin: %d %.200s %v", path, status, body, err)
			return
		}
		bumped, err := strconv.ParseInt(strings.TrimSpace(body), 10, 64)
		if err != nil {
			c.unexpected.Add(1)
			c.problem("bumping %s: %q", path, body)
			return
		}
		c.rounds.Add(1)
		status, body, err = post(*proxy+"/api/revalidate?path="+path, "Authorization", "Bearer "+*secret)
		var ans apiAnswer
		if err == nil {
			err = json.Unmarshal([]byte(body), &ans)
		}
		switch {
		case err != nil:
			c.unexpected.Add(1)
			c.problem("revalidate %s: %d %v %.200s", path, status, err, body)
		case status == http.StatusOK && len(ans.Results) == 1 &&
			(ans.Results[0].Outcome == "replaced" || ans.Results[0].Outcome == "stored"):
			c.acked.Add(1)
			a.raise(path, bumped)
			probe(&c, *proxy, path, bumped, "after-ack")
		case status == http.StatusBadGateway && len(ans.Results) == 1 && ans.Results[0].Outcome == "failed":
			c.failed.Add(1) // expected: the old page stays
			probe(&c, *proxy, path, a.get(path), "after-failure")
		default:
			c.unexpected.Add(1)
			c.problem("revalidate %s: %d %.200s", path, status, body)
		}
	}
	busy := make(chan struct{}, 4)
	tick := time.NewTicker(*interval)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case busy <- struct{}{}:
		default:
			c.skipped.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-busy }()
			round(i)
		}()
	}
	tick.Stop()
	cancel()
	wg.Wait()

	fmt.Printf("SOAKCHECK rounds=%d skipped=%d acked=%d failed=%d unexpected=%d probes=%d older=%d torn=%d bad_probes=%d bulk=%d bulk_bad=%d peak_goroutines=%d\n",
		c.rounds.Load(), c.skipped.Load(), c.acked.Load(), c.failed.Load(), c.unexpected.Load(),
		c.probes.Load(), c.older.Load(), c.torn.Load(), c.badProbe.Load(),
		c.bulk.Load(), c.bulkBad.Load(), c.peakGoroutines.Load())
	for _, p := range c.problems {
		fmt.Println("  problem:", p)
	}
	switch {
	case c.older.Load() > 0 || c.torn.Load() > 0 || c.badProbe.Load() > 0 || c.unexpected.Load() > 0 || c.bulkBad.Load() > 0:
		return errors.New("the checker found problems")
	case c.rounds.Load() >= 10 && c.failed.Load() == 0:
		return errors.New("no revalidation failed: the origin's failure rule did not apply")
	case c.acked.Load() == 0:
		return errors.New("no revalidation was acknowledged")
	}
	return nil
}
