package proxy

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/isrproxy/isrproxy/framing"
)

// TestFastPathHitAllocatesNothing: a stored hit on the fast path, from the
// parsed head to the answer's bytes, allocates nothing, for browsers (the
// stored gzip body) and for clients without gzip (the decompressed copy).
// Every allocation a hit makes brings the next collection closer, and a
// collection under load lengthens the tail.
func TestFastPathHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector; .ci/run runs this without it")
	}
	for _, ae := range []string{"gzip, deflate, br", ""} {
		fast, head := fastHitSetup(t, ae)
		var hd framing.Head // kept by the connection, as framing keeps it
		allocs := testing.AllocsPerRun(200, func() {
			hd, _ = framing.ParseHead(head)
			if ok, err := fast.ServeFast(&hd, io.Discard); !ok || err != nil {
				t.Fatalf("not answered: %v", err)
			}
		})
		assert.Zero(t, allocs, "Accept-Encoding %q", ae)
	}
}
