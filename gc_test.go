package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestGCPercentFor: a small heap keeps Go's default; a heap of stored pages
// grows by a fixed headroom, not by its own size, and never collects more
// often than every 10 % of growth.
func TestGCPercentFor(t *testing.T) {
	assert.Equal(t, 100, gcPercentFor(0))
	assert.Equal(t, 100, gcPercentFor(8<<20))
	assert.Equal(t, 100, gcPercentFor(gcHeadroom))
	assert.Equal(t, 50, gcPercentFor(2*gcHeadroom))
	assert.Equal(t, 25, gcPercentFor(4*gcHeadroom))
	assert.Equal(t, 10, gcPercentFor(1<<30))
	assert.Equal(t, 10, gcPercentFor(64<<30))
}
