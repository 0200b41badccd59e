package proxy

import (
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// Inspect reports what is stored for key and whether it passes through,
// for the revalidate API's status endpoint (README.md#status). It reads
// only: nothing is fetched, counted or marked.
func (h *Handler) Inspect(key cache.Key) revalidation.KeyState {
	key = h.canonical(key)
	now := h.now()
	var st revalidation.KeyState
	if e := h.store.Get(key); e != nil {
		for _, p := range e.Variants {
			v := revalidation.VariantState{
				HTTPS:      p.HTTPS,
				Status:     p.Status,
				StoredAt:   p.StoredAt,
				Age:        p.OriginAge + int64(now.Sub(p.StoredAt)/time.Second),
				Bytes:      int64(len(p.Body)),
				PlainBytes: int64(len(p.Body)),
				Gzip:       p.Gzip,
				Tags:       p.Tags,
				Stale:      h.isStale(p, now),
				Links:      p.Links.Len(),
			}
			if p.Gzip {
				v.PlainBytes = p.PlainLen
			}
			for i, name := range p.Vary {
				if p.VaryValues[i] == cache.VaryAbsent {
					v.VaryAbsent = append(v.VaryAbsent, name)
					continue
				}
				if v.Vary == nil {
					v.Vary = make(map[string]string, len(p.Vary))
				}
				v.Vary[name] = p.VaryValues[i]
			}
			st.Variants = append(st.Variants, v)
		}
	}
	if until, why, ok := h.passes.info(key, now); ok {
		st.PassThroughUntil = until
		st.PassReason, st.PassDetail = reasonCode(why), why
	}
	return st
}

// noteLocked remembers why key's last response was not stored. The caller
// holds l.mu and has just marked key in l.until, which bounds l.why too.
func (l *passList) noteLocked(key cache.Key, reason string) {
	if l.why == nil {
		l.why = make(map[cache.Key]string)
	}
	l.why[key] = reason
}

// info reports when key's pass-through ends and why it was marked, while
// it lasts.
func (l *passList) info(key cache.Key, now time.Time) (time.Time, string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.until[key]
	if !ok || !now.Before(t) {
		return time.Time{}, "", false
	}
	return t, l.why[key], true
}

// reasonCode turns the builder's reason for not storing a response (as the
// log words it) into the status endpoint's short code.
func reasonCode(reason string) string {
	r := strings.ToLower(reason)
	switch {
	case r == "":
		return ""
	case r == "set-cookie":
		return "set-cookie"
	case strings.Contains(r, "private"):
		return "private"
	case strings.Contains(r, "no-store"):
		return "no-store"
	case strings.HasPrefix(r, "vary"):
		return "vary-star"
	case strings.HasPrefix(r, "status"):
		return "status"
	case strings.Contains(r, "too-large"), strings.Contains(r, "too large"), strings.Contains(r, "max_object_bytes"):
		return "too-large"
	case strings.HasPrefix(r, "empty"):
		return "empty"
	case strings.HasPrefix(r, "gzip"), strings.HasPrefix(r, "content-encoding"), strings.HasPrefix(r, "coding"):
		return "coding"
	}
	return "other"
}
