package framing

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// A Fast answers some request heads itself, below net/http: a plain GET or
// HEAD of a stored page (see [Head]). It is offered a head only when
// net/http has nothing in flight on the connection: every request handed
// to net/http there has been answered and flushed (the server reports it
// with [NoteIdle]), and no byte of a later one has been handed over. Its
// answer thus leaves in order, pipelined or not.
type Fast interface {
	// ServeFast answers h on w and reports true, or reports false
	// having written nothing: the head then goes to net/http unchanged.
	// An error is a failed write: the connection is done.
	ServeFast(h *Head, w io.Writer) (bool, error)
}

// WrapFast is [Wrap] with a fast path: heads are offered to f first, and
// its answers are written to the writer given by SetWriter (the
// connection's outer layer, which bounds how long a write may take).
func WrapFast(c net.Conn, f Fast) *FastConn {
	fc := &FastConn{conn: conn{Conn: c}}
	fc.fast = f
	return fc
}

// FastConn is a connection checked by the framing checker, with a fast path.
type FastConn struct{ conn }

// SetWriter sets where fast answers are written, and the read deadline
// each answer sets for the next request, as net/http sets its idle
// timeout after an answer (zero: none set). Until it is set, and when w
// is nil, every head goes to net/http.
func (c *FastConn) SetWriter(w io.Writer, idleTimeout time.Duration) {
	c.w, c.idleTimeout = w, idleTimeout
}

// NoteIdle records that net/http has answered one more request on c and
// flushed its answer (the connection went [net/http.StateIdle]). It does
// nothing for a connection that is not a *FastConn.
func NoteIdle(c net.Conn) {
	if fc, ok := c.(*FastConn); ok {
		fc.idle.Add(1)
	}
}

// fastState is the fast path's part of a conn.
type fastState struct {
	fast        Fast
	w           io.Writer
	idleTimeout time.Duration
	handed      int64        // request heads handed to net/http
	idle        atomic.Int64 // requests net/http has answered (NoteIdle)
	parsed      Head         // the head being offered
}

// offer gives a head to the fast path when net/http is between requests.
// It reports whether the head was answered; an error ends the connection.
func (c *conn) offer(head string) (bool, error) {
	if c.fast == nil || c.w == nil || c.out.Len() > 0 || c.handed != c.idle.Load() {
		return false, nil
	}
	var ok bool
	if c.parsed, ok = ParseHead(head); !ok {
		return false, nil
	}
	// The connection's own Head: one that ServeFast's interface call would
	// make escape would cost an allocation a request.
	answered, err := c.fast.ServeFast(&c.parsed, c.w)
	if answered && err == nil && c.idleTimeout > 0 {
		// net/http would now wait for the next request under its idle
		// timeout, not under what is left of the deadline it set before.
		err = c.Conn.SetReadDeadline(time.Now().Add(c.idleTimeout))
	}
	return answered, err
}
