package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"mime"
	"net/url"
	"strings"

	"golang.org/x/net/html"

	"github.com/isrproxy/isrproxy/cache"
)

// maxLinks bounds the links kept per page: a page listing thousands of
// others links to the first maxLinks of them only, so that the reverse
// index stays bounded. Each link kept counts against CACHE_MAX_BYTES with
// its page.
const maxLinks = 500

// links reads the same-host links of a response that is about to be
// stored: every href and src of an HTML body, and the Location of a
// redirect, each as the target of the key it names (escaped path plus
// normalised query), distinct, at most maxLinks. It runs once per stored
// page, before the body is compressed, never on a hit; a revalidation with
// linked=1 then finds through them the pages that show a revalidated one
// (README.md#linked-pages).
func (b *builder) links(key cache.Key, f *fetched) []string {
	base := &url.URL{Scheme: "http", Host: key.Host, Path: key.Path, RawPath: key.Path, RawQuery: key.Query}
	l := linkSet{key: key, ignore: b.ignore, keep: b.keep}
	if loc := f.header.Get("Location"); loc != "" {
		l.add(base, loc)
	}
	if !isHTML(f.header.Get("Content-Type")) || len(f.body) == 0 {
		return l.list
	}
	body := f.body
	switch enc := strings.ToLower(strings.TrimSpace(f.header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		// Decompressed once, here, at store time: the stored body stays
		// compressed and hits never parse it.
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return l.list
		}
		plain, err := io.ReadAll(io.LimitReader(zr, b.maxPlain))
		if err != nil {
			return l.list
		}
		body = plain
	default:
		return l.list
	}
	l.scan(base, body)
	return l.list
}

// isHTML reports whether a Content-Type names text/html.
func isHTML(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/html"
}

// linkSet gathers the distinct link targets of one page.
type linkSet struct {
	key    cache.Key
	ignore cache.Matcher
	keep   cache.Matcher
	seen   map[string]struct{} // targets kept
	raw    map[string]struct{} // attribute values already resolved, kept or not
	list   []string
}

// full reports whether maxLinks are kept.
func (l *linkSet) full() bool { return len(l.list) >= maxLinks }

// scan tokenizes body and adds the value of every href and src attribute,
// resolved against base (or the document's <base href>).
func (l *linkSet) scan(base *url.URL, body []byte) {
	z := html.NewTokenizer(bytes.NewReader(body))
	for !l.full() {
		switch z.Next() {
		case html.ErrorToken:
			return // io.EOF, or a limit: what was read counts
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if !hasAttr || !linkElement(name) {
				continue // reading attributes copies them: only where links are
			}
			isBase := string(name) == "base"
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "href":
					if isBase {
						if u, err := base.Parse(strings.TrimSpace(string(v))); err == nil {
							base = u
						}
						continue
					}
					l.addRaw(base, v)
				case "src":
					l.addRaw(base, v)
				}
			}
		}
	}
}

// addRaw is add for an attribute value, each distinct value resolved once
// (a listing repeats its links; the lookup does not copy v).
func (l *linkSet) addRaw(base *url.URL, v []byte) {
	if _, done := l.raw[string(v)]; done {
		return
	}
	if l.raw == nil {
		l.raw = make(map[string]struct{})
	}
	ref := string(v)
	l.raw[ref] = struct{}{}
	l.add(base, ref)
}

// linkElement reports an element whose href or src names a URL: anchors,
// areas, links and base; images, scripts, frames and media.
func linkElement(name []byte) bool {
	switch string(name) {
	case "a", "area", "link", "base", "img", "script", "iframe", "frame", "source", "embed",
		"audio", "video", "track", "input", "image":
		return true
	}
	return false
}

// add resolves ref against base and keeps it when it names a page of the
// same host.
func (l *linkSet) add(base *url.URL, ref string) {
	if l.full() {
		return
	}
	ref = strings.TrimSpace(ref)
	if ref == "" || ref[0] == '#' {
		return
	}
	u, err := base.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return
	}
	if u.Host != l.key.Host && cache.NormalizeHost(u.Host, u.Scheme == "https") != l.key.Host {
		return
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	k, err := cache.NewKey(l.key.Host, path, u.RawQuery, l.ignore, l.keep)
	if err != nil {
		return
	}
	target := k.Target()
	if _, dup := l.seen[target]; dup {
		return
	}
	if l.seen == nil {
		l.seen = make(map[string]struct{})
	}
	l.seen[target] = struct{}{}
	l.list = append(l.list, target)
}
