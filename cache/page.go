package cache

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// entryOverhead is what one stored key costs beyond its headers and body:
// ristretto's item and counters, the Entry and Page structs, and the side
// index. Counting it keeps the process within CACHE_MAX_BYTES plus a fixed
// allowance even when pages are tiny.
const entryOverhead = 512

// A Page is one stored response: one variant of one key. A Page is never
// changed once stored, except for the two atomic marks that govern
// background refreshes; the serving path shares its header maps and body
// and must treat them as read-only.
type Page struct {
	// Key is the page's key; HTTPS and the Vary values name the variant
	// within it.
	Key Key
	// HTTPS reports a page rendered for a visitor on https (its origin
	// request said X-Forwarded-Proto: https): stored apart from the http
	// one, since a CMS renders its links and redirects for the scheme.
	HTTPS bool
	// Gzip reports that Body is gzip-compressed.
	Gzip bool
	// Status is the origin's status code.
	Status int
	// Header is what a client that accepts the stored encoding is sent:
	// the origin's headers less hop-by-hop ones, with Content-Length,
	// Content-Encoding and Vary as the stored body requires.
	Header Fields
	// Body holds the stored bytes: gzip when Gzip is true.
	Body []byte
	// PlainLen is the decompressed length of Body when Gzip is true.
	PlainLen int64
	// Vary lists the canonical names of request headers that select this
	// variant, and VaryValues the values the producing request had.
	Vary       []string
	VaryValues []string
	// Tags are the page's Cache-Tag and Surrogate-Key names.
	Tags []string
	// Links are the targets of the page's same-host links, read once when
	// it was stored (see links.go).
	Links Links
	// ETag and LastModified are the validators for conditional requests.
	ETag, LastModified string
	// StoredAt is when the fetch that produced the page completed, and
	// OriginAge the Age the origin itself reported, in seconds.
	StoredAt  time.Time
	OriginAge int64
	// Gen is the generation taken when the fetch that produced the page
	// started: a page never replaces one with a higher Gen.
	Gen uint64

	refreshAfter atomic.Int64 // unix nanos; a background refresh may start at or after it
	age          atomic.Pointer[ageHeader]
	plainHeader  atomic.Pointer[Fields] // built by PlainHeader on first use
	staleMarked  atomic.Bool            // set by a soft revalidation
	plainHits    atomic.Int32           // answers decompressed for clients without gzip
}

// ageHeader is an Age header value shared by the answers of one second.
type ageHeader struct {
	age   int64
	value []string
}

// AgeHeader returns the Age header value for age seconds, built at most
// once a second per page rather than on every hit.
func (p *Page) AgeHeader(age int64) []string {
	if a := p.age.Load(); a != nil && a.age == age {
		return a.value
	}
	a := &ageHeader{age: age, value: []string{strconv.FormatInt(age, 10)}}
	p.age.Store(a)
	return a.value
}

// NotePlainHit counts an answer decompressed for a client without gzip
// and returns how many there have been.
func (p *Page) NotePlainHit() int32 { return p.plainHits.Add(1) }

// Cost is what the page counts against CACHE_MAX_BYTES.
func (p *Page) Cost() int64 {
	n := int64(len(p.Body)) + headerBytes(p.Header) + p.Links.cost()
	if p.Gzip { // the plain header set it may come to hold
		n += headerBytes(p.Header)
	}
	return n
}

// PlainHeader returns what a client that does not accept gzip is sent when
// Gzip is true: Header less Content-Encoding, with the decompressed
// Content-Length and a weak ETag (another representation than the stored
// one). It is built on first use and kept, so that pages only browsers ask
// for never hold it; the values it does not change are shared with Header.
func (p *Page) PlainHeader() Fields {
	if fs := p.plainHeader.Load(); fs != nil {
		return *fs
	}
	fs := make(Fields, 0, len(p.Header))
	for _, f := range p.Header {
		switch f.Name {
		case "Content-Encoding":
			continue
		case "Content-Length":
			f.Values = []string{strconv.FormatInt(p.PlainLen, 10)}
		case "Etag":
			weak, ok := "", false
			if len(f.Values) > 0 {
				weak, ok = WeakETag(f.Values[0])
			}
			if !ok {
				continue // a malformed tag is dropped, never rewritten
			}
			f.Values = []string{weak}
		}
		fs = append(fs, f)
	}
	p.plainHeader.Store(&fs)
	return fs
}

// WeakETag returns the weak form of the entity tag v (RFC 9110 §8.8.3), for
// a body that is another representation than the origin's: `"x"` becomes
// `W/"x"`, a weak tag stays as it is. It returns false for a malformed tag,
// which must be dropped rather than rewritten into another malformed one.
func WeakETag(v string) (string, bool) {
	opaque := strings.TrimPrefix(v, "W/")
	if len(opaque) < 2 || opaque[0] != '"' || opaque[len(opaque)-1] != '"' {
		return "", false
	}
	for i := 1; i < len(opaque)-1; i++ {
		if c := opaque[i]; c == '"' || c < 0x21 || c == 0x7f {
			return "", false
		}
	}
	return "W/" + opaque, true
}

// VariantID identifies the page's variant within its key.
func (p *Page) VariantID() string {
	if len(p.Vary) == 0 {
		if p.HTTPS {
			return "https\n"
		}
		return ""
	}
	var room [64]byte
	return string(p.AppendVariantID(room[:0]))
}

// AppendVariantID appends p.VariantID() to b, for a caller that builds a
// lookup key without allocating.
func (p *Page) AppendVariantID(b []byte) []byte {
	if p.HTTPS {
		b = append(b, "https\n"...)
	}
	for i, name := range p.Vary {
		b = append(b, name...)
		b = append(b, '=')
		b = append(b, p.VaryValues[i]...)
		b = append(b, '\n')
	}
	return b
}

// Matches reports whether a request over https (or not) with header h
// selects this variant. It compares without building the request's
// normal form, so a hit allocates nothing whatever the spelling.
func (p *Page) Matches(https bool, h http.Header) bool {
	if p.HTTPS != https {
		return false
	}
	for i, name := range p.Vary {
		if !varyMatches(h[name], foldsVaryCase(name), p.VaryValues[i]) {
			return false
		}
	}
	return true
}

// VaryAbsent is the VaryValue of a header the request did not send: not the
// same variant as an empty one. (A header value cannot hold a NUL.)
const VaryAbsent = "\x00"

// VaryValue is the value of header name in h as variants compare it
// (docs/behaviour.md#vary): all of its lines read as one comma-separated
// list, the whitespace around each item and the empty items dropped, the
// items joined by "," in their order; for Accept-Language and
// Accept-Encoding, whose items are case-insensitive, lower-cased. "en, de",
// "en,de" and "EN, de" are one variant; "de, en" another (a site may pick
// the first language listed). It is VaryAbsent when h has no such header,
// and "" for an empty one. A value already in that form is returned as it
// is, without allocating.
func VaryValue(h http.Header, name string) string {
	vs := h[name]
	if len(vs) == 0 {
		return VaryAbsent
	}
	fold := foldsVaryCase(name)
	if len(vs) == 1 && varyNormal(vs[0], fold) {
		return vs[0]
	}
	var b strings.Builder
	for _, line := range vs {
		for rest := line; rest != ""; {
			var item string
			item, rest = nextVaryItem(rest)
			if item == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			if !fold {
				b.WriteString(item)
				continue
			}
			for i := 0; i < len(item); i++ {
				b.WriteByte(lowerASCII(item[i]))
			}
		}
	}
	return b.String()
}

// varyMatches reports whether VaryValue of a header whose lines are vs
// (fold for the headers compared in any case) is want, a VaryValue.
func varyMatches(vs []string, fold bool, want string) bool {
	switch {
	case len(vs) == 0:
		return want == VaryAbsent
	case len(vs) == 1 && vs[0] == want:
		return true // the usual hit: the same spelling as the stored one
	}
	n, first := 0, true // bytes of want matched; no item matched yet
	for _, line := range vs {
		for rest := line; rest != ""; {
			var item string
			item, rest = nextVaryItem(rest)
			if item == "" {
				continue
			}
			if !first {
				if n >= len(want) || want[n] != ',' {
					return false
				}
				n++
			}
			first = false
			if len(want)-n < len(item) {
				return false
			}
			if fold {
				for i := 0; i < len(item); i++ {
					if lowerASCII(item[i]) != want[n+i] {
						return false
					}
				}
			} else if want[n:n+len(item)] != item {
				return false
			}
			n += len(item)
		}
	}
	return n == len(want)
}

// foldsVaryCase reports the headers whose list items compare in any case.
func foldsVaryCase(name string) bool {
	return name == "Accept-Language" || name == "Accept-Encoding"
}

// nextVaryItem returns the first item of a comma-separated list, without
// the whitespace around it, and the rest of the list.
func nextVaryItem(s string) (item, rest string) {
	item, rest, _ = strings.Cut(s, ",")
	return strings.Trim(item, " \t"), rest
}

// varyNormal reports whether v is already in VaryValue's form: no
// whitespace at its ends or next to a comma, no empty item, and (fold) no
// upper-case letter.
func varyNormal(v string, fold bool) bool {
	last := len(v) - 1
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == ' ' || c == '\t':
			if i == 0 || i == last || v[i-1] == ',' || v[i+1] == ',' {
				return false
			}
		case c == ',':
			if i == 0 || i == last || v[i+1] == ',' {
				return false
			}
		case fold && 'A' <= c && c <= 'Z':
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// MarkStale makes the page answer STALE until it is replaced.
func (p *Page) MarkStale() { p.staleMarked.Store(true) }

// StaleMarked reports whether a soft revalidation marked the page.
func (p *Page) StaleMarked() bool { return p.staleMarked.Load() }

// ClaimRefresh reports whether the caller may start the one background
// refresh of this page now; it then holds the claim until ReleaseRefresh.
func (p *Page) ClaimRefresh(now time.Time) bool {
	after := p.refreshAfter.Load()
	if after < 0 || now.UnixNano() < after {
		return false
	}
	return p.refreshAfter.CompareAndSwap(after, -1)
}

// ReleaseRefresh ends a claim; no new refresh may start before retryAt.
func (p *Page) ReleaseRefresh(retryAt time.Time) { p.refreshAfter.Store(retryAt.UnixNano()) }

// An Entry is what ristretto stores under a key: every variant of it. An
// Entry is immutable; Put builds a new one.
type Entry struct {
	Key      Key
	Variants []*Page
	version  uint64 // unique per Put: the index only forgets the version it recorded
	cost     int64
}

// Lookup returns the variant that a request over https (or not) with
// header h selects, or nil.
func (e *Entry) Lookup(https bool, h http.Header) *Page {
	for _, p := range e.Variants {
		if p.Matches(https, h) {
			return p
		}
	}
	return nil
}

// Tags returns the union of the variants' tags.
func (e *Entry) Tags() []string {
	if len(e.Variants) == 1 {
		return e.Variants[0].Tags
	}
	seen := map[string]bool{}
	var tags []string
	for _, p := range e.Variants {
		for _, t := range p.Tags {
			if !seen[t] {
				seen[t] = true
				tags = append(tags, t)
			}
		}
	}
	return tags
}

func headerBytes(fs Fields) int64 {
	var n int64
	for _, f := range fs {
		n += 40 // the Field and its slice header
		for _, v := range f.Values {
			n += int64(len(f.Name) + len(v) + 4)
		}
	}
	return n
}

// A Field is one stored response header: a canonical name and its lines.
type Field struct {
	// Name is canonical ("Content-Type", "Etag").
	Name string
	// Values holds the field's lines in the origin's order.
	Values []string
}

// Fields is a stored header set, sorted by name. It is a fraction of the
// size of an http.Header map, and copying it into a response walks a slice
// instead of a map.
type Fields []Field

// FieldsOf returns h as Fields, sorted by name. The values are copied into
// one string and one slice: a stored page keeps none of h, whose values
// were each allocated apart while the response was read (with the slots
// of the headers dropped since), for as long as it is stored.
func FieldsOf(h http.Header) Fields {
	names := slices.Sorted(maps.Keys(h))
	var size, count int
	for _, values := range h {
		count += len(values)
		for _, v := range values {
			size += len(v)
		}
	}
	var text strings.Builder
	text.Grow(size)
	for _, name := range names {
		for _, v := range h[name] {
			text.WriteString(v)
		}
	}
	all, block := text.String(), make([]string, 0, count)
	fs := make(Fields, 0, len(names))
	for _, name := range names {
		start := len(block)
		for _, v := range h[name] {
			block = append(block, all[:len(v)])
			all = all[len(v):]
		}
		fs = append(fs, Field{Name: name, Values: block[start:len(block):len(block)]})
	}
	return fs
}

// Get returns the first value of the canonical header name, or "".
func (fs Fields) Get(name string) string {
	for _, f := range fs {
		if f.Name == name && len(f.Values) > 0 {
			return f.Values[0]
		}
	}
	return ""
}
