// Command fill requests a range of sample pages through a cache, to store
// them (warm-up, memory scenario) or to check that they are stored.
//
// It prints one JSON object: how many answers, their statuses and X-Cache
// values, how many bodies held a readable version marker, and the time.
//
//	fill -url http://127.0.0.1:18102 -from 0 -count 1000 -conc 32 -ae gzip
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/isrproxy/isrproxy/bench/internal/page"
)

type result struct {
	Requests  int            `json:"requests"`
	Errors    int            `json:"errors"`
	Status    map[string]int `json:"status"`
	XCache    map[string]int `json:"x_cache"`
	Gzip      int            `json:"gzip_bodies"`
	Versioned int            `json:"versioned_bodies"`
	Seconds   float64        `json:"seconds"`
	FirstErr  string         `json:"first_error,omitempty"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("fill: ")
	base := flag.String("url", "", "base URL of the system (http://127.0.0.1:PORT)")
	from := flag.Int("from", 0, "first page number")
	count := flag.Int("count", 1000, "number of pages")
	conc := flag.Int("conc", 32, "concurrent requests")
	ae := flag.String("ae", "", "Accept-Encoding header to send (empty: none)")
	timeout := flag.Duration("timeout", 10*time.Second, "timeout of one request")
	flag.Parse()
	if *base == "" {
		log.Fatal("-url is required")
	}

	client := &http.Client{
		Timeout: *timeout,
		Transport: &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: *conc,
			MaxConnsPerHost:     *conc,
		},
	}
	var (
		mu  sync.Mutex
		res = result{Status: map[string]int{}, XCache: map[string]int{}}
		nxt atomic.Int64
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(nxt.Add(1)) - 1
				if i >= *count {
					return
				}
				status, xc, gz, ver, err := get(client, *base+page.Path(*from+i), *ae)
				mu.Lock()
				res.Requests++
				if err != nil {
					res.Errors++
					if res.FirstErr == "" {
						res.FirstErr = err.Error()
					}
				} else {
					res.Status[fmt.Sprint(status)]++
					if xc == "" {
						xc = "none"
					}
					res.XCache[xc]++
					if gz {
						res.Gzip++
					}
					if ver > 0 {
						res.Versioned++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	json.NewEncoder(os.Stdout).Encode(res)
}

func get(c *http.Client, url, ae string) (status int, xcache string, gz bool, version int, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", false, 0, err
	}
	if ae != "" {
		req.Header.Set("Accept-Encoding", ae)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", false, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", false, 0, err
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz = true
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return resp.StatusCode, "", gz, 0, fmt.Errorf("%s: bad gzip: %v", url, err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return resp.StatusCode, "", gz, 0, fmt.Errorf("%s: bad gzip: %v", url, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("X-Cache"), gz, page.ParseVersion(body), nil
}
