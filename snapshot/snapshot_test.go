package snapshot

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/isrproxy/isrproxy/cache"
)

func newStore(t testing.TB, maxBytes int64) *cache.Store {
	t.Helper()
	s, err := cache.New(cache.Config{MaxBytes: maxBytes})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func gzipped(t testing.TB, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// fill stores n pages of every kind a store holds: plain and gzip bodies,
// Vary variants, an https variant, queries, validators, tags, an origin
// Age, a stale mark.
func fill(t testing.TB, s *cache.Store, n int) {
	t.Helper()
	stored := time.Unix(1_700_000_000, 123456789)
	for i := range n {
		body := []byte(fmt.Sprintf("<p>page %d</p>", i))
		hdr := http.Header{"Content-Type": {"text/html"}, "Content-Length": {strconv.Itoa(len(body))}, "X-Many": {"a", "b"}}
		p := &cache.Page{
			Key:      cache.Key{Host: "example.com", Path: fmt.Sprintf("/p/%d", i)},
			Status:   200,
			Body:     body,
			Tags:     []string{"all", "t" + strconv.Itoa(i%7)},
			Links:    cache.NewLinks([]string{"/p/" + strconv.Itoa(i+1), "/"}),
			StoredAt: stored.Add(time.Duration(i) * time.Second),
			Gen:      s.NextGen(),
		}
		switch i % 5 {
		case 1:
			plain := fmt.Sprintf("<p>gzip page %d</p>", i)
			p.Body, p.Gzip, p.PlainLen = gzipped(t, plain), true, int64(len(plain))
			hdr.Set("Content-Encoding", "gzip")
			hdr.Set("Content-Length", strconv.Itoa(len(p.Body)))
			p.ETag = `"e` + strconv.Itoa(i) + `"`
			hdr.Set("Etag", p.ETag)
		case 2:
			p.Key.Query = "a=1&b=2"
			p.OriginAge = 42
			p.LastModified = "Mon, 02 Jan 2006 15:04:05 GMT"
			p.Status = 404
		case 3:
			p.MarkStale()
			p.HTTPS = true
		case 4:
			p.Vary, p.VaryValues = []string{"Accept-Language"}, []string{"fr"}
			en := &cache.Page{Key: p.Key, Status: 200, Body: []byte("en"), Vary: []string{"Accept-Language"},
				VaryValues: []string{cache.VaryAbsent}, StoredAt: stored, Gen: s.NextGen()}
			require.Equal(t, cache.Stored, s.Put(en))
		}
		p.Header = cache.FieldsOf(hdr)
		r := s.Put(p)
		require.Contains(t, []cache.PutResult{cache.Stored, cache.Replaced}, r, "page %d", i)
	}
}

// pages lists every stored page by key and variant.
func pages(s *cache.Store) map[string]*cache.Page {
	m := map[string]*cache.Page{}
	s.Each(func(p *cache.Page) bool {
		m[p.Key.String()+" "+p.VariantID()] = p
		return true
	})
	return m
}

// samePage asserts that got is want, field by field.
func samePage(t *testing.T, want, got *cache.Page, msg string) {
	t.Helper()
	assert.Equal(t, want.Key, got.Key, msg)
	assert.Equal(t, want.HTTPS, got.HTTPS, msg)
	assert.Equal(t, want.Status, got.Status, msg)
	assert.Equal(t, want.Header, got.Header, msg)
	assert.Equal(t, want.Body, got.Body, msg)
	assert.Equal(t, want.Gzip, got.Gzip, msg)
	assert.Equal(t, want.PlainLen, got.PlainLen, msg)
	assert.Equal(t, want.Vary, got.Vary, msg)
	assert.Equal(t, want.VaryValues, got.VaryValues, msg)
	assert.Equal(t, want.Tags, got.Tags, msg)
	assert.Equal(t, want.Links, got.Links, msg)
	assert.Equal(t, want.ETag, got.ETag, msg)
	assert.Equal(t, want.LastModified, got.LastModified, msg)
	assert.True(t, want.StoredAt.Equal(got.StoredAt), "%s: stored at %v, want %v", msg, got.StoredAt, want.StoredAt)
	assert.Equal(t, want.OriginAge, got.OriginAge, msg)
	assert.Equal(t, want.Gen, got.Gen, msg)
	assert.Equal(t, want.StaleMarked(), got.StaleMarked(), msg)
}

func TestWriteThenLoadKeepsEveryPage(t *testing.T) {
	src := newStore(t, 64<<20)
	fill(t, src, 50)
	path := filepath.Join(t.TempDir(), "pages.snap")
	w, err := Write(path, src)
	require.NoError(t, err)
	want := pages(src)
	assert.Equal(t, len(want), w.Pages)
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, w.Bytes, info.Size())
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	dst := newStore(t, 64<<20)
	res := Load(path, dst, Options{})
	assert.True(t, res.Complete, res.Problems)
	assert.Empty(t, res.Problems)
	assert.Positive(t, res.Took)
	assert.Positive(t, w.Took)
	assert.Equal(t, len(want), res.Pages)
	got := pages(dst)
	require.Len(t, got, len(want))
	var maxGen uint64
	for id, p := range want {
		samePage(t, p, got[id], id)
		maxGen = max(maxGen, p.Gen)
	}
	assert.Greater(t, dst.NextGen(), maxGen, "new generations are above every loaded one")
	assert.Len(t, dst.KeysByTag("example.com", "t3"), len(src.KeysByTag("example.com", "t3")), "the tag index is rebuilt")
	assert.Equal(t, src.KeysLinkingTo("example.com", "/p/8"), dst.KeysLinkingTo("example.com", "/p/8"), "and the links")
	assert.Len(t, dst.KeysLinkingTo("example.com", "/p/8"), 1)

	// No temporary file is left beside it.
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1)
}

func TestLoadOfNothing(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, 1<<20)

	res := Load(filepath.Join(dir, "missing"), s, Options{})
	assert.Empty(t, res.Problems, "no snapshot yet is no problem")
	assert.Zero(t, res.Pages)

	res = Load(dir, s, Options{})
	assert.Contains(t, res.Problems[0], "is a directory")

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	res = Load(empty, s, Options{})
	assert.Equal(t, []string{"the file is empty"}, res.Problems)

	junk := filepath.Join(dir, "junk")
	require.NoError(t, os.WriteFile(junk, []byte("<html>not a snapshot</html>"), 0o600))
	res = Load(junk, s, Options{})
	assert.Contains(t, res.Problems[0], "not an isrproxy snapshot")
	entries, _ := s.Stats()
	assert.Zero(t, entries)
}

// written returns a snapshot of n pages and the pages it holds.
func written(t *testing.T, n int) ([]byte, map[string]*cache.Page) {
	t.Helper()
	src := newStore(t, 64<<20)
	fill(t, src, n)
	path := filepath.Join(t.TempDir(), "pages.snap")
	_, err := Write(path, src)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b, pages(src)
}

// loadBytes loads b as a snapshot into a new store and checks that every
// page restored is exactly one that was written: never a partial or mixed
// page.
func loadBytes(t *testing.T, b []byte, want map[string]*cache.Page, budget int64) (Loaded, map[string]*cache.Page) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pages.snap")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	dst := newStore(t, budget)
	res := Load(path, dst, Options{})
	got := pages(dst)
	for id, p := range got {
		w, ok := want[id]
		if assert.True(t, ok, "a page that was never written: %s", id) {
			samePage(t, w, p, id)
		}
	}
	assert.Equal(t, res.Pages, len(got))
	return res, got
}

func TestLoadOfATruncatedSnapshotKeepsTheWholePages(t *testing.T) {
	b, want := written(t, 40)
	for cut := 0; cut < len(b); cut += 89 {
		res, got := loadBytes(t, b[:cut], want, 64<<20)
		assert.False(t, res.Complete, "cut at %d", cut)
		assert.NotEmpty(t, res.Problems, "cut at %d", cut)
		assert.LessOrEqual(t, len(got), len(want))
	}
	// Cut just before the end marker: every page, but not complete.
	res, got := loadBytes(t, b[:len(b)-frameHead-2], want, 64<<20)
	assert.Len(t, got, len(want))
	assert.False(t, res.Complete)
	assert.Contains(t, res.Problems[0], "cut short")
}

func TestLoadOfAFlippedByteSkipsOnlyItsPage(t *testing.T) {
	b, want := written(t, 40)
	// Every frame, damaged in each of its parts in turn.
	var starts []int
	for i := headerLen; i+4 <= len(b); i++ {
		if string(b[i:i+4]) == marker {
			starts = append(starts, i)
		}
	}
	require.Len(t, starts, len(want)+1, "a frame per page and the end")
	for fi := 0; fi < len(starts)-1; fi += 4 {
		at := starts[fi]
		metaLen := int(binary.BigEndian.Uint32(b[at+4:]))
		for _, off := range []int{0, 5, 9, 13, frameHead + 3, frameHead + metaLen - 1, frameHead + metaLen} {
			c := bytes.Clone(b)
			c[at+off] ^= 0x40
			res, got := loadBytes(t, c, want, 64<<20)
			msg := fmt.Sprintf("frame %d, byte %d", fi, off)
			assert.Len(t, got, len(want)-1, msg)
			assert.Equal(t, 1, res.Corrupt, msg)
			assert.True(t, res.Complete, "%s: %v", msg, res.Problems)
		}
	}
}

func TestLoadOfAnotherVersionLoadsNothing(t *testing.T) {
	b, want := written(t, 5)
	c := bytes.Clone(b)
	binary.BigEndian.PutUint32(c[8:], Version+1)
	binary.BigEndian.PutUint32(c[24:], crc32.Checksum(c[:24], castagnoli))
	res, got := loadBytes(t, c, want, 64<<20)
	assert.Empty(t, got)
	assert.Contains(t, res.Problems[0], "format version 2")

	c = bytes.Clone(b)
	c[20] ^= 1 // the header's own checksum catches it
	res, got = loadBytes(t, c, want, 64<<20)
	assert.Empty(t, got)
	assert.Contains(t, res.Problems[0], "header fails its checksum")
}

// A snapshot larger than the budget loads what fits, never more.
func TestLoadStaysWithinTheBudget(t *testing.T) {
	src := newStore(t, 64<<20)
	body := bytes.Repeat([]byte("x"), 8<<10)
	for i := range 200 {
		src.Put(&cache.Page{Key: cache.Key{Host: "example.com", Path: "/p/" + strconv.Itoa(i)}, Status: 200, Body: body, Gen: src.NextGen()})
	}
	path := filepath.Join(t.TempDir(), "pages.snap")
	_, err := Write(path, src)
	require.NoError(t, err)

	dst := newStore(t, 256<<10)
	res := Load(path, dst, Options{})
	_, bytes := dst.Stats()
	assert.LessOrEqual(t, bytes, int64(256<<10))
	assert.Greater(t, res.Pages, 20)
	assert.Equal(t, 200, res.Pages+res.OverBudget)
	assert.True(t, res.Complete)
}

// While a write is under way (where a crash would stop it), the snapshot
// at the path is still the previous one, whole and loadable; the new one
// replaces it only once complete.
func TestSnapshotIsReplacedOnlyWhenWhole(t *testing.T) {
	src := newStore(t, 1<<20)
	fill(t, src, 20)
	dir := t.TempDir()
	path := filepath.Join(dir, "pages.snap")
	_, err := Write(path, src)
	require.NoError(t, err)
	before, _ := os.ReadFile(path)

	seen := 0
	_, err = Write(path, peeking{src, func() {
		seen++
		now, _ := os.ReadFile(path)
		require.Equal(t, before, now, "mid-write, page %d", seen)
		tmp, _ := filepath.Glob(path + ".tmp-*")
		require.Len(t, tmp, 1, "the new snapshot is written beside it")
	}})
	require.NoError(t, err)
	assert.Equal(t, len(pages(src)), seen)
	res := Load(path, newStore(t, 1<<20), Options{})
	assert.True(t, res.Complete)
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "the temporary file was renamed")
}

// A write into a directory that is gone fails, and says so.
func TestWriteIntoAMissingDirectoryFails(t *testing.T) {
	_, err := Write(filepath.Join(t.TempDir(), "gone", "pages.snap"), newStore(t, 1<<20))
	assert.Error(t, err)
}

// peeking is a Source that calls look before handing each page on.
type peeking struct {
	*cache.Store
	look func()
}

func (p peeking) Each(fn func(*cache.Page) bool) {
	p.Store.Each(func(pg *cache.Page) bool {
		p.look()
		return fn(pg)
	})
}

// RemoveTemp removes what a process killed mid-write left, and nothing
// else.
func TestRemoveTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pages.snap")
	for _, name := range []string{"pages.snap", "pages.snap.tmp-123", "pages.snap.tmp-456", "other.tmp-1"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600))
	}
	assert.Len(t, RemoveTemp(path), 2)
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"other.tmp-1", "pages.snap"}, names)
}
