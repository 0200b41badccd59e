package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"sync"
)

// gunzipper decompresses the gzip bodies of responses about to be stored,
// once each, for their length and their links, with pooled readers and
// buffers: a gzip.Reader costs about 80 KB to make (its window and
// tables), which twice a fill was 40 % of all a fill allocated.
type gunzipper struct {
	readers sync.Pool // *gzip.Reader
	buffers sync.Pool // *bytes.Buffer
}

// maxPooledPlain is the largest buffer kept for the next fill: a rare huge
// page's buffer goes to the collector with it.
const maxPooledPlain = 1 << 20

// decompress checks that body is one complete gzip stream no larger than
// limit once decompressed, and returns its decompressed length, and, when
// keep, the decompressed bytes in a buffer to hand back with release.
func (g *gunzipper) decompress(body []byte, limit int64, keep bool) (*bytes.Buffer, int64, error) {
	zr, _ := g.readers.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(body))
	} else {
		err = zr.Reset(bytes.NewReader(body))
	}
	if err != nil {
		return nil, 0, err
	}
	defer g.readers.Put(zr)
	var plain *bytes.Buffer
	var n int64
	if keep {
		plain, _ = g.buffers.Get().(*bytes.Buffer)
		if plain == nil {
			plain = new(bytes.Buffer)
		}
		plain.Reset()
		n, err = plain.ReadFrom(io.LimitReader(zr, limit+1))
	} else {
		n, err = io.Copy(io.Discard, io.LimitReader(zr, limit+1))
	}
	if err == nil && n > limit {
		err = errGzipTooLarge
	}
	if err == nil {
		err = zr.Close()
	}
	if err != nil {
		g.release(plain)
		return nil, 0, err
	}
	return plain, n, nil
}

// release hands back a buffer decompress returned (nil: none).
func (g *gunzipper) release(plain *bytes.Buffer) {
	if plain != nil && plain.Cap() <= maxPooledPlain {
		g.buffers.Put(plain)
	}
}
