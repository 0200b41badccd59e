package page

import (
	"bytes"
	"testing"
)

func TestRenderSizeRatioVersion(t *testing.T) {
	var raw, gz int
	for n := 0; n < 2000; n += 13 {
		p := Render(n, 7)
		if !bytes.Equal(p, Render(n, 7)) {
			t.Fatalf("page %d: not deterministic", n)
		}
		if got := ParseVersion(p); got != 7 {
			t.Fatalf("page %d: version %d, want 7", n, got)
		}
		if len(p) < TargetSize-1024 || len(p) > TargetSize+1024 {
			t.Errorf("page %d: %d bytes, want about %d", n, len(p), TargetSize)
		}
		z := Gzip(p)
		if r := float64(len(p)) / float64(len(z)); r < 3.8 || r > 6 {
			t.Errorf("page %d: gzip ratio %.2f, want 4–6", n, r)
		}
		raw += len(p)
		gz += len(z)
	}
	if r := float64(raw) / float64(gz); r < 4 || r > 6 {
		t.Errorf("mean gzip ratio %.2f, want 4–6", r)
	}
	if bytes.Equal(Render(1, 1), Render(2, 1)) {
		t.Error("pages 1 and 2 are equal")
	}
}

func TestParsePath(t *testing.T) {
	for path, want := range map[string]int{
		"/page/0": 0, "/page/999999": 999999, "/page/1000000": -1, "/page/01": -1,
		"/page/": -1, "/page/x": -1, "/other/1": -1, "/page/-1": -1,
	} {
		if got := ParsePath(path); got != want {
			t.Errorf("ParsePath(%q) = %d, want %d", path, got, want)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"": false, "identity": false, "gzip": true, "gzip, deflate, br": true,
		"br;q=1.0, gzip;q=0.8": true, "gzip;q=0": false, "deflate, br": false, "*": true,
	} {
		if got := AcceptsGzip(ae); got != want {
			t.Errorf("AcceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}
