package cluster

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/isrproxy/isrproxy/cache"
)

// A page travels through Redis as one blob: a magic word, the length of a
// JSON head, the head, the body exactly as stored (gzip when it is stored
// gzipped), and a CRC-32 of everything before it. A blob that is short,
// foreign or altered fails the check as a whole: no replica ever stores a
// partial page.
var magic = []byte("isrp1\n")

// head is everything of a cache.Page but its body.
type head struct {
	Key          string       `json:"k"`
	HTTPS        bool         `json:"https,omitempty"`
	Status       int          `json:"s"`
	Header       cache.Fields `json:"h"`
	Gzip         bool         `json:"gz,omitempty"`
	PlainLen     int64        `json:"pl,omitempty"`
	Vary         []string     `json:"v,omitempty"`
	VaryValues   []string     `json:"vv,omitempty"`
	Tags         []string     `json:"t,omitempty"`
	Links        cache.Links  `json:"l,omitempty"`
	ETag         string       `json:"e,omitempty"`
	LastModified string       `json:"lm,omitempty"`
	StoredAt     int64        `json:"at"` // Unix nanoseconds
	OriginAge    int64        `json:"age,omitempty"`
	Gen          uint64       `json:"g"`
}

// errCorrupt marks a blob that is not a page of ours.
var errCorrupt = errors.New("not a page blob")

// encodePage returns p's blob.
func encodePage(p *cache.Page) ([]byte, error) {
	h := head{
		Key: p.Key.String(), HTTPS: p.HTTPS, Status: p.Status, Header: p.Header, Gzip: p.Gzip,
		PlainLen: p.PlainLen, Vary: p.Vary, VaryValues: p.VaryValues, Tags: p.Tags, Links: p.Links, ETag: p.ETag,
		LastModified: p.LastModified, StoredAt: p.StoredAt.UnixNano(), OriginAge: p.OriginAge, Gen: p.Gen,
	}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(magic) + 4 + len(js) + len(p.Body) + 4)
	b.Write(magic)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(js))))
	b.Write(js)
	b.Write(p.Body)
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))
	return b.Bytes(), nil
}

// decodePage reads a blob; want, when not empty, is the key it must hold.
func decodePage(blob []byte, want string) (*cache.Page, error) {
	if len(blob) < len(magic)+8 || !bytes.Equal(blob[:len(magic)], magic) {
		return nil, fmt.Errorf("%w: no header", errCorrupt)
	}
	sum := binary.BigEndian.Uint32(blob[len(blob)-4:])
	if crc32.ChecksumIEEE(blob[:len(blob)-4]) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	rest := blob[len(magic) : len(blob)-4]
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(n) > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: head longer than the blob", errCorrupt)
	}
	var h head
	if err := json.Unmarshal(rest[:n], &h); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if want != "" && h.Key != want {
		return nil, fmt.Errorf("%w: holds another key", errCorrupt)
	}
	if len(h.Vary) != len(h.VaryValues) || h.Status < 100 || h.Status > 999 || h.Key == "" {
		return nil, fmt.Errorf("%w: inconsistent head", errCorrupt)
	}
	body := rest[n:]
	p := &cache.Page{
		Key: cache.ParseKey(h.Key), HTTPS: h.HTTPS, Status: h.Status, Header: h.Header,
		Body: bytes.Clone(body), Gzip: h.Gzip, PlainLen: h.PlainLen, Vary: h.Vary, VaryValues: h.VaryValues,
		Tags: h.Tags, Links: h.Links, ETag: h.ETag, LastModified: h.LastModified, StoredAt: time.Unix(0, h.StoredAt),
		OriginAge: h.OriginAge, Gen: h.Gen,
	}
	return p, nil
}
