// Package coalesce lets a handler send one answer in one write, and bounds
// how long any write may wait on the client.
//
// net/http buffers a connection's output in 4 KiB: an answer of a stored
// page (its header block and a few KiB of gzip) goes out in two writes,
// two system calls, where the bytes would fit one segment. A handler that
// knows its whole answer holds the connection's writes, flushes, and
// releases them: they leave in a single write. Connections not held write
// through unchanged.
//
// Every write to the client is sent in pieces of at most [SendChunk]
// bytes, each of which must leave within [SendTimeout] (at least half of
// it; nginx's send_timeout): a client that stops reading is disconnected,
// one that reads slowly but steadily is not, however large the answer.
package coalesce

import (
	"cmp"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxHeld bounds what a connection gathers while held; past it, the
// gathered bytes are written out and the rest passes through.
const maxHeld = 256 << 10

// SendTimeout is how long one piece of a write may wait on the client.
const SendTimeout = time.Minute

// SendChunk is the largest piece written under one deadline.
const SendChunk = 64 << 10

// Listen wraps ln so that its connections can be held (see [Conn.Hold]).
func Listen(ln net.Listener) net.Listener { return &listener{Listener: ln} }

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c}, nil
}

// Conn is a connection whose writes can be gathered and sent as one.
type Conn struct {
	net.Conn
	mu       sync.Mutex
	held     *[]byte       // gathered writes while held; nil otherwise
	err      error         // the error of a failed release, returned by later writes
	timeout  time.Duration // per piece of a write; zero: SendTimeout
	deadline atomic.Int64  // the write deadline send last set (Unix ns); 0 once another is set
}

// SetDeadline sets the connection's deadlines; send sets its own again.
func (c *Conn) SetDeadline(t time.Time) error {
	c.deadline.Store(0)
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline sets the write deadline; send sets its own again.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.deadline.Store(0)
	return c.Conn.SetWriteDeadline(t)
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// Hold gathers the connection's writes until Release.
func (c *Conn) Hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil && c.err == nil {
		c.held = buffers.Get().(*[]byte)
	}
}

// Release writes what was gathered since Hold in one write and stops
// gathering. Its error, if any, is also returned by every later Write, so
// that net/http closes the connection.
func (c *Conn) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *Conn) flushLocked() error {
	if c.held == nil {
		return c.err
	}
	b := c.held
	c.held = nil
	if len(*b) > 0 {
		if _, err := c.send(*b); err != nil {
			c.err = err
		}
	}
	if cap(*b) <= maxHeld {
		*b = (*b)[:0]
		buffers.Put(b)
	}
	return c.err
}

// Write gathers p while the connection is held, and writes it otherwise.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.held == nil {
		return c.send(p)
	}
	if len(*c.held)+len(p) > maxHeld {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		return c.send(p)
	}
	*c.held = append(*c.held, p...)
	return len(p), nil
}

// send writes p in pieces of at most SendChunk, each with between half
// of SendTimeout and all of it to leave. The caller holds c.mu.
func (c *Conn) send(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		piece := p[:min(len(p), SendChunk)]
		// Moving the deadline costs a timer update; a write soon after
		// the last keeps it when at least half the timeout is left.
		timeout := cmp.Or(c.timeout, SendTimeout)
		if now := time.Now(); c.deadline.Load()-now.UnixNano() < int64(timeout/2) {
			d := now.Add(timeout)
			c.deadline.Store(d.UnixNano())
			if err := c.Conn.SetWriteDeadline(d); err != nil {
				return written, err
			}
		}
		n, err := c.Conn.Write(piece)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Close closes the connection at once, dropping anything still held (a
// handler releases before it returns, so that is only an answer cut short).
// It never waits: net/http's Server.Close calls it to unblock a write stuck
// on a client that does not read.
func (c *Conn) Close() error {
	if c.mu.TryLock() {
		if c.held != nil {
			c.held = nil // not returned to the pool: a write may still read it
		}
		c.err = net.ErrClosed
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

type contextKey struct{}

// ConnContext is an [net/http.Server] ConnContext: it records c in the
// context of each request read from it, for [From].
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, contextKey{}, cc)
	}
	return ctx
}

// From returns the connection a request arrived on, or nil when it was
// not accepted through [Listen] (or the server has no [ConnContext]).
func From(ctx context.Context) *Conn {
	c, _ := ctx.Value(contextKey{}).(*Conn)
	return c
}
