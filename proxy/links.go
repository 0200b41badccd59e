package proxy

import (
	"bytes"
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
// stored: every href and src of doc, its HTML body (decompressed; nil when
// it is not HTML), and the Location of a redirect, each as the target of
// the key it names (escaped path plus normalised query), distinct, at most
// maxLinks. It runs once per stored page, never on a hit; a revalidation
// with linked=1 then finds through them the pages that show a revalidated
// one (README.md#linked-pages).
func (b *builder) links(key cache.Key, f *fetched, doc []byte) []string {
	base := &url.URL{Scheme: "http", Host: key.Host, Path: key.Path, RawPath: key.Path, RawQuery: key.Query}
	l := linkSet{key: key, ignore: b.ignore, keep: b.keep}
	if loc := f.header.Get("Location"); loc != "" {
		l.add(base, loc)
	}
	if len(doc) > 0 {
		l.scan(base, doc)
	}
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
	path, query, ok := "", "", false
	if base.Host == l.key.Host {
		path, ok = plainAbsolutePath(ref)
	}
	if !ok {
		u, err := base.Parse(ref)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return
		}
		if u.Host != l.key.Host && cache.NormalizeHost(u.Host, u.Scheme == "https") != l.key.Host {
			return
		}
		path, query = u.EscapedPath(), u.RawQuery
		if path == "" {
			path = "/"
		}
	}
	k, err := cache.NewKey(l.key.Host, path, query, l.ignore, l.keep)
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

// plainAbsolutePath returns ref as the escaped path it names on the base's
// own host when ref is a plain absolute path ("/events/42"): no query,
// fragment, escape, dot segment or empty segment, only bytes that a path
// keeps as they are. Resolving it with net/url would give the same path
// for two allocations; most of a page's links are such paths.
func plainAbsolutePath(ref string) (string, bool) {
	if len(ref) == 0 || ref[0] != '/' {
		return "", false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/':
			if i+1 < len(ref) && (ref[i+1] == '/' || ref[i+1] == '.') {
				return "", false // "//host", an empty segment, a dot segment
			}
		case strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0:
		default:
			return "", false
		}
	}
	return ref, true
}
