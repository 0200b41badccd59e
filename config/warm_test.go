package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadSnapshotAndWarmValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	paths := filepath.Join(dir, "paths.txt")
	require.NoError(t, os.WriteFile(paths, []byte("/\n/about\n"), 0o600))
	cfg, err := Load(testEnviron(
		"SNAPSHOT_PATH", filepath.Join(dir, "pages.snap"),
		"SNAPSHOT_INTERVAL", "0",
		"WARM_SITEMAP", "/sitemap.xml?lang=en",
		"WARM_PATHS_FILE", paths,
		"WARM_RATE", "0.5",
		"ALLOWED_HOSTS", "www.example.com",
	))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "pages.snap"), cfg.SnapshotPath)
	assert.Equal(t, Duration(0), cfg.SnapshotInterval)
	assert.Equal(t, "/sitemap.xml?lang=en", cfg.WarmSitemap)
	assert.Equal(t, paths, cfg.WarmPathsFile)
	assert.Equal(t, Rate(0.5), cfg.WarmRate)

	cfg, err = Load(testEnviron("SNAPSHOT_INTERVAL", "30s", "WARM_RATE", "25"))
	require.NoError(t, err)
	assert.Equal(t, Duration(30*time.Second), cfg.SnapshotInterval)
	assert.Equal(t, Rate(25), cfg.WarmRate)
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "the write check leaves nothing behind")
}

func TestLoadBadSnapshotAndWarmValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o600))
	hosts := []string{"ALLOWED_HOSTS", "www.example.com"}
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"SNAPSHOT_PATH", filepath.Join(dir, "missing", "pages.snap")},
			`SNAPSHOT_PATH: the directory of "` + filepath.Join(dir, "missing", "pages.snap") + `" cannot be used: no such file or directory`},
		{[]string{"SNAPSHOT_PATH", filepath.Join(notDir, "pages.snap")},
			`SNAPSHOT_PATH: "` + notDir + `" is not a directory, so "` + filepath.Join(notDir, "pages.snap") + `" cannot be written`},
		{[]string{"SNAPSHOT_PATH", dir},
			`SNAPSHOT_PATH: "` + dir + `" is a directory (name a file in it, e.g. "` + filepath.Join(dir, "isrproxy.snapshot") + `")`},
		{[]string{"SNAPSHOT_INTERVAL", "5"}, `SNAPSHOT_INTERVAL: "5" is not a duration (use a unit, e.g. "30s")`},
		{[]string{"SNAPSHOT_INTERVAL", "-1m"}, `SNAPSHOT_INTERVAL: "-1m" must not be negative`},
		{append([]string{"WARM_SITEMAP", "https://evil.example/sitemap.xml"}, hosts...),
			`WARM_SITEMAP: "https://evil.example/sitemap.xml" is not a path on the origin (use a path such as "/sitemap.xml")`},
		{append([]string{"WARM_SITEMAP", "//evil.example/sitemap.xml"}, hosts...),
			`WARM_SITEMAP: "//evil.example/sitemap.xml" is not a path on the origin (use a path such as "/sitemap.xml")`},
		{append([]string{"WARM_SITEMAP", "sitemap.xml"}, hosts...),
			`WARM_SITEMAP: "sitemap.xml" is not a path on the origin (use a path such as "/sitemap.xml")`},
		{[]string{"WARM_SITEMAP", "/sitemap.xml"},
			`WARM_SITEMAP: needs ALLOWED_HOSTS: warm-up fills the pages of the hosts served, and any host is served when ALLOWED_HOSTS is empty`},
		{append([]string{"WARM_PATHS_FILE", filepath.Join(dir, "nope.txt")}, hosts...),
			`WARM_PATHS_FILE: cannot read "` + filepath.Join(dir, "nope.txt") + `": no such file or directory`},
		{append([]string{"WARM_PATHS_FILE", dir}, hosts...),
			`WARM_PATHS_FILE: "` + dir + `" is a directory, not a file of paths`},
		{[]string{"WARM_RATE", "fast"}, `WARM_RATE: "fast" is not a rate (use fills per second, e.g. "10" or "0.5")`},
		{[]string{"WARM_RATE", "0"}, `WARM_RATE: "0" must be greater than 0`},
		{[]string{"WARM_RATE", "-2"}, `WARM_RATE: "-2" must be greater than 0`},
		{[]string{"WARM_RATE", "NaN"}, `WARM_RATE: "NaN" is not a rate (use fills per second, e.g. "10" or "0.5")`},
	}
	for _, tt := range tests {
		assert.Equal(t, []string{tt.want}, loadProblems(t, testEnviron(tt.env...)), "%q", tt.env)
	}
	// Both warm-up variables without ALLOWED_HOSTS: a line for each.
	paths := filepath.Join(dir, "paths.txt")
	require.NoError(t, os.WriteFile(paths, []byte("/\n"), 0o600))
	problems := loadProblems(t, testEnviron("WARM_SITEMAP", "/sitemap.xml", "WARM_PATHS_FILE", paths))
	assert.Len(t, problems, 2)
	assert.Contains(t, problems[1], "WARM_PATHS_FILE: needs ALLOWED_HOSTS")
}
