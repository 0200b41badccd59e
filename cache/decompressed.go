package cache

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"

	"github.com/dgraph-io/ristretto/v2"
)

// Decompressed keeps decompressed copies of gzip-stored pages that clients
// without gzip (curl, bots, health checks) ask for again and again, so such
// a page is not gunzipped on every hit, while a page asked for once costs no
// memory: a copy is made from its second plain answer on. A nil
// *Decompressed keeps nothing.
type Decompressed struct {
	rc      *ristretto.Cache[string, []byte]
	maxItem int64      // largest body kept
	keys    lookupKeys // room to build a lookup key in
}

// NewDecompressed builds a Decompressed within budget bytes; a page whose
// decompressed body exceeds an eighth of it is never kept.
func NewDecompressed(budget int64) (*Decompressed, error) {
	rc, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters:        max(budget/16384*10, 1000),
		MaxCost:            budget,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: decompressed bodies: %w", err)
	}
	return &Decompressed{rc: rc, maxItem: budget / 8}, nil
}

// Body returns p's decompressed body, or nil: decompress while writing.
// p must be stored gzipped.
func (d *Decompressed) Body(p *Page) []byte {
	if d == nil || p.PlainLen > d.maxItem {
		return nil
	}
	kb := d.keys.get()
	defer d.keys.put(kb)
	*kb = plainKey(*kb, p)
	if body, ok := d.rc.Get(view(*kb)); ok {
		return body
	}
	if p.NotePlainHit() < 2 {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(p.Body))
	if err != nil {
		return nil
	}
	buf := bytes.NewBuffer(make([]byte, 0, p.PlainLen))
	if _, err := io.Copy(buf, zr); err != nil {
		return nil
	}
	body := buf.Bytes()
	d.rc.Set(string(*kb), body, int64(len(body))+int64(len(*kb))+64)
	return body
}

// plainKey appends the key of p's decompressed copy to b: p's key, its
// variant and its generation, so that a replaced page never finds the
// copy of the page it replaced.
func plainKey(b []byte, p *Page) []byte {
	b = p.Key.Append(b)
	b = append(b, 0)
	b = p.AppendVariantID(b)
	return strconv.AppendUint(b, p.Gen, 10)
}

// Close stops ristretto's goroutines.
func (d *Decompressed) Close() {
	if d != nil {
		d.rc.Close()
	}
}

// Peek returns p's decompressed body if it is kept, or nil, without
// counting a plain hit or decompressing: for a caller that hands the
// request on to Body's caller when it gets nil.
func (d *Decompressed) Peek(p *Page) []byte {
	if d == nil || p.PlainLen > d.maxItem {
		return nil
	}
	kb := d.keys.get()
	defer d.keys.put(kb)
	*kb = plainKey(*kb, p)
	body, _ := d.rc.Get(view(*kb))
	return body
}
