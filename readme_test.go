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

	"github.com/isrproxy/isrproxy/config"
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

// The README's configuration table lists every variable isrproxy reads,
// with the default the code uses: the struct tags of package config are the
// one place defaults are written, and the table must follow them.
func TestReadmeConfigurationTableMatchesTheDefaults(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	documented := map[string]string{} // name -> default cell
	row := regexp.MustCompile("(?m)^\\| ((?:`[A-Z_]+`(?:, )?)+) \\| ([^|]*) \\|")
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		for _, name := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(m[1], -1) {
			documented[name[1]] = strings.TrimSpace(m[2])
		}
	}
	for _, v := range config.Defaults() {
		cell, ok := documented[v.Name]
		if !assert.True(t, ok, "%s is not in README's configuration table", v.Name) {
			continue
		}
		switch {
		case v.Name == "REVALIDATE_SECRET" || v.Name == "HTTPS_REDIRECT" || v.Name == "NODE_ID":
			// Defaults that depend on another variable, said in words.
			assert.Regexp(t, "unless|when|host name", cell, v.Name)
		case v.Default == "":
			assert.NotContains(t, cell, "`", "%s has no default, but the README names one: %s", v.Name, cell)
		case v.Name == "ACME_CA":
			assert.Contains(t, cell, "Let's Encrypt production directory")
		default:
			assert.Equal(t, "`"+v.Default+"`", cell, "%s: the README's default differs from the code's", v.Name)
		}
	}
}
