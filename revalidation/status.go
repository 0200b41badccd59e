package revalidation

import "time"

// KeyState is what the page handler knows of one key, for the status
// endpoint of the revalidate API (README.md#status): its stored variants,
// and whether it passes through to the origin, and why.
type KeyState struct {
	// Variants are the stored variants of the key; none when it is not stored.
	Variants []VariantState
	// PassThroughUntil is when the key stops passing through to the
	// origin; zero when it does not.
	PassThroughUntil time.Time
	// PassReason is why the last response for the key was not stored: a
	// short code such as "set-cookie", "private", "no-store", "vary-star",
	// "status", "too-large", "empty" or "coding"; "" when none is known.
	PassReason string
	// PassDetail is the same reason in words, as the log says it.
	PassDetail string
}

// VariantState is one stored variant of a key.
type VariantState struct {
	// HTTPS reports a variant rendered for visitors over https.
	HTTPS bool
	// Status is the origin's status code.
	Status int
	// StoredAt is when the fetch that produced it completed.
	StoredAt time.Time
	// Age is the age a visitor is told, in seconds.
	Age int64
	// Bytes is what the stored body holds (compressed when Gzip).
	Bytes int64
	// PlainBytes is the body's decompressed length.
	PlainBytes int64
	// Gzip reports a body stored gzip-compressed.
	Gzip bool
	// Tags are the page's tags.
	Tags []string
	// Stale reports a variant that the next visitor gets as STALE.
	Stale bool
	// Vary maps the request headers that select the variant to their
	// values; a header the request did not send has no entry in it but is
	// listed in VaryAbsent.
	Vary       map[string]string
	VaryAbsent []string
	// Links counts the same-host links read from the page when it was stored.
	Links int
}
