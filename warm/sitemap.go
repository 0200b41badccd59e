package warm

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/isrproxy/isrproxy/cache"
)

// sitemap is one sitemap to fetch.
type sitemap struct {
	target
	depth int // 1 for WARM_SITEMAP itself
}

// maxSkipLogs bounds the skipped sitemap URLs logged one by one; the
// count goes on in the result.
const maxSkipLogs = 10

// sitemaps fetches WARM_SITEMAP for each host and fills the pages it
// lists, following sitemap indexes down to MaxDepth.
func (w *warmer) sitemaps(ctx context.Context, res *Result) {
	var queue []sitemap
	for _, host := range w.opts.Hosts {
		queue = append(queue, sitemap{target{host: host, https: !w.opts.HTTP, path: w.opts.Sitemap}, 1})
	}
	fetched := map[target]bool{}
	urls := 0
	for len(queue) > 0 && ctx.Err() == nil {
		sm := queue[0]
		queue = queue[1:]
		if fetched[sm.target] {
			continue
		}
		if len(fetched) == w.opts.MaxSitemaps {
			w.log.Warn("warm-up: too many sitemaps, the rest are not fetched", "limit", w.opts.MaxSitemaps)
			return
		}
		fetched[sm.target] = true
		body, err := w.fetchSitemap(ctx, sm.target)
		if err != nil {
			w.log.Warn("warm-up: sitemap not used", "host", sm.host, "path", sm.path, "err", err)
			continue
		}
		locs, index, err := parseSitemap(body, w.opts.MaxURLs-urls)
		if err != nil {
			w.log.Warn("warm-up: malformed sitemap, using the URLs read before the error",
				"host", sm.host, "path", sm.path, "urls", len(locs), "err", err)
		}
		for _, loc := range locs {
			t, why := w.targetOf(loc)
			if why != "" {
				if res.Skipped++; res.Skipped <= maxSkipLogs {
					w.log.Warn("warm-up: sitemap URL skipped", "sitemap", sm.path, "url", loc, "why", why)
				}
				continue
			}
			if index {
				if sm.depth < w.opts.MaxDepth {
					queue = append(queue, sitemap{t, sm.depth + 1})
				} else {
					w.log.Warn("warm-up: sitemap index too deep, not followed", "sitemap", sm.path, "url", loc, "depth", w.opts.MaxDepth)
				}
				continue
			}
			if urls == w.opts.MaxURLs {
				w.log.Warn("warm-up: too many sitemap URLs, the rest are not filled", "limit", w.opts.MaxURLs)
				return
			}
			urls++
			w.fill(ctx, t)
		}
	}
}

// targetOf is the page a sitemap URL names, or why it is skipped: only
// http and https URLs on a host and scheme served, with no user info.
func (w *warmer) targetOf(loc string) (target, string) {
	u, err := url.Parse(strings.TrimSpace(loc))
	switch {
	case err != nil:
		return target{}, "not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return target{}, fmt.Sprintf("scheme %q is not served", u.Scheme)
	case u.Scheme == "http" && !w.opts.HTTP, u.Scheme == "https" && !w.opts.HTTPS:
		return target{}, fmt.Sprintf("scheme %q is not served here", u.Scheme)
	case u.User != nil || u.Opaque != "" || u.Host == "":
		return target{}, "not a plain URL"
	}
	https := u.Scheme == "https"
	host := cache.NormalizeHost(u.Host, https)
	if !slices.Contains(w.opts.Hosts, host) {
		return target{}, fmt.Sprintf("host %q is not served", u.Host)
	}
	u.Fragment, u.RawFragment = "", ""
	return target{host: host, https: https, path: requestTarget(u)}, ""
}

// fetchSitemap GETs a sitemap through the page handler and returns it
// decompressed.
func (w *warmer) fetchSitemap(ctx context.Context, t target) ([]byte, error) {
	if err := w.pace.wait(ctx); err != nil {
		return nil, err
	}
	limit := w.opts.MaxSitemapBytes
	rec := newRecorder(limit)
	w.opts.Pages.ServeHTTP(rec, w.request(ctx, t))
	switch {
	case rec.status != http.StatusOK:
		return nil, fmt.Errorf("answered %d", rec.status)
	case rec.over:
		return nil, fmt.Errorf("larger than %d MiB", limit>>20)
	}
	body := rec.body
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b { // a .xml.gz sitemap
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		plain, err := io.ReadAll(io.LimitReader(zr, limit+1))
		switch {
		case err != nil:
			return nil, fmt.Errorf("gzip: %w", err)
		case int64(len(plain)) > limit:
			return nil, fmt.Errorf("larger than %d MiB once decompressed", limit>>20)
		}
		body = plain
	}
	return body, nil
}

// errNotSitemap is a document whose root is neither urlset nor sitemapindex.
var errNotSitemap = errors.New("not a sitemap: the root element is neither urlset nor sitemapindex")

// parseSitemap returns the <loc> URLs of a urlset (index false) or a
// sitemapindex (index true), at most max of them. On malformed XML it
// returns those read before the error, and the error.
func parseSitemap(body []byte, max int) (locs []string, index bool, err error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var stack []string
	var loc strings.Builder
	inLoc := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if len(stack) == 0 && !index && locs == nil {
				return nil, false, nil
			}
			return locs, index, nil
		}
		if err != nil {
			return locs, index, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if len(stack) == 0 {
				switch name {
				case "urlset":
				case "sitemapindex":
					index = true
				default:
					return nil, false, errNotSitemap
				}
			}
			stack = append(stack, name)
			if name == "loc" && len(stack) == 3 && (stack[1] == "url" || stack[1] == "sitemap") {
				inLoc = true
				loc.Reset()
			}
		case xml.CharData:
			if inLoc {
				loc.Write(t)
			}
		case xml.EndElement:
			if inLoc && t.Name.Local == "loc" {
				inLoc = false
				if s := strings.TrimSpace(loc.String()); s != "" {
					if len(locs) == max {
						return locs, index, nil
					}
					locs = append(locs, s)
				}
			}
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
}
