package cache

import (
	"sync"
	"unsafe"
)

// lookupKeys lends room to build a lookup key in, so that a lookup in
// ristretto allocates nothing: the key it is given is a view of that room
// ([view]). ristretto reads a key only to hash it, and keeps the hashes,
// never the key. The zero value is ready to use.
type lookupKeys struct{ pool sync.Pool }

// get lends a buffer, empty.
func (l *lookupKeys) get() *[]byte {
	if b, ok := l.pool.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 256)
	return &b
}

// put takes back a buffer that get lent.
func (l *lookupKeys) put(b *[]byte) { l.pool.Put(b) }

// view is b as a string, without a copy: for a call that reads it only
// while b stays as it is (a ristretto lookup).
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
