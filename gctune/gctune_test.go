package gctune

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The heap may grow by the same headroom whatever its
// size, within 10 % and 1000 % of the live heap.
func TestGCPercentFor(t *testing.T) {
	assert.Equal(t, 1000, gcPercentFor(0))
	assert.Equal(t, 1000, gcPercentFor(1<<20))
	assert.Equal(t, 400, gcPercentFor(8<<20))
	assert.Equal(t, 100, gcPercentFor(gcHeadroom))
	assert.Equal(t, 50, gcPercentFor(2*gcHeadroom))
	assert.Equal(t, 25, gcPercentFor(4*gcHeadroom))
	assert.Equal(t, 10, gcPercentFor(1<<30))
	assert.Equal(t, 10, gcPercentFor(64<<30))
}
