package main

// Process-level tests of bad configuration (exit non-zero, one line per
// problem naming the variable, so an operator fixes them all in one go) and
// of graceful stops (SIGTERM lets in-flight requests finish, then exit 0).
// cli is driven with a map environ and buffers; the SIGTERM and exit-code
// tests re-execute this test binary as a real isrproxy process (see
// TestExitHelperProcess).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exitValidEnviron is a configuration that starts, on loopback ports.
func exitValidEnviron() map[string]string {
	return map[string]string{
		"ORIGIN_URL":        "http://127.0.0.1:1",
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"GOMEMLIMIT":        "off",
	}
}

// exitCLI runs cli with environ and returns its exit code and output. A
// configuration that would start is stopped at once by a cancelled context.
func exitCLI(t *testing.T, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- cli(ctx, args, environ, &out, &errOut) }()
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "cli did not return")
	}
	return code, out.String(), errOut.String()
}

// exitLines splits output into its non-empty lines.
func exitLines(s string) []string {
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// Every problem is reported, one line each, naming its
// variable; the exit code is non-zero and nothing panics.
func TestBadConfigurationExitsNonZeroWithOneLinePerProblem(t *testing.T) {
	environ := map[string]string{
		"ORIGIN_URL":             "ftp://origin.example",
		"REVALIDATE_SECRET":      "short",
		"CACHE_MAX_BYTES":        "lots",
		"ORIGIN_TIMEOUT":         "soon",
		"PASS_TTL":               "-1s",
		"ALLOWED_HOSTS":          "exa mple.com",
		"LOG_LEVEL":              "loud",
		"LOG_FORMAT":             "xml",
		"ORIGIN_MAX_CONCURRENCY": "0",
		"LISTEN_ADDR":            "nope",
	}
	code, stdout, stderr := exitCLI(t, environ)
	assert.NotEqual(t, 0, code)
	assert.Empty(t, stdout, "nothing starts")
	lines := exitLines(stderr)
	assert.Len(t, lines, len(environ), "one line per problem:\n%s", stderr)
	for name := range environ {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, name+": ") {
				n++
			}
		}
		assert.Equal(t, 1, n, "%s must be named on exactly one line:\n%s", name, stderr)
	}
	assert.Contains(t, stderr, `CACHE_MAX_BYTES: "lots" is not a size`)
	assert.NotContains(t, stderr, "short", "the secret is never printed")
	assert.NotContains(t, stderr, "panic")
}

// Each variable, given a bad value alone, makes one line that
// names it and a non-zero exit.
func TestEachBadVariableIsReportedByName(t *testing.T) {
	bad := map[string]string{
		"ORIGIN_URL":             "http://origin.example/blog",
		"REVALIDATE_SECRET":      "tooshort",
		"LISTEN_ADDR":            "8080",
		"ADMIN_ADDR":             "localhost",
		"REVALIDATE_PATH":        "api/revalidate",
		"CACHE_MAX_BYTES":        "256MB",
		"MAX_OBJECT_BYTES":       "1.5MiB",
		"ORIGIN_TIMEOUT":         "30",
		"REVALIDATE_CONCURRENCY": "four",
		"REVALIDATE_AFTER":       "1 hour",
		"CACHE_STATUSES":         "200,abc",
		"NEGATIVE_TTL":           "-1m",
		"PASS_TTL":               "two minutes",
		"BYPASS_COOKIES":         "my cookie",
		"ALLOWED_HOSTS":          "*.example.com",
		"ORIGIN_MAX_CONCURRENCY": "-3",
		"IGNORE_QUERY_PARAMS":    "a=b",
		"COMPRESS_TYPES":         "html",
		"ORIGIN_HOST":            "evil.example\r\nX: y",
		"SHUTDOWN_TIMEOUT":       "25",
		"LOG_LEVEL":              "INFO",
		"LOG_FORMAT":             "JSON",
		"REVALIDATE_SECRET_FILE": "/nonexistent/secret",
		"KEEP_QUERY_PARAMS":      "a=b",
		"BYPASS_PATHS":           "wp-admin/*",
		"COMPRESS_MIN_BYTES":     "-1",
		"UNSAFE_INVALIDATION":    "hard",
		"TAG_HEADERS":            "Cache Tag",
		"TLS_ADDR":               "8443",
		"ACME_DOMAINS":           "*.example.com",
		"ACME_EMAIL":             "admin",
		"ACME_CA":                "http://ca.example/directory",
		"HTTPS_REDIRECT":         "on",
		"TRUSTED_PROXIES":        "10.0.0.0/33",
	}
	for name, value := range bad {
		environ := exitValidEnviron()
		environ[name] = value
		code, stdout, stderr := exitCLI(t, environ)
		assert.NotEqual(t, 0, code, "%s=%q", name, value)
		assert.Empty(t, stdout, "%s=%q", name, value)
		lines := exitLines(stderr)
		if assert.Len(t, lines, 1, "%s=%q:\n%s", name, value, stderr) {
			assert.Contains(t, lines[0], name+": ", "%s=%q", name, value)
		}
	}
}

// The required variables missing are each reported.
func TestMissingRequiredVariablesAreReported(t *testing.T) {
	code, _, stderr := exitCLI(t, map[string]string{})
	assert.NotEqual(t, 0, code)
	lines := exitLines(stderr)
	require.Len(t, lines, 2, stderr)
	assert.Contains(t, lines[0], "ORIGIN_URL: ")
	assert.Contains(t, lines[1], "REVALIDATE_SECRET: ")
}

// A listen address already taken exits non-zero naming the variable.
func TestListenAddressInUseExitsNonZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	for _, name := range []string{"LISTEN_ADDR", "ADMIN_ADDR"} {
		environ := exitValidEnviron()
		environ[name] = ln.Addr().String()
		code, _, stderr := exitCLI(t, environ)
		assert.NotEqual(t, 0, code, name)
		assert.Contains(t, stderr, name, name)
	}
}

// A valid configuration serves until its context ends, then exits 0.
func TestValidConfigurationExitsZeroWhenStopped(t *testing.T) {
	code, stdout, stderr := exitCLI(t, exitValidEnviron())
	assert.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	assert.Contains(t, stdout, "isrproxy serving")
}

func TestUnknownCommandExitsNonZero(t *testing.T) {
	code, _, stderr := exitCLI(t, exitValidEnviron(), "serv")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, `"serv"`)
}

// ---------------------------------------------------------------- real processes

// TestExitHelperProcess is not a test: it is the isrproxy process that the
// tests below start by re-executing the test binary.
func TestExitHelperProcess(t *testing.T) {
	if os.Getenv("ISRPROXY_TEST_MAIN") != "1" {
		t.Skip("runs only as the child of a process-level test")
	}
	os.Args = []string{"isrproxy"}
	main() // exits the process
}

// exitChild is a running isrproxy process.
type exitChild struct {
	cmd    *exec.Cmd
	lines  chan string // its standard output, line by line
	stderr *syncBuffer
	waited chan error
}

func startExitChild(t *testing.T, environ map[string]string) *exitChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ISRPROXY_TEST_MAIN=1")
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v) // later entries win
	}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	c := &exitChild{cmd: cmd, lines: make(chan string, 1000), stderr: &syncBuffer{}, waited: make(chan error, 1)}
	cmd.Stderr = c.stderr
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-c.waited:
		default:
			cmd.Process.Kill()
		}
	})
	return c
}

// waitLog returns the first JSON log line whose msg is msg.
func (c *exitChild) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				require.FailNow(t, "isrproxy exited before logging "+msg, c.stderr.String())
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				return m
			}
		case <-timeout:
			require.FailNow(t, "isrproxy did not log "+msg, c.stderr.String())
		}
	}
}

// exitCode waits for the process to end and returns its exit code.
func (c *exitChild) exitCode(t *testing.T) int {
	t.Helper()
	go func() {
		for range c.lines { // drain, so the reader reaches Wait
		}
	}()
	select {
	case err := <-c.waited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(15 * time.Second):
		require.FailNow(t, "isrproxy did not exit")
		return -1
	}
}

// On SIGTERM, isrproxy stops accepting, lets an in-flight slow request
// finish with its 200, and exits 0. Meanwhile /healthz answers 503, so a
// load balancer stops sending visitors to a process on its way out.
func TestSIGTERMLetsInFlightRequestFinish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	gate := newCoreGate()
	arrived := make(chan struct{}, 1)
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		gate.wait(r)
		io.WriteString(w, "slow page")
	})
	t.Cleanup(gate.open) // before the origin closes
	c := startExitChild(t, map[string]string{
		"ORIGIN_URL":        o.URL,
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"SHUTDOWN_TIMEOUT":  "20s",
		"LOG_FORMAT":        "json",
	})
	serving := c.waitLog(t, "isrproxy serving")
	listen, _ := serving["listen"].(string)
	require.NotEmpty(t, listen)
	admin, _ := serving["admin"].(string)
	require.NotEmpty(t, admin)
	health := func() int {
		resp, err := http.Get("http://" + admin + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, health())

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + listen + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case <-time.After(15 * time.Second):
		require.FailNow(t, "the request did not reach the origin")
	}
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	c.waitLog(t, "shutting down")
	select {
	case r := <-done:
		require.FailNow(t, "the in-flight request ended before the origin answered", "%+v", r)
	default:
	}
	assert.Equal(t, http.StatusServiceUnavailable, health(), "/healthz while draining")
	gate.open()

	select {
	case r := <-done:
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "slow page", r.body)
	case <-time.After(15 * time.Second):
		require.FailNow(t, "the in-flight request did not finish")
	}
	assert.Equal(t, 0, c.exitCode(t), c.stderr.String())
	_, err := net.DialTimeout("tcp", listen, time.Second)
	assert.Error(t, err, "the listener is closed")
}

// As a process, bad configuration exits non-zero with one line
// per problem on standard error, and no panic.
func TestBadConfigurationProcessExitsNonZero(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	c := startExitChild(t, map[string]string{
		"ORIGIN_URL":        "",
		"REVALIDATE_SECRET": "",
		"CACHE_MAX_BYTES":   "lots",
	})
	code := c.exitCode(t)
	assert.NotEqual(t, 0, code)
	lines := exitLines(c.stderr.String())
	assert.Len(t, lines, 3, c.stderr.String())
	for _, name := range []string{"ORIGIN_URL: ", "REVALIDATE_SECRET: ", `CACHE_MAX_BYTES: "lots" is not a size`} {
		assert.Contains(t, c.stderr.String(), name)
	}
	assert.NotContains(t, c.stderr.String(), "goroutine ")
}

// Shutdown waits for in-flight requests, not for connections that
// never carried one. Browsers open such connections ahead of need
// (preconnect), and Go's Transport dials spares under load; net/http's
// Shutdown counts a connection in StateNew as active for 5 s, so without
// care a SIGTERM with SHUTDOWN_TIMEOUT under 5 s fails to exit 0 although
// nothing was in flight.
func TestShutdownIsNotHeldByUnusedConnection(t *testing.T) {
	o := newTestOrigin(t, page("<p>p</p>"))
	environ := exitValidEnviron()
	environ["ORIGIN_URL"] = o.URL
	environ["SHUTDOWN_TIMEOUT"] = "2s"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Listeners, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, environ, io.Discard, func(l Listeners) { ready <- l }) }()
	var l Listeners
	select {
	case l = <-ready:
	case err := <-done:
		require.FailNow(t, "run ended", "%v", err)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "isrproxy did not start")
	}
	resp, err := http.Get("http://" + l.Public + "/p") // one request served: the server is warm
	require.NoError(t, err)
	resp.Body.Close()

	conn, err := net.Dial("tcp", l.Public) // connected, no request sent
	require.NoError(t, err)
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it (not a correctness wait: the bug shows either way)

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "nothing was in flight: shutdown must succeed")
		assert.Less(t, time.Since(start), 2*time.Second)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "run did not return")
	}
}
