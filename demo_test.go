package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer safe for the demo's writer and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The demo does what it prints, step by step: a miss, a hit, the editor's
// save on the sample site itself (not through isrproxy, which still serves
// version 1), the webhook that answers "replaced", and version 2 from memory.
func TestDemoDoesWhatItPrints(t *testing.T) {
	out := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cli(ctx, []string{"demo"}, map[string]string{
			"LISTEN_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0", "TLS_ADDR": "127.0.0.1:0", "GOMEMLIMIT": "off", "GOGC": "100",
		}, out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, 0, code)
		case <-time.After(10 * time.Second):
			t.Error("the demo did not stop")
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Ctrl-C stops it.") }, 10*time.Second, 10*time.Millisecond)
	text := out.String()
	site := regexp.MustCompile(`sample site \(300 ms a page\) on (http://\S+)`).FindStringSubmatch(text)
	proxyURL := regexp.MustCompile(`behind isrproxy on (http://\S+)`).FindStringSubmatch(text)
	revalidate := regexp.MustCompile(`'(http://\S+/api/revalidate\?\S+)'`).FindStringSubmatch(text)
	require.NotNil(t, site, text)
	require.NotNil(t, proxyURL, text)
	require.NotNil(t, revalidate, text)
	assert.NotEqual(t, site[1], proxyURL[1], "the editor saves on the CMS, not through isrproxy")

	get := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(body)
	}
	page := proxyURL[1] + "/events/42"
	resp, body := get(page)
	assert.Equal(t, "MISS", resp.Header.Get("X-Cache"))
	assert.Contains(t, body, `content="1"`)
	resp, _ = get(page)
	assert.Equal(t, "HIT", resp.Header.Get("X-Cache"))

	save, err := http.Post(site[1]+"/events/42", "text/plain", nil)
	require.NoError(t, err)
	save.Body.Close()
	resp, body = get(page)
	assert.Equal(t, "HIT", resp.Header.Get("X-Cache"))
	assert.Contains(t, body, `content="1"`, "the stored page until the webhook")

	resp, body = get(revalidate[1])
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, `"outcome":"replaced"`)

	resp, body = get(page)
	assert.Equal(t, "HIT", resp.Header.Get("X-Cache"))
	assert.Contains(t, body, `content="2"`)

	// Over HTTPS and HTTP/2, as curl -k --http2 does: the https page is
	// its own variant, filled once and then served from memory.
	secure := regexp.MustCompile(`curl -k --http2 .*(https://\S+/events/42)`).FindStringSubmatch(text)
	require.NotNil(t, secure, text)
	client := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the demo's certificate is self-signed
	defer client.CloseIdleConnections()
	for _, want := range []string{"MISS", "HIT"} {
		resp, err := client.Get(secure[1])
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "HTTP/2.0", resp.Proto)
		assert.Equal(t, want, resp.Header.Get("X-Cache"))
		assert.Contains(t, string(body), `content="2"`)
	}
}
