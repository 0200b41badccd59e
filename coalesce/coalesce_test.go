package coalesce

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingListener counts the writes that reach the accepted connections.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// pair returns a held-capable server side and its client over real TCP.
func pair(t *testing.T) (*Conn, net.Conn, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	counted := &countingListener{Listener: ln}
	wrapped := Listen(counted)
	t.Cleanup(func() { wrapped.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err := wrapped.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	return server.(*Conn), client, counted
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	return string(buf)
}

// TestHeldWritesLeaveAsOne: nothing is sent while held; Release sends it
// all in one write.
func TestHeldWritesLeaveAsOne(t *testing.T) {
	server, client, counted := pair(t)
	server.Hold()
	for _, s := range []string{"HTTP/1.1 200 OK\r\n", "\r\n", "body"} {
		n, err := server.Write([]byte(s))
		require.NoError(t, err)
		assert.Equal(t, len(s), n)
	}
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := client.Read(make([]byte, 1))
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "nothing may arrive while held, got %v", err)
	assert.Zero(t, counted.writes.Load())

	require.NoError(t, server.Release())
	assert.Equal(t, "HTTP/1.1 200 OK\r\n\r\nbody", readN(t, client, 23))
	assert.Equal(t, int64(1), counted.writes.Load())
}

// TestWritesPassThroughWhenNotHeld: a connection never held, or released,
// writes at once.
func TestWritesPassThroughWhenNotHeld(t *testing.T) {
	server, client, counted := pair(t)
	server.Write([]byte("a"))
	assert.Equal(t, "a", readN(t, client, 1))
	server.Hold()
	server.Release()
	server.Write([]byte("b"))
	assert.Equal(t, "b", readN(t, client, 1))
	assert.Equal(t, int64(2), counted.writes.Load())
	assert.NoError(t, server.Release(), "releasing what is not held does nothing")
}

// TestHoldingIsBounded: past maxHeld the gathered bytes go out and the rest
// passes through, in order.
func TestHoldingIsBounded(t *testing.T) {
	server, client, _ := pair(t)
	big := strings.Repeat("x", maxHeld)
	done := make(chan string)
	go func() {
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(big)+2)))
		done <- string(b)
	}()
	server.Hold()
	server.Write([]byte("<"))
	server.Write([]byte(big))
	server.Write([]byte(">"))
	server.Release()
	assert.Equal(t, "<"+big+">", <-done)
}

// TestCloseNeverWaits: Close drops what is held and returns at once, even
// while a write is blocked on a client that does not read (net/http's
// Server.Close relies on it to end a shutdown).
func TestCloseNeverWaits(t *testing.T) {
	server, client, counted := pair(t)
	server.Hold()
	server.Write([]byte("cut short"))
	require.NoError(t, server.Close())
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(client)
	assert.Empty(t, string(b))
	assert.Zero(t, counted.writes.Load())

	blocked, _, _ := pair(t)
	started := make(chan struct{})
	go func() {
		close(started)
		big := make([]byte, 1<<20)
		for {
			if _, err := blocked.Write(big); err != nil {
				return
			}
		}
	}()
	<-started
	time.Sleep(100 * time.Millisecond) // the socket buffers fill; the write blocks
	closed := make(chan error)
	go func() { closed <- blocked.Close() }()
	select {
	case err := <-closed:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a blocked write")
	}
}

type failingConn struct{ net.Conn }

func (failingConn) Write([]byte) (int, error)        { return 0, errors.New("connection reset") }
func (failingConn) SetWriteDeadline(time.Time) error { return nil }

// TestFailedReleaseFailsLaterWrites: net/http learns of the failure on its
// next write and closes the connection.
func TestFailedReleaseFailsLaterWrites(t *testing.T) {
	c := &Conn{Conn: failingConn{}}
	c.Hold()
	_, err := c.Write([]byte("answer"))
	require.NoError(t, err)
	assert.EqualError(t, c.Release(), "connection reset")
	_, err = c.Write([]byte("next"))
	assert.EqualError(t, err, "connection reset")
}

// TestOneWritePerAnswerThroughNetHTTP: the reason for the package. An
// answer of a 4 KiB header block and body leaves net/http in two writes
// (its connection buffer is 4 KiB); held and flushed, in one.
func TestOneWritePerAnswerThroughNetHTTP(t *testing.T) {
	body := strings.Repeat("g", 3900)
	for _, held := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		counted := &countingListener{Listener: ln}
		srv := &http.Server{ConnContext: ConnContext, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := From(r.Context())
			if !assert.NotNil(t, c, "the request's connection") {
				return
			}
			w.Header().Set("X-Padding", strings.Repeat("p", 300))
			w.Header().Set("Content-Length", "3900")
			if held {
				c.Hold()
				defer c.Release()
			}
			io.WriteString(w, body)
			w.(http.Flusher).Flush()
		})}
		go srv.Serve(Listen(counted))

		conn, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, body, string(got))
		conn.Close()
		srv.Shutdown(context.Background())
		want := int64(2)
		if held {
			want = 1
		}
		assert.Equal(t, want, counted.writes.Load(), "held=%v", held)
	}
}

// A client that stops reading is cut off once a piece of a write has
// waited the send timeout; one that keeps reading, however slowly, gets
// the whole answer, since each piece has a deadline of its own.
func TestSendTimeoutCutsOffOnlyAClientThatStopsReading(t *testing.T) {
	stalled, _, _ := pair(t)
	stalled.timeout = 200 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := stalled.Write(make([]byte, 64<<20)) // far past the socket buffers
		done <- err
	}()
	select {
	case err := <-done:
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout())
	case <-time.After(10 * time.Second):
		t.Fatal("a write to a client that does not read never ended")
	}

	steady, client, _ := pair(t)
	steady.timeout = 200 * time.Millisecond
	const size = 4 << 20
	go steady.Write(make([]byte, size))
	got := 0
	buf := make([]byte, 256<<10)
	for got < size { // slower, in all, than one timeout, but never idle that long
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := client.Read(buf)
		require.NoError(t, err)
		got += n
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, size, got)
}
