package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// apiSecret is the REVALIDATE_SECRET of every test instance.
const apiSecret = "test-secret-0123456789"

// testOrigin is a scripted origin: it counts requests, records the last
// one, and answers with whatever handler the test sets.
type testOrigin struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex    // guards last
	last    *http.Request // the last request received (body not kept)
	handler atomic.Pointer[http.HandlerFunc]
}

func newTestOrigin(t *testing.T, h http.HandlerFunc) *testOrigin {
	t.Helper()
	o := &testOrigin{}
	o.set(h)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.mu.Lock()
		o.last = r.Clone(context.Background())
		o.mu.Unlock()
		(*o.handler.Load())(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *testOrigin) set(h http.HandlerFunc) { o.handler.Store(&h) }

// lastRequest returns the last request the origin received.
func (o *testOrigin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// instance is isrproxy running in-process through run(), on loopback ports.
type instance struct {
	t      *testing.T
	URL    string // public listener, "http://127.0.0.1:port"
	Admin  string // admin listener
	logs   *syncBuffer
	client *http.Client
	sent   *atomic.Int64 // requests sent through do, each owed an access-log line; shared by copies
}

// startProxy runs isrproxy in front of o with env added to the test defaults.
// It stops when the test ends; a non-nil error from run fails the test.
func startProxy(t *testing.T, o *testOrigin, env map[string]string) *instance {
	t.Helper()
	environ := map[string]string{
		"ORIGIN_URL":        o.URL,
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"LOG_LEVEL":         "info",
		"SHUTDOWN_TIMEOUT":  "5s",
		"GOMEMLIMIT":        "off", // leave the test process's limits alone
		"GOGC":              "100",
	}
	for k, v := range env {
		environ[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Listeners, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, environ, logs, func(l Listeners) { ready <- l }) }()
	var l Listeners
	select {
	case l = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("isrproxy did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("isrproxy did not stop")
		}
	})
	return &instance{
		t: t, URL: "http://" + l.Public, Admin: "http://" + l.Admin, logs: logs, sent: new(atomic.Int64),
		client: &http.Client{
			Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       30 * time.Second,
		},
	}
}

// answer is a response read whole.
type answer struct {
	Status int
	Header http.Header
	Body   string
}

// do sends req and reads the whole answer.
func (in *instance) do(req *http.Request) answer {
	in.t.Helper()
	in.sent.Add(1)
	resp, err := in.client.Do(req)
	require.NoError(in.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(in.t, err)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// get fetches path with optional header pairs ("Name", "value", ...).
func (in *instance) get(path string, header ...string) answer {
	in.t.Helper()
	return in.request(http.MethodGet, path, nil, header...)
}

func (in *instance) request(method, path string, body io.Reader, header ...string) answer {
	in.t.Helper()
	req, err := http.NewRequest(method, in.URL+path, body)
	require.NoError(in.t, err)
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	return in.do(req)
}

// revalidate calls the revalidate API with the secret and query (e.g. "path=/a").
func (in *instance) revalidate(query string) answer {
	in.t.Helper()
	return in.request(http.MethodPost, "/api/revalidate?"+query, nil, "Authorization", "Bearer "+apiSecret)
}

// accessLog returns the access-log lines written so far, as decoded JSON,
// once there is one for every request sent through do. A line is written
// after its answer has left (as nginx and Varnish log too), so a client can
// hold the whole answer a moment before the line exists: this waits for it.
func (in *instance) accessLog() []map[string]any {
	in.t.Helper()
	var lines []map[string]any
	require.Eventually(in.t, func() bool {
		lines = lines[:0]
		for line := range strings.SplitSeq(in.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
				lines = append(lines, m)
			}
		}
		return int64(len(lines)) >= in.sent.Load()
	}, 5*time.Second, 5*time.Millisecond, "an access-log line for each of %d requests:\n%s", in.sent.Load(), in.logs.String())
	return lines
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// page is an origin handler answering a fixed HTML body.
func page(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, body)
	}
}
