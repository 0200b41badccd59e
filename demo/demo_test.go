package demo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPostBumpsTheVersion(t *testing.T) {
	srv := httptest.NewServer(&Site{})
	defer srv.Close()
	get := func() string {
		resp, err := http.Get(srv.URL + "/events/42")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	assert.Contains(t, get(), `content="1"`)
	resp, err := http.Post(srv.URL+"/events/42", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Contains(t, get(), `content="2"`)
}
