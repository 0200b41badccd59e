package main

// The admin dashboard at / on ADMIN_ADDR, as a browser shows it: headless
// Chromium loads the page of a running isrproxy after some traffic and
// revalidations, and what it rendered is read back from the DOM.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const chromiumPath = "/usr/bin/chromium"

// chromium returns the browser, skipping the test when it is not installed,
// except in CI (CI=true), which installs it: there its absence fails.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing: .ci/run installs Debian's chromium (%v)", chromiumPath, err)
		}
		t.Skipf("%s is missing (apt-get install -y chromium); CI runs this test", chromiumPath)
	}
	return chromiumPath
}

// runChromium runs headless Chromium with args and the page's URL and
// returns what it printed.
func runChromium(t *testing.T, browser, pageURL string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(),
	}, args...)
	cmd := exec.CommandContext(ctx, browser, append(argv, pageURL)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	return stdout.String()
}

// rowsWith returns the table rows of dom whose cells contain every one of cells.
func rowsWith(dom string, cells ...string) []string {
	var rows []string
	for _, row := range strings.Split(dom, "<tr>")[1:] {
		row, _, _ = strings.Cut(row, "</tr>")
		all := true
		for _, c := range cells {
			all = all && strings.Contains(row, c)
		}
		if all {
			rows = append(rows, row)
		}
	}
	return rows
}

func TestDashboardInChromium(t *testing.T) {
	browser := chromium(t)
	var failing atomic.Bool
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" && failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		time.Sleep(20 * time.Millisecond) // an origin latency to draw
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Tag", "post-1")
		fmt.Fprintf(w, "<h1>%s</h1>%s", r.URL.Path, strings.Repeat("<p>body</p>", 50))
	})
	p := startProxy(t, o.URL, map[string]string{"LOG_LEVEL": "error"})
	host := hostPort(p.URL)

	for _, path := range []string{"/blog/hello/", "/", "/flaky"} {
		require.Equal(t, "MISS", p.get(path).Header.Get("X-Cache"), path)
	}
	for range 5 {
		require.Equal(t, "HIT", p.get("/blog/hello/").Header.Get("X-Cache"))
	}
	require.Equal(t, "BYPASS", p.get("/blog/hello/", "Authorization", "Bearer editor").Header.Get("X-Cache"))
	require.Equal(t, http.StatusOK, p.revalidate("path=/blog/hello/").Status)
	failing.Store(true)
	require.Equal(t, http.StatusBadGateway, p.revalidate("path=/flaky").Status)

	dom := runChromium(t, browser, p.Admin+"/", "--dump-dom")

	assert.Regexp(t, `<b id="hits">5</b>`, dom, "the hit count")
	assert.Regexp(t, `<span id="misses">3</span>`, dom, "the miss count")
	assert.Regexp(t, `<b id="entries">3</b>`, dom, "the stored pages")
	assert.Regexp(t, `<b id="ratio">62\.5 %</b>`, dom, "5 hits of 8 cacheable answers")
	assert.Len(t, rowsWith(dom, `<td class="path">/blog/hello/</td>`, `>refetch<`, `>replaced</td>`, `<td>`+host+`</td>`), 1,
		"the revalidated path with its outcome")
	assert.Len(t, rowsWith(dom, `<td class="path">/flaky</td>`, `>failed</td>`, `origin status 503`), 1,
		"the failed revalidation with its error")

	for _, id := range []string{"requests", "latency"} {
		section := regexp.MustCompile(`(?s)<section id="` + id + `">.*?</section>`).FindString(dom)
		require.Contains(t, section, "<svg", "the %s chart", id)
		paths := regexp.MustCompile(`<path class="(\w+)" d="([^"]+)"`).FindAllStringSubmatch(section, -1)
		require.NotEmpty(t, paths, "the %s chart has paths with data", id)
		for _, m := range paths {
			assert.Regexp(t, `^M[\d.]+ [\d.]+H`, m[2], "%s: path %s", id, m[1])
		}
	}
	assert.NotContains(t, dom, "no page requests in the last 15 minutes")
	assert.Contains(t, dom, "Single node")
	assert.NotContains(t, dom, apiSecret, "the page carries no secret")
	assert.NotRegexp(t, `(?i)(src|href)="https?:`, dom, "no external asset")

	// The lookup box: the status of one key.
	lookup := p.Admin + "/?" + url.Values{"path": {"/blog/hello/"}, "host": {host}}.Encode()
	dom = runChromium(t, browser, lookup, "--dump-dom")
	status := regexp.MustCompile(`(?s)<div id="status">.*?</div>`).FindString(dom)
	assert.Contains(t, status, "is stored: 1 variant(s)")
	assert.Contains(t, status, `<td class="outcome">fresh</td>`)
	assert.Contains(t, status, "post-1")
	assert.Contains(t, status, "replaced", "the key's last revalidation")
	dom = runChromium(t, browser, p.Admin+"/?path=/nowhere&host="+url.QueryEscape(host), "--dump-dom")
	assert.Contains(t, dom, "is not stored")

	// Once, a picture, for a person to look at (go test -artifacts keeps it).
	shot := filepath.Join(t.ArtifactDir(), "dashboard.png")
	runChromium(t, browser, p.Admin+"/", "--screenshot="+shot, "--window-size=1200,1500", "--hide-scrollbars")
	info, err := os.Stat(shot)
	require.NoError(t, err, "the screenshot")
	assert.Greater(t, info.Size(), int64(10_000), "a screenshot of a drawn page")
	t.Logf("screenshot: %s", shot)
}
