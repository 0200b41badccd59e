package main

// "isrproxy revalidate", run as a real process (this test binary
// re-executed as isrproxy, see TestRevalidateCLIHelperProcess) against an
// isrproxy serving in-process: the lines it prints and its exit status are
// what cron jobs, deploy scripts and CI rely on.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRevalidateCLIHelperProcess is isrproxy revalidate itself when
// re-executed by runRevalidateCLI.
func TestRevalidateCLIHelperProcess(t *testing.T) {
	if os.Getenv("ISRPROXY_TEST_REVALIDATE") != "1" {
		t.Skip("runs only as the child of a CLI test")
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv("ISRPROXY_TEST_ARGS")), &args); err != nil {
		panic(err)
	}
	os.Args = append([]string{"isrproxy", "revalidate"}, args...)
	main() // exits the process
}

// runRevalidateCLI runs "isrproxy revalidate args..." with environ as its
// only isrproxy variables, and returns its exit status and output.
func runRevalidateCLI(t *testing.T, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	encoded, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRevalidateCLIHelperProcess$", "-test.count=1")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "REVALIDATE_") && name != "ISRPROXY_URL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ISRPROXY_TEST_REVALIDATE=1", "ISRPROXY_TEST_ARGS="+string(encoded))
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, stdout.String(), stderr.String()
}

// o503 makes /broken fail its refetches.
var o503 atomic.Bool

func TestRevalidateCLI(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" && o503.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		if strings.HasPrefix(r.URL.Path, "/blog/") {
			w.Header().Set("Cache-Tag", "blog")
		}
		fmt.Fprintf(w, "<p>%s</p>", r.URL.Path)
	})
	p := startProxy(t, o.URL, quietLogs)
	for _, path := range []string{"/a", "/broken", "/blog/1", "/blog/2"} {
		p.get(path)
	}
	o503.Store(true)
	t.Cleanup(func() { o503.Store(false) })
	env := map[string]string{"ISRPROXY_URL": p.URL, "REVALIDATE_SECRET": apiSecret}

	t.Run("all replaced", func(t *testing.T) {
		code, out, errOut := runRevalidateCLI(t, env, "/a")
		assert.Equal(t, 0, code, errOut)
		assert.Equal(t, "replaced /a 200\n", out)
	})
	t.Run("one failed", func(t *testing.T) {
		code, out, _ := runRevalidateCLI(t, env, "/a", "/broken")
		assert.Equal(t, 1, code)
		assert.Equal(t, "replaced /a 200\nfailed /broken origin answered 503; previous version kept\n", out)
	})
	t.Run("tag, mode and host", func(t *testing.T) {
		code, out, errOut := runRevalidateCLI(t, env, "-tag", "blog", "-mode", "soft", "-host", hostPort(p.URL))
		assert.Equal(t, 0, code, errOut)
		assert.Equal(t, "marked /blog/1\nmarked /blog/2\n", out)
	})
	t.Run("prefix and purge", func(t *testing.T) {
		code, out, errOut := runRevalidateCLI(t, env, "-prefix", "/blog/", "-mode", "purge")
		assert.Equal(t, 0, code, errOut)
		assert.Equal(t, "purged /blog/1\npurged /blog/2\n", out)
	})
	t.Run("async", func(t *testing.T) {
		code, out, errOut := runRevalidateCLI(t, env, "-async", "/a")
		assert.Equal(t, 0, code, errOut)
		assert.Regexp(t, `^job [0-9a-f]{32} running: GET /api/revalidate/jobs/[0-9a-f]{32}\n$`, out)
	})
	t.Run("secret file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "secret")
		require.NoError(t, os.WriteFile(file, []byte(apiSecret+"\n"), 0o600))
		code, out, errOut := runRevalidateCLI(t, map[string]string{"ISRPROXY_URL": p.URL, "REVALIDATE_SECRET_FILE": file}, "/a")
		assert.Equal(t, 0, code, errOut)
		assert.Equal(t, "replaced /a 200\n", out)
	})
	t.Run("wrong secret", func(t *testing.T) {
		code, out, errOut := runRevalidateCLI(t, map[string]string{"ISRPROXY_URL": p.URL, "REVALIDATE_SECRET": "not-the-secret-0000"}, "/a")
		assert.Equal(t, 1, code)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "401")
	})
	t.Run("unreachable", func(t *testing.T) {
		code, _, errOut := runRevalidateCLI(t, map[string]string{"ISRPROXY_URL": "http://127.0.0.1:1", "REVALIDATE_SECRET": apiSecret}, "/a")
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "isrproxy revalidate:")
	})
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"no target":       {env, nil, "name at least one PATH"},
		"bad mode":        {env, []string{"-mode", "ban", "/a"}, `-mode "ban"`},
		"not a path":      {env, []string{"a"}, `"a" must begin with "/"`},
		"unknown flag":    {env, []string{"-nope", "/a"}, "flag provided but not defined"},
		"no secret":       {map[string]string{"ISRPROXY_URL": p.URL}, []string{"/a"}, "REVALIDATE_SECRET"},
		"bad url":         {map[string]string{"ISRPROXY_URL": "127.0.0.1:8080", "REVALIDATE_SECRET": apiSecret}, []string{"/a"}, "ISRPROXY_URL"},
		"API refuses one": {env, []string{"/a#top"}, "400"},
	} {
		t.Run("usage/"+name, func(t *testing.T) {
			code, out, errOut := runRevalidateCLI(t, tc.env, tc.args...)
			assert.Equal(t, 2, code, "stdout %q stderr %q", out, errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

// A tag over more than 100 pages is a job for the API; the command waits
// for it and prints every result.
func TestRevalidateCLIWaitsForAJob(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Tag", "all")
		fmt.Fprintf(w, "<p>%s</p>", r.URL.Path)
	})
	p := startProxy(t, o.URL, quietLogs)
	for i := range 101 {
		p.get(fmt.Sprintf("/p/%03d", i))
	}
	code, out, errOut := runRevalidateCLI(t, map[string]string{"ISRPROXY_URL": p.URL, "REVALIDATE_SECRET": apiSecret},
		"-tag", "all", "/p/000")
	assert.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 101, out)
	assert.Equal(t, "replaced /p/000 200", lines[0])
	assert.Equal(t, "replaced /p/100 200", lines[100])
}
