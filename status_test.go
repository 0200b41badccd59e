package main

// GET REVALIDATE_PATH/status?path=…: the editor's view of one key
// (README.md#status).

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type statusAnswer struct {
	Host     string `json:"host"`
	Path     string `json:"path"`
	Stored   bool   `json:"stored"`
	Variants []struct {
		HTTPS    bool               `json:"https"`
		Status   int                `json:"status"`
		StoredAt string             `json:"stored_at"`
		Age      *int64             `json:"age"`
		Bytes    int64              `json:"bytes"`
		Gzip     bool               `json:"gzip"`
		Tags     []string           `json:"tags"`
		State    string             `json:"state"`
		Vary     map[string]*string `json:"vary"`
	} `json:"variants"`
	PassThroughUntil *string `json:"pass_through_until"`
	Reason           string  `json:"reason"`
	LastRevalidation *struct {
		At      string `json:"at"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"last_revalidation"`
}

func (in *instance) status(query string) (int, statusAnswer) {
	in.t.Helper()
	got := in.get("/api/revalidate/status?"+query, "Authorization", "Bearer "+apiSecret)
	var st statusAnswer
	if got.Status == http.StatusOK {
		require.NoError(in.t, json.Unmarshal([]byte(got.Body), &st), got.Body)
		assert.Equal(in.t, "no-store", got.Header.Get("Cache-Control"))
	}
	return got.Status, st
}

func TestStatusOfAStoredPage(t *testing.T) {
	var fail atomic.Bool
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Tag", "post-1,home")
		w.Header().Set("Vary", "Accept-Language")
		w.Write([]byte("<p>" + strings.Repeat("hello ", 500) + "</p>"))
	})
	p := startProxy(t, o.URL, nil)
	p.get("/a?b=2&a=1", "Accept-Language", "fr")

	code, st := p.status("path=" + "/a%3Fa%3D1%26b%3D2")
	require.Equal(t, http.StatusOK, code)
	assert.True(t, st.Stored)
	assert.Equal(t, "/a?a=1&b=2", st.Path)
	require.Len(t, st.Variants, 1)
	v := st.Variants[0]
	assert.Equal(t, 200, v.Status)
	assert.True(t, v.Gzip)
	assert.Positive(t, v.Bytes)
	assert.Less(t, v.Bytes, int64(3000), "bytes as stored, compressed")
	assert.Equal(t, []string{"post-1", "home"}, v.Tags)
	assert.Equal(t, "fresh", v.State)
	assert.False(t, v.HTTPS)
	require.NotNil(t, v.Age)
	require.NotNil(t, v.Vary["Accept-Language"])
	assert.Equal(t, "fr", *v.Vary["Accept-Language"])
	_, err := time.Parse(time.RFC3339Nano, v.StoredAt)
	assert.NoError(t, err)
	assert.Nil(t, st.PassThroughUntil)
	assert.Nil(t, st.LastRevalidation)

	// A soft mark shows as stale; a failed refetch as the last revalidation.
	p.revalidate("path=/a%3Fa%3D1%26b%3D2&mode=soft")
	_, st = p.status("path=/a%3Fa%3D1%26b%3D2")
	assert.Equal(t, "stale", st.Variants[0].State)
	require.NotNil(t, st.LastRevalidation)
	assert.Equal(t, "marked", st.LastRevalidation.Outcome)

	fail.Store(true)
	assert.Equal(t, http.StatusBadGateway, p.revalidate("path=/a%3Fa%3D1%26b%3D2").Status)
	_, st = p.status("path=/a%3Fa%3D1%26b%3D2")
	require.NotNil(t, st.LastRevalidation)
	assert.Equal(t, "failed", st.LastRevalidation.Outcome)
	assert.Equal(t, "origin answered 503; previous version kept", st.LastRevalidation.Error)
	assert.True(t, st.Stored)
}

func TestStatusTellsWhyAPageIsNotStored(t *testing.T) {
	o := newTestOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cookie":
			w.Header().Set("Set-Cookie", "s=1")
		case "/private":
			w.Header().Set("Cache-Control", "private")
		case "/nostore":
			w.Header().Set("Cache-Control", "no-store")
		case "/star":
			w.Header().Set("Vary", "*")
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
		}
		w.Write([]byte("<p>x</p>"))
	})
	p := startProxy(t, o.URL, nil)
	for path, reason := range map[string]string{"/cookie": "set-cookie", "/private": "private", "/nostore": "no-store",
		"/star": "vary-star", "/teapot": "status"} {
		p.get(path)
		code, st := p.status("path=" + path)
		require.Equal(t, http.StatusOK, code)
		assert.False(t, st.Stored, path)
		require.NotNil(t, st.PassThroughUntil, path)
		assert.Equal(t, reason, st.Reason, path)
	}
}

func TestStatusOfAnUnknownKeyAndBadCalls(t *testing.T) {
	o := newTestOrigin(t, page("<p>x</p>"))
	p := startProxy(t, o.URL, nil)
	code, st := p.status("path=/never&host=example.com")
	require.Equal(t, http.StatusOK, code)
	assert.False(t, st.Stored)
	assert.Equal(t, "example.com", st.Host)
	assert.Empty(t, st.Variants)
	assert.Zero(t, o.hits.Load(), "status fetches nothing")

	assert.Equal(t, http.StatusUnauthorized, p.get("/api/revalidate/status?path=/a").Status)
	assert.Equal(t, http.StatusBadRequest, p.get("/api/revalidate/status", "Authorization", "Bearer "+apiSecret).Status)
	assert.Equal(t, http.StatusBadRequest, p.get("/api/revalidate/status?path=http://x/", "Authorization", "Bearer "+apiSecret).Status)
	assert.Equal(t, http.StatusMethodNotAllowed, p.request(http.MethodPost, "/api/revalidate/status?path=/a", nil, "Authorization", "Bearer "+apiSecret).Status)
}
