// Command storm runs a revalidation storm through isrproxy's revalidate
// API: for each of -pages pages it bumps the page's version at the origin
// (POST /page/N), asks isrproxy to revalidate it (POST
// REVALIDATE_PATH?path=/page/N with the bearer secret), and right after the
// 200 ack reads the page through isrproxy, gzipped and plain, checking the
// version marker: an answer older than the bumped version is stale.
//
// -workers pages are in flight at once, more than REVALIDATE_CONCURRENCY,
// so that isrproxy's own limit sets the pace. The floor is
// ceil(pages / concurrency) × the origin's delay.
//
//	storm -url http://127.0.0.1:18104 -origin http://127.0.0.1:18100 -secret S -pages 1000
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isrproxy/isrproxy/bench/internal/page"
)

type result struct {
	Pages         int            `json:"pages"`
	Acked         int            `json:"acked"`
	AckStatus     map[string]int `json:"ack_status"`
	Errors        int            `json:"errors"`
	StaleGzip     int            `json:"stale_gzip"`
	StaleIdentity int            `json:"stale_identity"`
	Stale         int            `json:"stale"`
	CheckXCache   map[string]int `json:"check_x_cache"`
	Seconds       float64        `json:"seconds"`
	FloorSeconds  float64        `json:"floor_seconds"`
	FloorRatio    float64        `json:"floor_ratio"`
	Concurrency   int            `json:"revalidate_concurrency"`
	Workers       int            `json:"workers"`
	AckP50Ms      float64        `json:"ack_p50_ms"`
	AckP99Ms      float64        `json:"ack_p99_ms"`
	AckMaxMs      float64        `json:"ack_max_ms"`
	OriginDelayMs float64        `json:"origin_delay_ms"`
	FirstErr      string         `json:"first_error,omitempty"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("storm: ")
	base := flag.String("url", "", "isrproxy's public base URL")
	originURL := flag.String("origin", "", "the sample origin's base URL")
	secret := flag.String("secret", os.Getenv("REVALIDATE_SECRET"), "revalidate secret (default $REVALIDATE_SECRET)")
	api := flag.String("api", "/api/revalidate", "REVALIDATE_PATH")
	from := flag.Int("from", 0, "first page")
	pages := flag.Int("pages", 1000, "pages to revalidate")
	workers := flag.Int("workers", 16, "pages in flight at once")
	conc := flag.Int("concurrency", 4, "isrproxy's REVALIDATE_CONCURRENCY (for the floor)")
	timeout := flag.Duration("timeout", 30*time.Second, "timeout of one request")
	flag.Parse()
	if *base == "" || *originURL == "" || *secret == "" {
		log.Fatal("-url, -origin and -secret are required")
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		DisableCompression: true, MaxIdleConnsPerHost: 2 * *workers}}

	delay, err := originDelay(client, *originURL)
	if err != nil {
		log.Fatal(err)
	}
	res := result{Pages: *pages, AckStatus: map[string]int{}, CheckXCache: map[string]int{},
		Concurrency: *conc, Workers: *workers, OriginDelayMs: delay}
	var (
		mu   sync.Mutex
		acks []time.Duration
		nxt  atomic.Int64
		wg   sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		res.Errors++
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
		mu.Unlock()
	}
	start := time.Now()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(nxt.Add(1)) - 1
				if i >= *pages {
					return
				}
				n := *from + i
				v, err := bump(client, *originURL, n)
				if err != nil {
					fail(err)
					continue
				}
				t0 := time.Now()
				status, body, err := revalidate(client, *base+*api, *secret, n)
				took := time.Since(t0)
				if err != nil {
					fail(err)
					continue
				}
				mu.Lock()
				res.AckStatus[fmt.Sprint(status)]++
				mu.Unlock()
				if status != http.StatusOK {
					fail(fmt.Errorf("revalidate %s: %d %s", page.Path(n), status, bytes.TrimSpace(body)))
					continue
				}
				// The ack is in: every request from now on must see v.
				gv, gxc, gerr := version(client, *base+page.Path(n), "gzip, deflate, br")
				iv, ixc, ierr := version(client, *base+page.Path(n), "")
				mu.Lock()
				res.Acked++
				acks = append(acks, took)
				if gerr == nil {
					res.CheckXCache[orNone(gxc)]++
					if gv < v {
						res.StaleGzip++
					}
				}
				if ierr == nil {
					res.CheckXCache[orNone(ixc)]++
					if iv < v {
						res.StaleIdentity++
					}
				}
				mu.Unlock()
				if gerr != nil {
					fail(gerr)
				}
				if ierr != nil {
					fail(ierr)
				}
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Stale = res.StaleGzip + res.StaleIdentity
	res.FloorSeconds = math.Ceil(float64(*pages)/float64(*conc)) * delay / 1000
	if res.FloorSeconds > 0 {
		res.FloorRatio = res.Seconds / res.FloorSeconds
	}
	if len(acks) > 0 {
		slices.Sort(acks)
		ms := func(q float64) float64 {
			return float64(acks[min(len(acks)-1, int(q*float64(len(acks))))].Microseconds()) / 1000
		}
		res.AckP50Ms, res.AckP99Ms, res.AckMaxMs = ms(0.5), ms(0.99), ms(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func originDelay(c *http.Client, base string) (float64, error) {
	resp, err := c.Get(base + "/__stats")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s struct {
		DelayMs float64 `json:"delay_ms"`
	}
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s.DelayMs, err
}

// bump raises page n's version at the origin and returns the new one.
func bump(c *http.Client, origin string, n int) (int, error) {
	resp, err := c.Post(origin+page.Path(n), "text/plain", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s struct {
		Version int `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, fmt.Errorf("bump %s: %v", page.Path(n), err)
	}
	return s.Version, nil
}

func revalidate(c *http.Client, api, secret string, n int) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, api+"?path="+page.Path(n), nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, err
}

// version reads a page and returns the version its body states.
func version(c *http.Client, url, ae string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			return 0, "", fmt.Errorf("%s: bad gzip: %v", url, err)
		}
	}
	v := page.ParseVersion(body)
	if resp.StatusCode != http.StatusOK || v < 0 {
		return 0, "", fmt.Errorf("%s: status %d, version %d", url, resp.StatusCode, v)
	}
	return v, resp.Header.Get("X-Cache"), nil
}
