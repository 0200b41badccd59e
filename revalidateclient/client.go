// Package revalidateclient calls isrproxy's revalidate API
// (README.md#the-revalidate-api) from a script: the client behind the
// "isrproxy revalidate" command, for cron jobs, deploy scripts and CI.
package revalidateclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultURL is where the client looks for isrproxy when ISRPROXY_URL is
// not set: the public listener's default, on this machine.
const DefaultURL = "http://127.0.0.1:8080"

// DefaultPath is the API's path when REVALIDATE_PATH is not set.
const DefaultPath = "/api/revalidate"

// Client calls one isrproxy's API.
type Client struct {
	// BaseURL is isrproxy's public listener, such as "http://127.0.0.1:8080".
	BaseURL string
	// Path is REVALIDATE_PATH; "" means [DefaultPath].
	Path string
	// Secret is REVALIDATE_SECRET, sent as "Authorization: Bearer".
	Secret string
	// HTTP makes the requests; nil: a client with a 60 s timeout a request.
	HTTP *http.Client
	// Poll is how often a job's progress is read; zero: 500 ms.
	Poll time.Duration
}

// Request is what to revalidate.
type Request struct {
	Paths    []string `json:"paths,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
	Host     string   `json:"host,omitempty"`
	Mode     string   `json:"mode,omitempty"`
	Async    bool     `json:"async,omitempty"`
	Linked   bool     `json:"linked,omitempty"`
}

// Result is one key and variant, as the API reports it.
type Result struct {
	Path    string `json:"path"`
	Status  int    `json:"status,omitempty"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// Failed reports a result whose key was not revalidated.
func (r Result) Failed() bool { return r.Outcome == "failed" }

// Line is the result as the command prints it: "replaced /a 200",
// "purged /a", "failed /b origin answered 503; previous version kept".
func (r Result) Line() string {
	switch {
	case r.Failed():
		return "failed " + r.Path + " " + r.Error
	case r.Status != 0:
		return r.Outcome + " " + r.Path + " " + strconv.Itoa(r.Status)
	}
	return r.Outcome + " " + r.Path
}

// Answer is the outcome of a call.
type Answer struct {
	// Results are every result known, sorted by path.
	Results []Result
	// Job is the background job's id, when the API made the call one.
	Job string
	// Done is false for a job left running (Request.Async).
	Done bool
}

// Failed reports whether any result failed.
func (a *Answer) Failed() bool {
	for _, r := range a.Results {
		if r.Failed() {
			return true
		}
	}
	return false
}

// APIError is an answer of the API that is not a revalidation: a 4xx, or a
// 5xx without results.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("API answered %d: %s", e.Status, e.Message)
}

// BadInput reports an error the caller's input caused (400, 413).
func (e *APIError) BadInput() bool {
	return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge
}

// Revalidate makes the call. When the API answers with a job (async, or
// tags and prefixes that matched more than 100 pages), it waits for the
// job to finish unless req.Async asked not to.
func (c *Client) Revalidate(ctx context.Context, req Request) (*Answer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var got struct {
		Job     string   `json:"job"`
		Message string   `json:"message"`
		Results []Result `json:"results"`
	}
	status, err := c.do(ctx, http.MethodPost, c.apiURL(""), body, &got)
	if err != nil {
		return nil, err
	}
	switch {
	case status == http.StatusOK, status == http.StatusBadGateway && got.Results != nil:
		return &Answer{Results: got.Results, Done: true}, nil
	case status == http.StatusAccepted && got.Job != "":
		if req.Async {
			return &Answer{Results: got.Results, Job: got.Job}, nil
		}
		return c.wait(ctx, got.Job)
	}
	return nil, &APIError{Status: status, Message: got.Message}
}

// wait reads job id until it is done, and returns all its results.
func (c *Client) wait(ctx context.Context, id string) (*Answer, error) {
	poll := c.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	for {
		var got struct {
			Done    bool     `json:"done"`
			Message string   `json:"message"`
			Results []Result `json:"results"`
		}
		status, err := c.do(ctx, http.MethodGet, c.apiURL("/jobs/"+url.PathEscape(id)), nil, &got)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, &APIError{Status: status, Message: got.Message}
		}
		if got.Done {
			return &Answer{Results: got.Results, Job: id, Done: true}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for job %s: %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}

func (c *Client) apiURL(sub string) string {
	p := c.Path
	if p == "" {
		p = DefaultPath
	}
	return strings.TrimSuffix(c.BaseURL, "/") + "/" + strings.Trim(p, "/") + sub
}

// do sends one request and decodes its JSON answer into v.
func (c *Client) do(ctx context.Context, method, u string, body []byte, v any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Secret)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return 0, &APIError{Status: resp.StatusCode, Message: "not a JSON answer: " + snippet(raw)}
	}
	return resp.StatusCode, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}

// CheckURL checks ISRPROXY_URL: http or https, a host, nothing after the path.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be an http or https URL such as " + DefaultURL)
	}
	return nil
}
