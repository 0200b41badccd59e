// Package benchhtml makes the 16 KiB HTML pages that the snapshot
// benchmarks store: text that compresses about as a CMS's does (4-6x).
package benchhtml

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
)

var words = []string{"isrproxy", "revalidate", "page", "cache", "origin", "the", "and", "of", "editor", "news",
	"article", "content", "theme", "wordpress", "drupal", "menu", "footer", "header", "sidebar", "widget"}

// Gzipped returns page i (the same bytes for the same i): its plain
// length, and its body gzipped as isrproxy stores it.
func Gzipped(i int) (plain int, gz []byte) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!doctype html><html><head><title>Page %d</title></head><body>", i)
	for b.Len() < 16<<10-64 {
		fmt.Fprintf(&b, "<p class=\"c%d\">", rng.IntN(50))
		for range 12 {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%x</p>\n", rng.Uint32())
	}
	b.WriteString("</body></html>")
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	zw.Write(b.Bytes())
	zw.Close()
	return b.Len(), z.Bytes()
}
