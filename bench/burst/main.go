// Command burst sends N simultaneous requests for one cold page through a
// cache and reports how many requests reached the origin and when the last
// answer arrived.
//
// All N connections are opened first; then every request is written at
// the same instant (a closed channel releases them). The origin's own
// counter for that page (GET /__stats?page=N) is read before and after.
//
//	burst -url http://127.0.0.1:18102 -origin http://127.0.0.1:18100 -page 500000 -n 200
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/bench/internal/page"
)

type answer struct {
	status  int
	xcache  string
	version int
	gzipped bool
	body    []byte
	done    time.Duration
	err     error
}

type result struct {
	N              int            `json:"n"`
	Page           int            `json:"page"`
	OK             int            `json:"ok"`
	Errors         int            `json:"errors"`
	Status         map[string]int `json:"status"`
	XCache         map[string]int `json:"x_cache"`
	OriginRequests int            `json:"origin_requests"`
	FirstMs        float64        `json:"first_ms"`
	MedianMs       float64        `json:"median_ms"`
	LastMs         float64        `json:"last_ms"`
	OriginDelayMs  float64        `json:"origin_delay_ms"`
	FirstErr       string         `json:"first_error,omitempty"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("burst: ")
	base := flag.String("url", "", "base URL of the system under test")
	originURL := flag.String("origin", "", "base URL of the sample origin (for /__stats)")
	n := flag.Int("n", 200, "simultaneous requests")
	pg := flag.Int("page", 500000, "the cold page's number")
	ae := flag.String("ae", "gzip, deflate, br", "Accept-Encoding (empty: none)")
	timeout := flag.Duration("timeout", 20*time.Second, "give up after this long")
	flag.Parse()
	if *base == "" || *originURL == "" {
		log.Fatal("-url and -origin are required")
	}
	u, err := url.Parse(*base)
	if err != nil {
		log.Fatal(err)
	}

	before, delay, err := originCount(*originURL, *pg)
	if err != nil {
		log.Fatal(err)
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: isrproxy-bench-burst\r\n", page.Path(*pg), u.Host)
	if *ae != "" {
		req += "Accept-Encoding: " + *ae + "\r\n"
	}
	req += "\r\n"

	conns := make([]net.Conn, *n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			log.Fatalf("dial %d: %v", i, err)
		}
		c.SetDeadline(time.Now().Add(*timeout))
		conns[i] = c
	}
	answers := make([]answer, *n)
	var ready, wg sync.WaitGroup
	gate := make(chan struct{})
	var start time.Time
	for i, c := range conns {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			br := bufio.NewReaderSize(c, 32<<10)
			ready.Done()
			<-gate
			answers[i] = roundTrip(c, br, req, start)
		}()
	}
	ready.Wait()
	start = time.Now()
	close(gate)
	wg.Wait()

	// Late origin requests (if any) have started by now.
	time.Sleep(100 * time.Millisecond)
	after, _, err := originCount(*originURL, *pg)
	if err != nil {
		log.Fatal(err)
	}

	res := result{N: *n, Page: *pg, Status: map[string]int{}, XCache: map[string]int{},
		OriginRequests: after - before, OriginDelayMs: delay}
	var times []time.Duration
	for i := range answers {
		answers[i].check()
	}
	for _, a := range answers {
		if a.err != nil {
			res.Errors++
			if res.FirstErr == "" {
				res.FirstErr = a.err.Error()
			}
			continue
		}
		res.Status[fmt.Sprint(a.status)]++
		xc := a.xcache
		if xc == "" {
			xc = "none"
		}
		res.XCache[xc]++
		if a.status == http.StatusOK && a.version > 0 {
			res.OK++
		}
		times = append(times, a.done)
	}
	if len(times) > 0 {
		slices.Sort(times)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		res.FirstMs, res.MedianMs, res.LastMs = ms(times[0]), ms(times[len(times)/2]), ms(times[len(times)-1])
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// roundTrip writes req and reads the answer, noting when its last byte
// arrived. The body is checked later (check): decompressing it here would
// spend the client's CPU while later answers are still arriving, on the
// same cores as the system under test, and count it against that system.
func roundTrip(c net.Conn, br *bufio.Reader, req string, start time.Time) answer {
	if _, err := io.WriteString(c, req); err != nil {
		return answer{err: err}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return answer{err: err}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	done := time.Since(start)
	if err != nil {
		return answer{err: err}
	}
	return answer{status: resp.StatusCode, xcache: resp.Header.Get("X-Cache"),
		gzipped: resp.Header.Get("Content-Encoding") == "gzip", body: body, done: done}
}

// check reads the page's version from a's body, once every answer is in.
func (a *answer) check() {
	body := a.body
	a.body = nil
	if a.err != nil {
		return
	}
	if a.gzipped {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			a.err = fmt.Errorf("bad gzip body: %v", err)
			return
		}
	}
	a.version = page.ParseVersion(body)
}

// originCount returns the origin's GET count for page n and its delay.
func originCount(base string, n int) (int, float64, error) {
	resp, err := http.Get(fmt.Sprintf("%s/__stats?page=%d", base, n))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var s struct {
		Gets    int     `json:"page_gets_n"`
		DelayMs float64 `json:"delay_ms"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, 0, err
	}
	return s.Gets, s.DelayMs, nil
}
