// Signals an operator sends: SIGHUP (what nginx takes to reload) never stops
// isrproxy nor empties its store.
package main

import (
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSIGHUPNeverStopsTheProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	o := newTestOrigin(t, page("<p>stored</p>"))
	c := startExitChild(t, map[string]string{
		"ORIGIN_URL":        o.URL,
		"REVALIDATE_SECRET": apiSecret,
		"LISTEN_ADDR":       "127.0.0.1:0",
		"ADMIN_ADDR":        "127.0.0.1:0",
		"LOG_FORMAT":        "json",
	})
	serving := c.waitLog(t, "isrproxy serving")
	listen, _ := serving["listen"].(string)
	require.NotEmpty(t, listen)
	get := func() string {
		resp, err := http.Get("http://" + listen + "/page")
		require.NoError(t, err)
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.Header.Get("X-Cache")
	}
	assert.Equal(t, "MISS", get())

	for range 3 {
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGHUP))
		c.waitLog(t, "SIGHUP: nothing to reload")
	}
	assert.Equal(t, "HIT", get(), "still serving, and the store kept")
	assert.Equal(t, int64(1), o.hits.Load())

	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, c.exitCode(t))
}
