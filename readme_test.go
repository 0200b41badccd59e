package main

// The README's examples work as written.

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every JSON example in README.md is a revalidate body that the real
// binary accepts: a user who copies one gets a 200.
func TestReadmeJSONExamplesAreAccepted(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, blocks, "README.md has JSON examples")

	o := newTestOrigin(t, page("<p>a page</p>"))
	p := startProxy(t, o.URL, nil)
	for _, b := range blocks {
		res := p.request(http.MethodPost, "/api/revalidate", strings.NewReader(b[1]),
			"Authorization", "Bearer "+apiSecret, "Content-Type", "application/json")
		assert.Equal(t, http.StatusOK, res.Status, "example:\n%s\nanswer: %s", b[1], res.Body)
		assert.Contains(t, res.Body, `"revalidated":true`)
	}
}
