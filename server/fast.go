package server

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/coalesce"
	"github.com/isrproxy/isrproxy/framing"
)

// SetFast gives the public listener a fast path (see [framing.Fast]):
// request heads that arrive while net/http has nothing in flight on their
// connection are offered to f before net/http reads them. Call it before
// Serve; nil leaves the listener as Public made it.
//
// On a TLS server ([TLS]) the fast path serves HTTP/1.1 connections only:
// HTTP/2 ones are net/http's.
func (s *Server) SetFast(f framing.Fast) {
	if f == nil {
		return
	}
	switch ln := s.ln.(type) {
	case *tlsListener:
		ln.fast = s
	default:
		if s.fastLn == nil {
			return // not a public listener
		}
		s.ln = &fastListener{Listener: s.fastLn, s: s}
	}
	s.fast = f
	s.http.ConnState = noteIdle
}

// h1 wraps an HTTP/1.1 connection over TLS as Public's connections are:
// framing checked, writes gathered, and the fast path when there is one.
func (l *tlsListener) h1(tc net.Conn) *coalesce.Conn {
	if l.fast == nil {
		return &coalesce.Conn{Conn: framing.Wrap(tc)}
	}
	fc := framing.WrapFast(tc, l.fast)
	cc := &coalesce.Conn{Conn: fc}
	fc.SetWriter(cc, l.fast.http.IdleTimeout)
	return cc
}

// fastListener accepts connections checked by the framing checker, their
// writes gathered and bounded by coalesce, and a fast path below both.
type fastListener struct {
	net.Listener
	s      *Server
	closed sync.Once
	err    error
}

// Close closes the listener once; later calls report nil, so that drain
// can close it before http.Server.Shutdown does.
func (l *fastListener) Close() error {
	l.closed.Do(func() { l.err = l.Listener.Close() })
	return nil
}

func (l *fastListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := framing.WrapFast(c, l.s)
	cc := &coalesce.Conn{Conn: fc}
	// Fast answers leave through coalesce: its send timeout holds for them too.
	fc.SetWriter(cc, l.s.http.IdleTimeout)
	return cc, nil
}

// noteIdle tells the fast path of a connection that net/http has answered
// a request on it and flushed the answer.
func noteIdle(c net.Conn, st http.ConnState) {
	if st != http.StateIdle {
		return
	}
	switch c := c.(type) {
	case *coalesce.Conn:
		framing.NoteIdle(c.Conn)
	case *h1Conn:
		framing.NoteIdle(c.Conn.Conn)
	}
}

// ServeFast offers h to the fast path unless the server is stopping: a
// request that arrives then goes to net/http, which knows what to do
// with it during a graceful stop.
func (s *Server) ServeFast(h *framing.Head, w io.Writer) (bool, error) {
	s.fastActive.Add(1)
	defer s.fastActive.Add(-1)
	if s.draining.Load() {
		return false, nil
	}
	return s.fast.ServeFast(h, w)
}

// drain stops fast answers and new connections, and waits for the fast
// answers under way, so that the
// graceful stop, which closes the connections net/http sees as idle,
// never cuts one short. (A fast answer that started counts in fastActive
// before it checks draining, so either it sees draining or drain sees it.)
func (s *Server) drain(deadline <-chan struct{}) {
	s.draining.Store(true)
	if s.fast == nil {
		return
	}
	// No new connection while the fast answers under way finish.
	s.ln.Close()
	for s.fastActive.Load() > 0 {
		select {
		case <-deadline:
			return
		case <-time.After(time.Millisecond):
		}
	}
}
