package config

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// Rate is a number of events per second, greater than 0: a whole or
// decimal number ("10", "0.5").
type Rate float64

// UnmarshalText parses a rate.
func (r *Rate) UnmarshalText(text []byte) error {
	s := string(text)
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(s, "xXpPnN_"):
		return fmt.Errorf("%q is not a rate (use fills per second, e.g. \"10\" or \"0.5\")", s)
	case v <= 0:
		return fmt.Errorf("%q must be greater than 0", s)
	case v > 100_000:
		return fmt.Errorf("%q is too large (at most 100000 per second)", s)
	}
	*r = Rate(v)
	return nil
}

// String returns the rate as a decimal number.
func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'f', -1, 64) }

// MarshalText returns the rate as String does.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// warm checks the snapshot and warm-up variables: what can be known at
// start about the files they name, and that warm-up knows which hosts to
// fill.
func (l *loader) warm(c *Config) {
	if c.SnapshotPath != "" {
		if p := snapshotPathProblem(c.SnapshotPath); p != "" {
			l.fail("SNAPSHOT_PATH", "%s", p)
		}
	}
	if c.WarmSitemap != "" && !validWarmPath(c.WarmSitemap) {
		l.fail("WARM_SITEMAP", "%q is not a path on the origin (use a path such as \"/sitemap.xml\")", c.WarmSitemap)
	}
	if c.WarmPathsFile != "" {
		if p := readableFileProblem(c.WarmPathsFile); p != "" {
			l.fail("WARM_PATHS_FILE", "%s", p)
		}
	}
	// Warm-up fills the allowed hosts' pages: with any host served, it
	// cannot know which host visitors use.
	if l.ok("ALLOWED_HOSTS") && len(c.AllowedHosts) == 0 {
		for _, name := range []string{"WARM_SITEMAP", "WARM_PATHS_FILE"} {
			if _, set := l.environ[name]; set {
				l.fail(name, "needs ALLOWED_HOSTS: warm-up fills the pages of the hosts served, and any host is served when ALLOWED_HOSTS is empty")
			}
		}
	}
}

// snapshotPathProblem says why the snapshot cannot be written at path, ""
// for nothing. It writes and removes a file beside it to find out.
func snapshotPathProblem(path string) string {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return fmt.Sprintf("%q is a directory (name a file in it, e.g. %q)", path, filepath.Join(path, "isrproxy.snapshot"))
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Sprintf("the directory of %q cannot be used: %v", path, unwrapPath(err))
	case !info.IsDir():
		return fmt.Sprintf("%q is not a directory, so %q cannot be written", dir, path)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".check-*")
	if err != nil {
		return fmt.Sprintf("cannot write in %q: %v", dir, unwrapPath(err))
	}
	f.Close()
	os.Remove(f.Name())
	return ""
}

// readableFileProblem says why path cannot be read as a file, "" for nothing.
func readableFileProblem(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("cannot read %q: %v", path, unwrapPath(err))
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return fmt.Sprintf("cannot read %q: %v", path, err)
	case info.IsDir():
		return fmt.Sprintf("%q is a directory, not a file of paths", path)
	}
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil && info.Size() > 0 {
		return fmt.Sprintf("cannot read %q: %v", path, err)
	}
	return ""
}

// unwrapPath drops the operation and path an *os.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// validWarmPath reports an origin-form path, optionally with a query: one
// leading "/", no scheme, authority or fragment, no space or control
// character.
func validWarmPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "#\\ ") ||
		strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return false
	}
	u, err := url.ParseRequestURI(s)
	return err == nil && u.Scheme == "" && u.Host == ""
}
