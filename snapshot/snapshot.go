// Package snapshot saves every stored page to a file and loads them back,
// so that a restart or a deploy starts with the pages the last process had
// (SNAPSHOT_PATH; docs/behaviour.md#restarts-and-deploys).
//
// # Writing
//
// [Write] writes to a temporary file in the snapshot's directory (named
// after the snapshot, ".tmp-" and a random suffix, mode 0600), syncs it,
// renames it over the snapshot and syncs the directory: a crash at any
// moment leaves either the previous snapshot or the new one, whole. The
// pages are read with [cache.Store.Each], which holds no lock while a page
// is encoded, so hits and fills go on during a write.
//
// # Format, version 1
//
// All integers are big-endian. The file is a header and a sequence of
// frames:
//
//	header  magic "ISRPSNAP" (8 bytes) | version uint32 (1) | flags uint32 (0)
//	        | written at, Unix nanoseconds int64 | CRC-32C of the 24 bytes before, uint32
//	frame   marker "\x89PG\r" (4) | meta length uint32 | body length uint32
//	        | CRC-32C (Castagnoli) of the two lengths, meta and body, uint32
//	        | meta | body
//
// A frame's meta starts with a kind byte. 'P' is one page: one variant of
// one key. Its meta then holds, in this order (uvarint: unsigned varint of
// encoding/binary; varint: signed; string: uvarint length and bytes):
//
//	flags byte (1 HTTPS, 2 gzip, 4 marked stale) | status uvarint
//	| generation uvarint | stored at, Unix nanoseconds varint
//	| origin Age, seconds varint | plain length uvarint
//	| host, path, query strings | ETag, Last-Modified strings
//	| Vary count uvarint, then per name: name, value strings
//	| tag count uvarint, then tags | header field count uvarint,
//	then per field: name string, value count uvarint, values
//	| links string (the same-host link targets, each followed by a newline)
//
// and the frame's body is the stored body, as is (gzip when the gzip flag
// is set). 'E' ends the file: a uvarint count of the pages written before
// it. A file without it was cut short.
//
// # Loading
//
// [Load] restores each frame whose checksum holds, in file order, until
// the store's budget is spent. A frame that fails its checksum, or whose
// page does not hold together (a Content-Length other than its body's), is
// skipped; when its lengths cannot be trusted the reader looks for the next
// marker. A file that is missing, empty, a directory, of another version or
// cut short loads what it can, and Load reports what it skipped: it never
// fails, so a bad snapshot never stops isrproxy from starting.
package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/cache"
)

// Version is the format version this package writes and reads.
const Version = 1

const (
	magic      = "ISRPSNAP"
	headerLen  = 28
	marker     = "\x89PG\r"
	frameHead  = 16 // marker, two lengths, checksum
	kindPage   = 'P'
	kindEnd    = 'E'
	flagHTTPS  = 1
	flagGzip   = 2
	flagStale  = 4
	maxMetaLen = 16 << 20 // far above any header set an origin can send
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// A Source is what Write reads pages from: [*cache.Store].
type Source interface {
	Each(func(*cache.Page) bool)
}

// A Sink is what Load restores pages into: [*cache.Store]. RestoreAll
// returns a result per page, cache.NotAdmitted for a page that would take
// it past its budget.
type Sink interface {
	RestoreAll([]*cache.Page) []cache.PutResult
}

var (
	_ Source = (*cache.Store)(nil)
	_ Sink   = (*cache.Store)(nil)
)

// Written says what one Write did.
type Written struct {
	Pages int
	Bytes int64 // the file's size
	Took  time.Duration
}

// WriteOptions tune WriteWith. The zero value writes as fast as it can.
type WriteOptions struct {
	// BytesPerSecond paces the write: a snapshot written while visitors
	// are served takes a little longer rather than a core and the disk
	// at once. Zero: no pacing.
	BytesPerSecond int64
	// SyncEvery syncs the temporary file each time this many bytes more
	// were written, so that the disk gets the data in steps instead of in
	// one flush at the end. Zero: only at the end.
	SyncEvery int64
}

// PacedWriteOptions are what isrproxy writes its periodic snapshots with,
// while it serves: 400 MB in about six seconds, a small share of a core.
var PacedWriteOptions = WriteOptions{BytesPerSecond: 64 << 20, SyncEvery: 32 << 20}

// Write saves every page of src to path, atomically (see the package doc),
// as fast as it can.
func Write(path string, src Source) (Written, error) { return WriteWith(path, src, WriteOptions{}) }

// WriteWith is Write, paced and synced in steps as opts say.
func WriteWith(path string, src Source, opts WriteOptions) (Written, error) {
	start := time.Now()
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return Written{}, fmt.Errorf("snapshot: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (Written, error) {
		f.Close()
		os.Remove(tmp)
		return Written{}, fmt.Errorf("snapshot: writing %s: %w", tmp, err)
	}

	w := &writer{bw: bufio.NewWriterSize(&paced{f: f, opts: opts, start: start}, 1<<20)}
	w.header(start)
	src.Each(func(p *cache.Page) bool {
		w.page(p)
		return w.err == nil
	})
	w.end()
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	if w.err != nil {
		return fail(w.err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return Written{}, fmt.Errorf("snapshot: closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return Written{}, fmt.Errorf("snapshot: %w", err)
	}
	// The rename is durable only once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return Written{}, fmt.Errorf("snapshot: syncing %s: %w", dir, err)
		}
	}
	return Written{Pages: w.pages, Bytes: size, Took: time.Since(start)}, nil
}

// RemoveTemp removes the temporary files a write of path left when its
// process died mid-way. Call it at start, before any write.
func RemoveTemp(path string) []string {
	matches, _ := filepath.Glob(globEscape(path) + ".tmp-*")
	var removed []string
	for _, m := range matches {
		if os.Remove(m) == nil {
			removed = append(removed, m)
		}
	}
	return removed
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// paced is the file under the write buffer: it sleeps to keep to
// BytesPerSecond and syncs every SyncEvery bytes.
type paced struct {
	f        *os.File
	opts     WriteOptions
	start    time.Time
	n        int64 // bytes written
	unsynced int64
}

func (p *paced) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.n += int64(n)
	p.unsynced += int64(n)
	if err != nil {
		return n, err
	}
	if p.opts.SyncEvery > 0 && p.unsynced >= p.opts.SyncEvery {
		p.unsynced = 0
		if err := p.f.Sync(); err != nil {
			return n, err
		}
	}
	if p.opts.BytesPerSecond > 0 {
		due := time.Duration(float64(p.n) / float64(p.opts.BytesPerSecond) * float64(time.Second))
		if ahead := due - time.Since(p.start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return n, nil
}

// writer encodes frames; the first error sticks.
type writer struct {
	bw    *bufio.Writer
	meta  []byte // reused from page to page
	pages int
	err   error
}

func (w *writer) write(b []byte) {
	if w.err == nil {
		_, w.err = w.bw.Write(b)
	}
}

func (w *writer) header(at time.Time) {
	var h [headerLen]byte
	copy(h[:8], magic)
	binary.BigEndian.PutUint32(h[8:], Version)
	binary.BigEndian.PutUint32(h[12:], 0)
	binary.BigEndian.PutUint64(h[16:], uint64(at.UnixNano()))
	binary.BigEndian.PutUint32(h[24:], crc32.Checksum(h[:24], castagnoli))
	w.write(h[:])
}

func (w *writer) frame(meta, body []byte) {
	var h [frameHead]byte
	copy(h[:4], marker)
	binary.BigEndian.PutUint32(h[4:], uint32(len(meta)))
	binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
	sum := crc32.Update(0, castagnoli, h[4:12])
	sum = crc32.Update(sum, castagnoli, meta)
	sum = crc32.Update(sum, castagnoli, body)
	binary.BigEndian.PutUint32(h[12:], sum)
	w.write(h[:])
	w.write(meta)
	w.write(body)
}

func (w *writer) page(p *cache.Page) {
	if int64(len(p.Body)) > 1<<32-1 {
		return // cannot happen: MAX_OBJECT_BYTES is far below
	}
	m := append(w.meta[:0], kindPage)
	var flags byte
	if p.HTTPS {
		flags |= flagHTTPS
	}
	if p.Gzip {
		flags |= flagGzip
	}
	if p.StaleMarked() {
		flags |= flagStale
	}
	m = append(m, flags)
	m = binary.AppendUvarint(m, uint64(p.Status))
	m = binary.AppendUvarint(m, p.Gen)
	m = binary.AppendVarint(m, p.StoredAt.UnixNano())
	m = binary.AppendVarint(m, p.OriginAge)
	m = binary.AppendUvarint(m, uint64(max(p.PlainLen, 0)))
	m = appendString(m, p.Key.Host)
	m = appendString(m, p.Key.Path)
	m = appendString(m, p.Key.Query)
	m = appendString(m, p.ETag)
	m = appendString(m, p.LastModified)
	m = binary.AppendUvarint(m, uint64(len(p.Vary)))
	for i, name := range p.Vary {
		m = appendString(m, name)
		m = appendString(m, p.VaryValues[i])
	}
	m = binary.AppendUvarint(m, uint64(len(p.Tags)))
	for _, t := range p.Tags {
		m = appendString(m, t)
	}
	m = binary.AppendUvarint(m, uint64(len(p.Header)))
	for _, f := range p.Header {
		m = appendString(m, f.Name)
		m = binary.AppendUvarint(m, uint64(len(f.Values)))
		for _, v := range f.Values {
			m = appendString(m, v)
		}
	}
	m = appendString(m, string(p.Links))
	w.meta = m
	if len(m) > maxMetaLen {
		return // a header set no origin sends; the page is left out
	}
	w.frame(m, p.Body)
	w.pages++
}

func (w *writer) end() {
	m := binary.AppendUvarint([]byte{kindEnd}, uint64(w.pages))
	w.frame(m, nil)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errCorrupt is a page whose frame was whole but whose content does not
// hold together: never restored.
var errCorrupt = errors.New("corrupt page")
