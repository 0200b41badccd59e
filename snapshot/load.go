package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/isrproxy/isrproxy/cache"
)

// overBudgetRun is how many pages in a row the sink may refuse for lack
// of room before Load stops reading: the budget is spent, and a snapshot
// far larger than it is not read to its end for nothing.
const overBudgetRun = 1000

// maxProblems bounds the problems a Loaded lists (the counts go on).
const maxProblems = 10

// Loaded says what one Load did and what it skipped.
type Loaded struct {
	// Pages restored, and their bytes of body.
	Pages int
	Bytes int64
	// Superseded counts pages the sink already held newer.
	Superseded int
	// Corrupt counts frames skipped for a failed checksum or a page that
	// does not hold together; OverBudget the pages left out for lack of room.
	Corrupt    int
	OverBudget int
	// Complete reports a file read to its end marker, every page in it
	// accounted for.
	Complete bool
	// Problems says, in words, what was skipped and why (at most ten).
	Problems []string
	// WrittenAt is when the snapshot was written; zero when unknown.
	WrittenAt time.Time
	Took      time.Duration
}

func (l *Loaded) problem(format string, args ...any) {
	if len(l.Problems) < maxProblems {
		l.Problems = append(l.Problems, fmt.Sprintf(format, args...))
	}
}

// Options tune Load. The zero value is ready to use.
type Options struct {
	// MaxBodyBytes bounds one page's body; a frame declaring a larger one
	// is not trusted. Zero: 1 GiB.
	MaxBodyBytes int64
}

// Load restores the pages of the snapshot at path into sink. It never
// fails: what it could not load is counted and described in the result.
// A missing file loads nothing and is no problem (the first start).
func Load(path string, sink Sink, opts Options) (res Loaded) {
	start := time.Now()
	defer func() { res.Took = time.Since(start) }()
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 30
	}
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			res.problem("cannot open: %v", err)
		}
		return res
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		res.problem("cannot read: %v", err)
		return res
	case info.IsDir():
		res.problem("%s is a directory, not a snapshot file", path)
		return res
	case info.Size() == 0:
		res.problem("the file is empty")
		return res
	}
	r := &reader{f: f, br: bufio.NewReaderSize(f, 1<<20), size: info.Size(), maxBody: opts.MaxBodyBytes}
	if !r.header(&res) {
		return res
	}
	r.frames(sink, &res)
	return res
}

// reader reads frames from a snapshot file, keeping its offset so that it
// can look for the next frame after one it cannot trust.
type reader struct {
	f       *os.File
	br      *bufio.Reader
	off     int64 // offset of br's next byte in the file
	size    int64
	maxBody int64
	meta    []byte // reused from frame to frame
}

func (r *reader) header(res *Loaded) bool {
	var h [headerLen]byte
	n, err := io.ReadFull(r.br, h[:])
	r.off += int64(n)
	switch {
	case err != nil && n >= 8 && string(h[:8]) == magic:
		res.problem("the file is cut short in its header")
		return false
	case n < 8 || string(h[:8]) != magic:
		res.problem("not an isrproxy snapshot (no %q header)", magic)
		return false
	}
	if crc32.Checksum(h[:24], castagnoli) != binary.BigEndian.Uint32(h[24:]) {
		res.problem("the header fails its checksum")
		return false
	}
	if v := binary.BigEndian.Uint32(h[8:]); v != Version {
		res.problem("format version %d; this isrproxy reads version %d: nothing loaded", v, Version)
		return false
	}
	res.WrittenAt = time.Unix(0, int64(binary.BigEndian.Uint64(h[16:])))
	return true
}

// Pages are restored in batches of at most this many pages or bytes.
const (
	batchPages    = 512
	batchBytesMax = 8 << 20
)

// frames restores every whole frame into sink.
func (r *reader) frames(sink Sink, res *Loaded) {
	refused := 0
	var batch []*cache.Page
	var batchBytes int64
	// restore hands the batch to the sink, and reports whether to go on.
	restore := func() bool {
		if len(batch) == 0 {
			return true
		}
		for i, result := range sink.RestoreAll(batch) {
			switch result {
			case cache.Stored, cache.Replaced:
				res.Pages++
				res.Bytes += int64(len(batch[i].Body))
				refused = 0
			case cache.Superseded:
				res.Superseded++
			default:
				res.OverBudget++
				refused++
			}
		}
		batch, batchBytes = batch[:0], 0
		if refused >= overBudgetRun {
			res.problem("the store's budget is spent at byte %d of %d: the rest is not read", r.off, r.size)
			return false
		}
		return true
	}
	defer restore()
	for {
		at := r.off
		head, err := r.br.Peek(frameHead)
		if err != nil {
			if len(head) == 0 {
				res.problem("the file ends at byte %d without its end marker: cut short", at)
			} else {
				res.problem("the file ends inside a frame at byte %d: cut short", at)
			}
			return
		}
		metaLen := int64(binary.BigEndian.Uint32(head[4:]))
		bodyLen := int64(binary.BigEndian.Uint32(head[8:]))
		sum := binary.BigEndian.Uint32(head[12:])
		if string(head[:4]) != marker || metaLen < 1 || metaLen > maxMetaLen || bodyLen > r.maxBody {
			res.Corrupt++
			res.problem("no frame at byte %d: looking for the next one", at)
			if !r.resync(at + 1) {
				res.problem("no frame after byte %d", at)
				return
			}
			continue
		}
		if at+frameHead+metaLen+bodyLen > r.size {
			// Cut short, or its lengths are damaged: then a frame follows.
			if !r.resync(at + 1) {
				res.problem("the frame at byte %d runs past the end of the file: cut short", at)
				return
			}
			res.Corrupt++
			res.problem("the frame at byte %d has damaged lengths: skipped", at)
			continue
		}
		crc := crc32.Update(0, castagnoli, head[4:12])
		r.discard(frameHead)
		r.meta = grow(r.meta, int(metaLen))
		if !r.read(r.meta) {
			res.problem("cannot read the frame at byte %d", at)
			return
		}
		crc = crc32.Update(crc, castagnoli, r.meta)
		body := make([]byte, bodyLen) // the page keeps it: exactly its size
		if !r.read(body) {
			res.problem("cannot read the frame at byte %d", at)
			return
		}
		crc = crc32.Update(crc, castagnoli, body)
		if crc != sum {
			res.Corrupt++
			res.problem("the frame at byte %d fails its checksum: skipped", at)
			// Its lengths may be what was damaged: the next frame is
			// where they say only if a marker is there.
			next, err := r.br.Peek(len(marker))
			if err == nil && string(next) == marker || err != nil && len(next) == 0 {
				continue
			}
			if !r.resync(at + 1) {
				res.problem("no frame after byte %d", at)
				return
			}
			continue
		}
		switch r.meta[0] {
		case kindEnd:
			if !restore() {
				return
			}
			n, _ := binary.Uvarint(r.meta[1:])
			res.Complete = true
			if total := uint64(res.Pages + res.Superseded + res.Corrupt + res.OverBudget); n != total && res.Corrupt == 0 {
				res.problem("the end marker counts %d pages, %d read", n, total)
			}
			return
		case kindPage:
		default:
			res.Corrupt++
			res.problem("the frame at byte %d is of an unknown kind %q: skipped", at, r.meta[0])
			continue
		}
		p, err := decodePage(r.meta, body)
		if err != nil {
			res.Corrupt++
			res.problem("the page at byte %d: %v: skipped", at, err)
			continue
		}
		batch = append(batch, p)
		batchBytes += int64(len(p.Body))
		if len(batch) == batchPages || batchBytes >= batchBytesMax {
			if !restore() {
				return
			}
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func (r *reader) read(b []byte) bool {
	n, err := io.ReadFull(r.br, b)
	r.off += int64(n)
	return err == nil
}

func (r *reader) discard(n int) {
	d, _ := r.br.Discard(n)
	r.off += int64(d)
}

// resync positions the reader at the first frame marker at or after from,
// and reports whether there is one.
func (r *reader) resync(from int64) bool {
	if _, err := r.f.Seek(from, io.SeekStart); err != nil {
		return false
	}
	r.br.Reset(r.f)
	r.off = from
	for {
		b, err := r.br.Peek(len(marker))
		if err != nil {
			return false
		}
		if string(b) == marker {
			return true
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		skip := len(buf) - (len(marker) - 1) // a marker may start in the last bytes
		if i := bytes.Index(buf[1:], []byte(marker)); i >= 0 {
			skip = i + 1
		}
		r.discard(max(skip, 1))
	}
}

// decoder reads the fields of a page's meta; the first error sticks.
type decoder struct {
	s   string // the meta as one string: the page's strings share it
	i   int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := uvarintString(d.s[d.i:])
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.i += n
	return v
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || d.i >= len(d.s) {
		d.err = errCorrupt
		return 0
	}
	b := d.s[d.i]
	d.i++
	return b
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.s)-d.i) {
		d.err = errCorrupt
		return ""
	}
	s := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return s
}

// count reads a count of items of at least one byte each.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.i) {
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -1
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// decodePage builds the page of a frame whose checksum held, and checks
// that it holds together.
func decodePage(meta, body []byte) (*cache.Page, error) {
	d := &decoder{s: string(meta), i: 1}
	p := &cache.Page{Body: body}
	flags := d.byte()
	p.HTTPS, p.Gzip = flags&flagHTTPS != 0, flags&flagGzip != 0
	p.Status = int(d.uvarint())
	p.Gen = d.uvarint()
	p.StoredAt = time.Unix(0, d.varint())
	p.OriginAge = d.varint()
	p.PlainLen = int64(d.uvarint())
	p.Key = cache.Key{Host: d.string(), Path: d.string(), Query: d.string()}
	p.ETag, p.LastModified = d.string(), d.string()
	if n := d.count(); n > 0 {
		p.Vary, p.VaryValues = make([]string, n), make([]string, n)
		for i := range n {
			p.Vary[i], p.VaryValues[i] = d.string(), d.string()
		}
	}
	if n := d.count(); n > 0 {
		p.Tags = make([]string, n)
		for i := range n {
			p.Tags[i] = d.string()
		}
	}
	if n := d.count(); n > 0 {
		p.Header = make(cache.Fields, n)
		for i := range n {
			p.Header[i].Name = d.string()
			if m := d.count(); m > 0 {
				p.Header[i].Values = make([]string, m)
				for j := range m {
					p.Header[i].Values[j] = d.string()
				}
			}
		}
	}
	p.Links = cache.Links(d.string())
	switch {
	case d.err != nil:
		return nil, d.err
	case d.i != len(d.s):
		return nil, fmt.Errorf("%w: %d bytes after its fields", errCorrupt, len(d.s)-d.i)
	case p.Key.Host == "" || len(p.Key.Path) == 0 || p.Key.Path[0] != '/':
		return nil, fmt.Errorf("%w: no key", errCorrupt)
	case p.Status < 100 || p.Status > 999 || p.Gen == 0:
		return nil, fmt.Errorf("%w: status %d, generation %d", errCorrupt, p.Status, p.Gen)
	}
	if cl := p.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
		return nil, fmt.Errorf("%w: Content-Length %s for a body of %d bytes", errCorrupt, cl, len(body))
	}
	if flags&flagStale != 0 {
		p.MarkStale()
	}
	return p, nil
}
