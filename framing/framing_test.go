package framing

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	const host = "Host: example.com\r\n"
	tests := []struct {
		name, head string
		bad        bool
		length     int64
		chunked    bool
	}{
		{name: "plain GET", head: "GET / HTTP/1.1\r\n" + host + "\r\n"},
		{name: "leading empty line", head: "\r\nGET / HTTP/1.1\r\n" + host + "\r\n"},
		{name: "HTTP/1.0", head: "GET / HTTP/1.0\r\n\r\n"},
		{name: "Content-Length", head: "POST / HTTP/1.1\r\n" + host + "Content-Length: 12\r\n\r\n", length: 12},
		{name: "chunked", head: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n", chunked: true},
		{name: "chunked any case, OWS", head: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\tChunked \r\n\r\n", chunked: true},
		{name: "bare LF", head: "GET / HTTP/1.1\n" + host + "\r\n", bad: true},
		{name: "bare LF everywhere", head: "GET / HTTP/1.1\nHost: x\n\n", bad: true},
		{name: "bare CR", head: "GET / HTTP/1.1\r\nX: a\rb\r\n" + host + "\r\n", bad: true},
		{name: "CL and TE", head: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
		{name: "two CL", head: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", bad: true},
		{name: "TE not chunked", head: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n", bad: true},
		{name: "TE xchunked", head: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n", bad: true},
		{name: "space before colon", head: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n", bad: true},
		{name: "folded line", head: "POST / HTTP/1.1\r\n" + host + "X: a\r\n chunked\r\n\r\n", bad: true},
		{name: "TE in HTTP/1.0", head: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
		{name: "h2 preface", head: "PRI * HTTP/2.0\r\n\r\n", bad: true},
		{name: "bad CL", head: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1e3\r\n\r\n", bad: true},
		{name: "NUL", head: "GET /\x00 HTTP/1.1\r\n\r\n", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := headEnd([]byte(tt.head))
			require.Equal(t, len(tt.head), end, "head end")
			v := check(tt.head)
			assert.Equal(t, tt.bad, v.bad != "", "verdict %q", v.bad)
			if !tt.bad {
				assert.Equal(t, tt.length, v.length)
				assert.Equal(t, tt.chunked, v.chunked)
			}
		})
	}
}

// Through a real server: pipelined requests with bodies reach the handler
// intact, and a malformed one gets 400 without reaching it.
func TestListenerOverHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var seen []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(b))
		io.WriteString(w, "ok")
	})}
	go srv.Serve(Listen(ln))
	defer srv.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	io.WriteString(conn, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"+
		"GET /c HTTP/1.1\nHost: x\n\n")
	br := bufio.NewReader(conn)
	var statuses []int
	for range 3 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	assert.Equal(t, []int{200, 200, 400}, statuses)
	assert.Equal(t, []string{"POST /a hello", "GET /b "}, seen)
	assert.True(t, strings.HasPrefix(seen[0], "POST"))
}

// A head that never ends is held only up to a little more than net/http
// would read; past that it is passed on for net/http to refuse (431).
func TestUnendingHeadIsNotGatheredWithoutBound(t *testing.T) {
	c := &conn{}
	c.feed([]byte("GET / HTTP/1.1\r\nHost: a\r\nX-Big: "))
	chunk := bytes.Repeat([]byte("a"), 4096)
	peak := 0
	for range 256 { // 1 MiB
		c.feed(chunk)
		peak = max(peak, cap(c.head))
		c.out.Reset()
	}
	assert.LessOrEqual(t, peak, 2*maxHead, "the head buffer grew to %d bytes", peak)
	assert.Equal(t, raw, c.state)
}

// TestPipelinedRequestsPassUnchangedWhateverTheSplit: however a stream of
// pipelined requests (heads, a body, a leading empty line) arrives in
// pieces, what the checker passes on is the stream itself. The bytes after
// one head are fed back through the buffer that held it, which is reused
// for the next head.
func TestPipelinedRequestsPassUnchangedWhateverTheSplit(t *testing.T) {
	stream := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world" +
		"GET /c?d=e HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n" +
		"\r\nGET /f HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /g HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("y", 5000) + "\r\n\r\n"
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		c := &conn{}
		var out bytes.Buffer
		for rest := stream; rest != ""; {
			n := 1 + rng.IntN(len(rest))
			c.feed([]byte(rest[:n]))
			rest = rest[n:]
			out.Write(c.out.Bytes())
			c.out.Reset()
		}
		require.Equal(t, stream, out.String(), "round %d", round)
	}
}

// TestKeepAliveHeadsReuseOneBuffer: the heads of a keep-alive connection
// are gathered in one buffer and checked without splitting them into
// lines: a head costs one allocation (the copy the checks and the fast
// path read), not one per step.
func TestKeepAliveHeadsReuseOneBuffer(t *testing.T) {
	c := &conn{}
	req := []byte("GET /page HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip\r\n\r\n")
	c.feed(req)
	c.out.Reset()
	allocs := testing.AllocsPerRun(100, func() {
		c.feed(req)
		c.out.Reset()
	})
	assert.LessOrEqual(t, allocs, 1.0)
}
