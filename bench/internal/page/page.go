// Package page renders the sample site's HTML pages for the benchmark
// origin and the Go ceiling, so that both serve exactly the same bytes.
//
// A page is a function of its number and its version only: the article,
// navigation, lists and footer come from a generator seeded by the page
// number, and the version shows in a <meta name="version"> marker and in
// the byline. Pages are about TargetSize bytes and compress 4–6× with
// gzip, like real markup.
package page

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
)

// TargetSize is the approximate size of a rendered page in bytes.
const TargetSize = 16 << 10

var zipfS = 1.3

// MaxPage is the highest page number served (paths /page/0 … /page/MaxPage).
const MaxPage = 999999

// VersionMarker is the text that precedes a page's version in its body:
// the version is the decimal number between it and the next quote.
const VersionMarker = `<meta name="version" content="`

// ParseVersion returns the version a rendered page body states, or -1.
func ParseVersion(body []byte) int {
	i := bytes.Index(body, []byte(VersionMarker))
	if i < 0 {
		return -1
	}
	rest := body[i+len(VersionMarker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return -1
	}
	v, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return -1
	}
	return v
}

// ParsePath returns N for a path of the form /page/N, or -1.
func ParsePath(path string) int {
	s, ok := strings.CutPrefix(path, "/page/")
	if !ok || s == "" || len(s) > 7 || (len(s) > 1 && s[0] == '0') {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxPage {
		return -1
	}
	return n
}

// Path returns the URL path of page n.
func Path(n int) string { return "/page/" + strconv.Itoa(n) }

// Tag returns the Cache-Tag value of page n.
func Tag(n int) string { return "page-" + strconv.Itoa(n) }

type gen struct {
	r    *rand.Rand
	zipf *rand.Zipf
	// Zipf draws for nouns, adjectives, verbs and adverbs.
	zn, za, zb, zv *rand.Zipf
	// The page's topic vocabulary: a few dozen words drawn from each
	// category, which its prose repeats as a real article does.
	tn, ta, tb, tv []string
	b              bytes.Buffer
	n              int
}

// word returns a word for titles, lists and tags: mostly from the page's
// topic, sometimes from the whole vocabulary.
func (g *gen) word() string {
	if g.intn(4) == 0 {
		return words[g.zipf.Uint64()]
	}
	return g.noun()
}

func (g *gen) intn(n int) int { return g.r.IntN(n) }

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *gen) otherPage() int {
	// Links go mostly to nearby pages, sometimes anywhere on the site.
	if g.intn(10) == 0 {
		return g.intn(MaxPage + 1)
	}
	m := g.n + g.intn(200) - 100
	if m < 0 {
		m = -m
	}
	return m
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (g *gen) title(min, max int) string {
	k := min + g.intn(max-min+1)
	parts := make([]string, k)
	for i := range parts {
		w := g.word()
		if i == 0 || len(w) > 3 {
			w = capitalize(w)
		}
		parts[i] = w
	}
	return strings.Join(parts, " ")
}

func (g *gen) name() string { return g.pick(firstNames) + " " + g.pick(lastNames) }

func (g *gen) date() (iso, human string) {
	y := 2019 + g.n%5 + g.intn(2)
	m := 1 + g.intn(12)
	d := 1 + g.intn(28)
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d), fmt.Sprintf("%s %d, %d", months[m-1], d, y)
}

// Sizes of a page's topic vocabulary.
var topicNouns, topicOthers = 16, 6

// topic picks k distinct words of list, in random order.
func (g *gen) topic(list []string, k int) []string {
	k = min(k, len(list))
	idx := g.r.Perm(len(list))[:k]
	out := make([]string, k)
	for i, j := range idx {
		out[i] = list[j]
	}
	return out
}

func (g *gen) from(list []string, z *rand.Zipf) string { return list[z.Uint64()] }

func (g *gen) noun() string { return g.from(g.tn, g.zn) }

// nounPhrase writes a determiner, maybe an adjective, and a noun; now and
// then as a link to another page, or with an "of" complement.
func (g *gen) nounPhrase() {
	b := &g.b
	if g.intn(14) == 0 {
		b.WriteString(g.name())
		return
	}
	link := g.intn(25) == 0
	if link {
		fmt.Fprintf(b, `<a href="/page/%d">`, g.otherPage())
	}
	b.WriteString(g.pick(determiners))
	b.WriteByte(' ')
	if g.intn(3) == 0 {
		adj := g.from(g.ta, g.za)
		switch g.intn(40) {
		case 0:
			fmt.Fprintf(b, "<em>%s</em> ", adj)
		case 1:
			fmt.Fprintf(b, "<strong>%s</strong> ", adj)
		default:
			b.WriteString(adj)
			b.WriteByte(' ')
		}
	}
	b.WriteString(g.noun())
	if link {
		b.WriteString("</a>")
	}
	if g.intn(5) == 0 {
		b.WriteString(" of the ")
		b.WriteString(g.noun())
	}
}

func (g *gen) verbPhrase() {
	b := &g.b
	b.WriteString(g.pick(auxiliaries))
	b.WriteByte(' ')
	if g.intn(4) == 0 {
		b.WriteString(g.from(g.tv, g.zv))
		b.WriteByte(' ')
	}
	b.WriteString(g.from(g.tb, g.zb))
	b.WriteByte(' ')
	g.nounPhrase()
	if g.intn(2) == 0 {
		b.WriteByte(' ')
		b.WriteString(g.pick(prepositions))
		b.WriteByte(' ')
		g.nounPhrase()
	}
}

// sentence writes one sentence from a small English grammar: the function
// words and phrase shapes repeat the way they do in real prose.
func (g *gen) sentence() {
	b := &g.b
	start := b.Len()
	switch g.intn(6) {
	case 0:
		b.WriteString(g.pick(prepositions))
		b.WriteByte(' ')
		g.nounPhrase()
		b.WriteString(", ")
		g.nounPhrase()
		b.WriteByte(' ')
		g.verbPhrase()
	case 1:
		g.nounPhrase()
		b.WriteString(" is ")
		b.WriteString(g.pick(determiners))
		b.WriteByte(' ')
		b.WriteString(g.from(g.ta, g.za))
		b.WriteByte(' ')
		b.WriteString(g.noun())
		b.WriteString(" of ")
		g.nounPhrase()
	default:
		g.nounPhrase()
		b.WriteByte(' ')
		g.verbPhrase()
	}
	if g.intn(3) == 0 {
		b.WriteString(", ")
		b.WriteString(g.pick(conjunctions))
		b.WriteByte(' ')
		g.nounPhrase()
		b.WriteByte(' ')
		g.verbPhrase()
	}
	// Capitalise the first letter (it may follow a tag).
	p := b.Bytes()[start:]
	for i, c := range p {
		if c == '<' {
			for i < len(p) && p[i] != '>' {
				i++
			}
			continue
		}
		if c >= 'a' && c <= 'z' {
			p[i] = c - 'a' + 'A'
		}
		break
	}
	if g.intn(12) == 0 {
		b.WriteString("? ")
	} else {
		b.WriteString(". ")
	}
}

func (g *gen) paragraph() {
	g.b.WriteString(`<p class="mb-5 text-lg leading-relaxed text-slate-800 dark:text-slate-200">`)
	k := 2 + g.intn(5)
	for i := 0; i < k; i++ {
		g.sentence()
	}
	g.b.WriteString("</p>\n")
}

func (g *gen) list() {
	tag := "ul"
	if g.intn(3) == 0 {
		tag = "ol"
	}
	fmt.Fprintf(&g.b, "<%s class=\"post-list\">\n", tag)
	k := 3 + g.intn(5)
	for i := 0; i < k; i++ {
		g.b.WriteString(`  <li class="ml-6 mb-1 pl-1 text-lg leading-relaxed text-slate-800 marker:text-slate-400">`)
		if g.intn(3) == 0 {
			fmt.Fprintf(&g.b, `<a href="/page/%d">%s</a>: `, g.otherPage(), g.title(1, 3))
		}
		m := 3 + g.intn(9)
		for j := 0; j < m; j++ {
			if j > 0 {
				g.b.WriteByte(' ')
			}
			g.b.WriteString(g.word())
		}
		g.b.WriteString("</li>\n")
	}
	fmt.Fprintf(&g.b, "</%s>\n", tag)
}

func (g *gen) figure(k int) {
	img := fmt.Sprintf("/media/%d/%d-%s", g.n%1000, k, g.word())
	fmt.Fprintf(&g.b, `<figure class="wp-block-image size-large post-figure">
  <img src="%s-1024x576.jpg" srcset="%s-300x169.jpg 300w, %s-768x432.jpg 768w, %s-1024x576.jpg 1024w, %s-1536x864.jpg 1536w" sizes="(max-width: 768px) 100vw, 768px" alt="%s" width="1024" height="576" class="wp-image-%d" loading="lazy" decoding="async">
  <figcaption class="wp-element-caption">%s. Photo: %s</figcaption>
</figure>
`, img, img, img, img, img, g.title(2, 5), g.n*10+k, g.title(3, 8), g.name())
}

func (g *gen) quote() {
	g.b.WriteString("<blockquote class=\"post-quote\">\n  <p>")
	g.sentence()
	g.sentence()
	fmt.Fprintf(&g.b, "</p>\n  <cite>%s</cite>\n</blockquote>\n", g.name())
}

func (g *gen) table() {
	g.b.WriteString("<table class=\"post-table\">\n  <thead><tr><th scope=\"col\">Item</th><th scope=\"col\">Place</th><th scope=\"col\">Count</th><th scope=\"col\">Change</th></tr></thead>\n  <tbody>\n")
	k := 3 + g.intn(5)
	for i := 0; i < k; i++ {
		fmt.Fprintf(&g.b, "    <tr><td>%s</td><td>%s</td><td>%d</td><td>%+.1f%%</td></tr>\n",
			capitalize(g.word()), g.title(1, 2), 10+g.intn(990), float64(g.intn(400)-200)/10)
	}
	g.b.WriteString("  </tbody>\n</table>\n")
}

var footerColumns = []string{"Sections", "The Gazette", "Help"}

var footerLinks = []string{"About us", "Contact", "Careers", "Advertise", "Newsletters",
	"Privacy policy", "Terms of use", "Cookie settings", "Corrections", "Accessibility"}

func (g *gen) navLinks(class string, k int) {
	for i := 0; i < k; i++ {
		fmt.Fprintf(&g.b, "        <li class=\"%s-item\"><a class=\"%s-link text-sm leading-6 text-slate-600 hover:text-slate-900\" href=\"/section/%s\">%s</a></li>\n",
			class, class, strings.ToLower(sections[(g.n+i)%len(sections)]), sections[(g.n+i)%len(sections)])
	}
}

// megaMenu renders the site's two-level navigation, which real themes
// print twice: once for desktop, once in the off-canvas mobile menu.
func (g *gen) megaMenu() []byte {
	var m bytes.Buffer
	k := 4
	for i := 0; i < k; i++ {
		sec := sections[(g.n/50+i)%len(sections)]
		slug := strings.ToLower(sec)
		fmt.Fprintf(&m, "      <li class=\"menu-item menu-item-type-taxonomy menu-item-object-category menu-item-has-children relative group\"><a class=\"nav-link block px-3 py-2 text-sm font-medium text-slate-700 hover:text-blue-700 focus:outline-none focus-visible:ring-2\" href=\"/section/%s\">%s</a>\n        <ul class=\"sub-menu\">\n", slug, sec)
		for j := 0; j < 1+g.intn(2); j++ {
			w := g.word()
			fmt.Fprintf(&m, "          <li class=\"menu-item menu-item-type-taxonomy menu-item-object-category\"><a class=\"nav-link block px-4 py-2 text-sm text-slate-600 hover:bg-slate-50 hover:text-blue-700\" href=\"/section/%s/%s\">%s</a></li>\n", slug, w, capitalize(w))
		}
		m.WriteString("        </ul>\n      </li>\n")
	}
	return m.Bytes()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Render returns the HTML of page n at the given version.
func Render(n, version int) []byte {
	g := &gen{n: n}
	seed := uint64(n)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	g.r = rand.New(rand.NewPCG(seed, seed^0xd1b54a32d192ed03))
	g.zipf = rand.NewZipf(g.r, zipfS, 2, uint64(len(words)-1))
	g.tn = g.topic(nouns, topicNouns)
	g.ta = g.topic(adjectives, topicOthers)
	g.tb = g.topic(verbs, topicOthers)
	g.tv = g.topic(adverbs, topicOthers/2)
	g.zn = rand.NewZipf(g.r, zipfS, 2, uint64(len(g.tn)-1))
	g.za = rand.NewZipf(g.r, zipfS, 2, uint64(len(g.ta)-1))
	g.zb = rand.NewZipf(g.r, zipfS, 2, uint64(len(g.tb)-1))
	g.zv = rand.NewZipf(g.r, zipfS, 2, uint64(len(g.tv)-1))
	g.b.Grow(TargetSize + 2048)

	title := g.title(3, 7)
	section := g.pick(sections)
	author := g.name()
	iso, human := g.date()
	descWords := make([]string, 12+g.intn(12))
	for i := range descWords {
		descWords[i] = g.word()
	}
	desc := capitalize(strings.Join(descWords, " ")) + "."
	b := &g.b
	fmt.Fprintf(b, `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  %s%d">
  <title>%s | %s | The Sample Gazette</title>
  <meta name="description" content="%s">
  <meta property="og:title" content="%s">
  <meta property="og:type" content="article">
  <meta property="og:url" content="/page/%d">
  <meta property="og:image" content="/media/%d/cover.jpg">
  <link rel="canonical" href="/page/%d">
  <link rel="stylesheet" href="/static/css/site.min.css?v=42">
  <link rel="icon" href="/static/favicon.ico">
  <script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle","headline":"%s","datePublished":"%s","articleSection":"%s","author":{"@type":"Person","name":"%s"},"version":%d}</script>
</head>
<body class="single single-post postid-%d section-%s">
<a class="skip-link screen-reader-text" href="#content">Skip to content</a>
<header class="site-header" role="banner">
  <div class="container">
    <a class="site-brand" href="/" rel="home">The Sample Gazette</a>
    <nav class="main-nav" aria-label="Main menu">
    <ul class="nav-list">
`, VersionMarker, version, title, section, desc, title, n, n%1000, n, title, iso, section, author, version, n, strings.ToLower(section))
	menu := g.megaMenu()
	b.Write(menu)
	fmt.Fprintf(b, `    </ul>
    </nav>
    <form class="search-form" role="search" action="/search" method="get"><label class="screen-reader-text" for="s">Search for:</label><input type="search" id="s" name="q" placeholder="Search the site"><button type="submit">Search</button></form>
  </div>
</header>
<main id="content" class="site-main container">
<div class="row">
<article id="post-%d" class="post type-post status-publish format-standard">
  <header class="entry-header">
    <p class="entry-section"><a href="/section/%s">%s</a></p>
    <h1 class="entry-title">%s</h1>
    <p class="entry-meta">Posted on <time class="entry-date published" datetime="%s">%s</time> by <span class="author vcard"><a class="url fn n" href="/author/%s">%s</a></span> · revision %d</p>
  </header>
  <div class="entry-content">
`, n, strings.ToLower(section), section, title, iso, human, strings.ToLower(strings.ReplaceAll(author, " ", "-")), author, version)

	// The footer is rendered now, so that the article can be sized to fit.
	saved := g.b
	g.b = bytes.Buffer{}
	g.footer(n)
	footer := g.b.Bytes()
	g.b = saved
	b = &g.b

	budget := TargetSize - len(footer)
	misses := 0
	for k := 0; misses < 8; k++ {
		mark := b.Len()
		if k > 0 && g.intn(3) == 0 {
			fmt.Fprintf(b, "<h2 id=\"section-%d\" class=\"mt-10 mb-4 text-2xl font-bold tracking-tight text-slate-900\">%s</h2>\n", k, g.title(2, 6))
		}
		switch r := g.intn(12); {
		case r < 7 || k < 2:
			g.paragraph()
		case r < 9:
			g.list()
		case r == 9:
			g.figure(k)
		case r == 10:
			g.quote()
		default:
			g.table()
		}
		if b.Len() > budget-120 {
			// Too big for what is left: drop it and try another.
			b.Truncate(mark)
			misses++
		}
	}
	// Close with a short paragraph that brings the page near TargetSize.
	b.WriteString("<p class=\"entry-updated\">Updated: ")
	for b.Len() < budget-40 {
		b.WriteString(g.word())
		b.WriteByte(' ')
	}
	b.WriteString("</p>\n")
	b.Write(footer)
	return b.Bytes()
}

func (g *gen) footer(n int) {
	b := &g.b
	fmt.Fprintf(b, "  </div>\n  <footer class=\"entry-footer\"><span class=\"tags-links\">Tagged ")
	for i, k := 0, 3+g.intn(4); i < k && i < len(g.tn); i++ {
		w := g.tn[i]
		fmt.Fprintf(b, "<a href=\"/tag/%s\" rel=\"tag\">%s</a> ", w, w)
	}
	b.WriteString("</span>\n")
	g.share(n)
	b.WriteString("</footer>\n")
	g.comments(n)
	g.related()
	b.WriteString("</article>\n<aside class=\"sidebar widget-area\" role=\"complementary\">\n  <section class=\"widget widget-recent-posts\">\n    <h2 class=\"widget-title\">Recent posts</h2>\n    <ul>\n")
	for i := 0; i < 2; i++ {
		iso, human := g.date()
		fmt.Fprintf(b, "      <li class=\"flex flex-col gap-1 py-3 border-b border-slate-200 last:border-0\"><a class=\"text-base font-semibold text-slate-900 hover:text-blue-700\" href=\"/page/%d\">%s</a> <time class=\"post-date text-sm text-slate-500\" datetime=\"%s\">%s</time></li>\n", g.otherPage(), g.title(3, 6), iso, human)
	}
	b.WriteString("    </ul>\n  </section>\n  <section class=\"widget widget-tag-cloud\">\n    <h2 class=\"widget-title\">Tags</h2>\n    <div class=\"tagcloud\">")
	for i := 0; i < 6; i++ {
		w := g.word()
		fmt.Fprintf(b, "<a href=\"/tag/%s\" class=\"tag-cloud-link\" style=\"font-size: %dpt;\">%s</a> ", w, 8+g.intn(15), w)
	}
	b.WriteString("</div>\n  </section>\n</aside>\n</div>\n</main>\n<footer class=\"site-footer\" role=\"contentinfo\">\n  <div class=\"container footer-columns\">\n")
	for c, col := range footerColumns {
		fmt.Fprintf(b, "    <div class=\"footer-column flex-1 min-w-[12rem]\">\n      <h3 class=\"text-sm font-semibold uppercase tracking-wide text-slate-900\">%s</h3>\n      <ul class=\"footer-links mt-4 space-y-3\" role=\"list\">\n", col)
		if c == 0 {
			g.navLinks("footer", 4)
			b.WriteString("      </ul>\n    </div>\n")
			continue
		}
		for _, l := range footerLinks[(c-1)*5 : c*5] {
			fmt.Fprintf(b, "        <li class=\"footer-item\"><a class=\"footer-link text-sm leading-6 text-slate-600 hover:text-slate-900\" href=\"/%s\">%s</a></li>\n",
				strings.ReplaceAll(strings.ToLower(l), " ", "-"), l)
		}
		b.WriteString("      </ul>\n    </div>\n")
	}
	fmt.Fprintf(b, "    <p class=\"site-info\">&copy; 2025 The Sample Gazette · Page %d · <a href=\"/privacy\">Privacy</a> · <a href=\"/contact\">Contact</a></p>\n  </div>\n</footer>\n<script src=\"/static/js/app.min.js?v=42\" defer></script>\n</body>\n</html>\n", n)
}

// Gzip compresses b at the default level, as mod_deflate or a Go
// middleware would.
func Gzip(b []byte) []byte {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	zw := zwPool.Get().(*gzip.Writer)
	zw.Reset(buf)
	zw.Write(b)
	zw.Close()
	zwPool.Put(zw)
	out := bytes.Clone(buf.Bytes())
	bufPool.Put(buf)
	return out
}

var zwPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return zw
}}

// AcceptsGzip reports whether an Accept-Encoding value lists gzip (or *)
// with a non-zero quality.
func AcceptsGzip(ae string) bool {
	for ae != "" {
		var part string
		part, ae, _ = strings.Cut(ae, ",")
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.TrimSpace(coding)
		if !strings.EqualFold(coding, "gzip") && !strings.EqualFold(coding, "x-gzip") && coding != "*" {
			continue
		}
		params = strings.TrimSpace(params)
		if q, ok := strings.CutPrefix(params, "q="); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(q), 64); err == nil && f == 0 {
				return false
			}
		}
		return true
	}
	return false
}

var shareTargets = []string{"Facebook", "LinkedIn", "Email"}

func (g *gen) share(n int) {
	b := &g.b
	b.WriteString("  <div class=\"share-buttons\" aria-label=\"Share this article\">\n")
	for _, t := range shareTargets {
		fmt.Fprintf(b, "    <a class=\"share-button share-%s\" href=\"/share/%s?u=%%2Fpage%%2F%d\" rel=\"nofollow noopener\" target=\"_blank\"><svg class=\"icon icon-%s\" aria-hidden=\"true\" width=\"16\" height=\"16\" viewBox=\"0 0 24 24\"><path fill=\"currentColor\" d=\"M12 2C6.48 2 2 6.48 2 12s4.48 10 10 10 10-4.48 10-10S17.52 2 12 2zm0 18c-4.41 0-8-3.59-8-8s3.59-8 8-8 8 3.59 8 8-3.59 8-8 8z\"/></svg><span class=\"share-label\">%s</span></a>\n",
			strings.ToLower(t), strings.ToLower(t), n, strings.ToLower(t), t)
	}
	b.WriteString("  </div>\n")
}

func (g *gen) comments(n int) {
	b := &g.b
	k := 1 + g.intn(4)/3
	plural := "s"
	if k == 1 {
		plural = ""
	}
	fmt.Fprintf(b, "  <section id=\"comments\" class=\"comments-area\">\n    <h2 class=\"comments-title\">%d comment%s</h2>\n    <ol class=\"comment-list\">\n", k, plural)
	for i := 0; i < k; i++ {
		id := n*10 + i
		who := g.name()
		iso, human := g.date()
		parity := "even"
		if i%2 == 1 {
			parity = "odd"
		}
		fmt.Fprintf(b, `      <li id="comment-%d" class="comment %s thread-%s depth-1">
        <article id="div-comment-%d" class="comment-body">
          <footer class="comment-meta">
            <div class="comment-author vcard"><img alt="" src="/avatar/%d?s=32&amp;d=mm" class="avatar avatar-32 photo" height="32" width="32" loading="lazy"><b class="fn">%s</b> <span class="says">says:</span></div>
            <div class="comment-metadata"><a href="/page/%d#comment-%d"><time datetime="%s">%s</time></a></div>
          </footer>
          <div class="comment-content"><p>`, id, parity, parity, id, id%97, who, n, id, iso, human)
		g.sentence()
		fmt.Fprintf(b, `</p></div>
          <div class="reply"><a rel="nofollow" class="comment-reply-link" href="/page/%d?replytocom=%d#respond" data-commentid="%d" data-postid="%d" aria-label="Reply to %s">Reply</a></div>
        </article>
      </li>
`, n, id, id, n, who)
	}
	b.WriteString("    </ol>\n  </section>\n")
}

// related writes the "related posts" card grid that themes put under an
// article.
func (g *gen) related() {
	b := &g.b
	b.WriteString("  <section class=\"related-posts\" aria-labelledby=\"related-title\">\n    <h2 id=\"related-title\" class=\"related-title\">You may also like</h2>\n    <div class=\"card-grid\">\n")
	for i := 0; i < 2; i++ {
		m := g.otherPage()
		iso, human := g.date()
		sec := g.pick(sections)
		fmt.Fprintf(b, `      <div class="card card-post flex flex-col overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm transition hover:shadow-md">
        <a class="card-link block aspect-video overflow-hidden" href="/page/%d"><img class="card-image wp-post-image h-full w-full object-cover" src="/media/%[2]d/thumb-300x169.jpg" srcset="/media/%[2]d/thumb-300x169.jpg 300w, /media/%[2]d/thumb-600x338.jpg 600w" sizes="(max-width: 768px) 50vw, 300px" alt="" width="300" height="169" loading="lazy" decoding="async"></a>
        <div class="card-body flex flex-1 flex-col gap-2 p-4"><p class="card-section text-xs font-semibold uppercase tracking-wide text-blue-700"><a href="/section/%s">%s</a></p><h3 class="card-title text-base font-semibold leading-snug text-slate-900"><a class="card-link hover:text-blue-700" href="/page/%d">%s</a></h3><p class="card-meta mt-auto text-sm text-slate-500"><time datetime="%s">%s</time></p></div>
      </div>
`, m, m%1000, strings.ToLower(sec), sec, m, g.title(3, 6), iso, human)
	}
	b.WriteString("    </div>\n  </section>\n")
}
