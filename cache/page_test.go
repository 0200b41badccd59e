package cache

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPlainHeader: a client without gzip is sent the stored header set less
// Content-Encoding, with the decompressed length and a weak ETag; the
// stored set is left as it was, and the plain one is built once.
func TestPlainHeader(t *testing.T) {
	p := &Page{
		Header: FieldsOf(http.Header{
			"Content-Encoding": {"gzip"},
			"Content-Length":   {"40"},
			"Content-Type":     {"text/html"},
			"Etag":             {`"v1"`},
			"Vary":             {"Accept-Encoding"},
		}),
		Gzip:     true,
		PlainLen: 123,
	}
	plain := p.PlainHeader()
	assert.Equal(t, Fields{
		{"Content-Length", []string{"123"}},
		{"Content-Type", []string{"text/html"}},
		{"Etag", []string{`W/"v1"`}},
		{"Vary", []string{"Accept-Encoding"}},
	}, plain)
	assert.Equal(t, "gzip", p.Header.Get("Content-Encoding"))
	assert.Equal(t, "40", p.Header.Get("Content-Length"))
	assert.Equal(t, `"v1"`, p.Header.Get("Etag"))
	again := p.PlainHeader()
	assert.Same(t, &plain[0], &again[0], "built once, then shared")

	weak := &Page{Header: FieldsOf(http.Header{"Etag": {`W/"v2"`}}), Gzip: true}
	assert.Equal(t, `W/"v2"`, weak.PlainHeader().Get("Etag"), "a weak ETag stays as it is")
}

// TestFieldsOf: sorted by name, values shared with the header they came from.
func TestFieldsOf(t *testing.T) {
	h := http.Header{"B": {"2"}, "A": {"1", "1b"}}
	fs := FieldsOf(h)
	assert.Equal(t, Fields{{"A", []string{"1", "1b"}}, {"B", []string{"2"}}}, fs)
	assert.Equal(t, "1", fs.Get("A"))
	assert.Equal(t, "", fs.Get("C"))
}
