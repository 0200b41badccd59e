package cache

import (
	"iter"
	"slices"
	"strings"
)

// LinkOverhead is what one link of a page costs beyond its bytes: its id
// in the reverse index, and its share of the target's own entry there
// (measured: about 20 bytes a link on pages of fifty links, most targets
// named by one page and a menu's by every page).
const LinkOverhead = 20

// Links holds the targets of a page's same-host links in one string:
// sorted, each written as the length of the prefix it shares with the one
// before (a byte, plus linkPrefixBase) and the rest of it, then a newline
// (a target is an escaped path and query, which never holds one). One
// allocation however many links a page has, and the prefixes that a
// site's links share ("/category/…", "/events/…") are written once: about
// half the bytes of the targets themselves, where a slice of strings
// costs two words and an allocation more per link.
type Links string

const (
	linkPrefixBase = 0x20 // keeps the prefix byte clear of '\n'
	linkPrefixMax  = 0xff - linkPrefixBase
)

// NewLinks returns the targets as Links, sorted and distinct, leaving out
// empty ones and any holding a newline.
func NewLinks(targets []string) Links {
	sorted := make([]string, 0, len(targets))
	for _, t := range targets {
		if t != "" && !strings.Contains(t, "\n") {
			sorted = append(sorted, t)
		}
	}
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	// The string lives as long as the page: sized exactly, not by the
	// doubling of a growing builder (a third of it spare, on average).
	size, prev := 0, ""
	for _, t := range sorted {
		size += 2 + len(t) - sharedPrefix(prev, t)
		prev = t
	}
	var b strings.Builder
	b.Grow(size)
	prev = ""
	for _, t := range sorted {
		n := sharedPrefix(prev, t)
		b.WriteByte(byte(linkPrefixBase + n))
		b.WriteString(t[n:])
		b.WriteByte('\n')
		prev = t
	}
	return Links(b.String())
}

// sharedPrefix is how many leading bytes of t NewLinks leaves to the
// target before it, prev: those they share, at most linkPrefixMax.
func sharedPrefix(prev, t string) int {
	n := 0
	for n < len(prev) && n < len(t) && n < linkPrefixMax && prev[n] == t[n] {
		n++
	}
	return n
}

// Len returns the number of targets.
func (l Links) Len() int { return strings.Count(string(l), "\n") }

// All yields each target, in order.
func (l Links) All() iter.Seq[string] {
	return func(yield func(string) bool) {
		var cur []byte
		for s := string(l); s != ""; {
			n := int(s[0]) - linkPrefixBase
			s = s[1:]
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				i = len(s) // not written by NewLinks; read it all the same
			}
			// A prefix longer than the target before (a damaged
			// string) keeps what there is.
			cur = append(cur[:min(max(n, 0), len(cur))], s[:i]...)
			if !yield(string(cur)) {
				return
			}
			s = s[min(i+1, len(s)):]
		}
	}
}

// Slice returns the targets as a slice, nil when there are none.
func (l Links) Slice() []string {
	var out []string
	for t := range l.All() {
		out = append(out, t)
	}
	return out
}

// cost is what the links count against CACHE_MAX_BYTES.
func (l Links) cost() int64 { return int64(len(l)) + int64(l.Len())*LinkOverhead }

// Links returns the union of the variants' links.
func (e *Entry) Links() Links {
	if len(e.Variants) == 1 {
		return e.Variants[0].Links
	}
	seen := map[string]bool{}
	var all []string
	for _, p := range e.Variants {
		for l := range p.Links.All() {
			if !seen[l] {
				seen[l] = true
				all = append(all, l)
			}
		}
	}
	return NewLinks(all)
}

// KeysOfHost returns the keys of every stored page of host, sorted.
func (s *Store) KeysOfHost(host string) []Key {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	return s.index.sortedKeys(s.index.byHost[host], nil)
}

// KeysLinkingTo returns the keys of host's stored pages whose HTML (or
// Location header) links to target, the escaped path plus normalised
// query of a key of host ([Key.Target]), sorted.
func (s *Store) KeysLinkingTo(host, target string) []Key {
	s.index.mu.Lock()
	defer s.index.mu.Unlock()
	return keysOfIDs(s.index, s.index.byLink, host, s.index.linkHash(target))
}
