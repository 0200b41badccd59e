// Package server runs isrproxy's listeners: the public one, whose request
// heads are checked for smuggling before net/http reads them and whose
// stored answers leave in one write, and plain ones such as the admin
// listener; each with timeouts against slow clients and a graceful stop.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/isrproxy/isrproxy/coalesce"
	"github.com/isrproxy/isrproxy/framing"
)

// A Server is one listener and the http.Server that answers on it.
type Server struct {
	name   string // the variable that configures it, for errors: "LISTEN_ADDR"
	http   *http.Server
	ln     net.Listener
	active atomic.Int64 // requests in flight

	// The fast path (fast.go): fastLn is the bare listener of Public.
	fastLn     net.Listener
	fast       framing.Fast
	fastActive atomic.Int64 // fast answers under way
	draining   atomic.Bool  // Shutdown has begun: no more fast answers
}

// Public listens on addr for page and API requests answered by h. Request
// heads are checked strictly before net/http's lenient parser reads them,
// so no request can hide inside another, and a stored page's answer
// leaves in one write (see package coalesce). name is the variable that
// configures addr, for errors.
func Public(name, addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	s, err := listen(name, addr, framing.CloseUnframed(h), log)
	if err != nil {
		return nil, err
	}
	// "OPTIONS *" too must reach CloseUnframed, not net/http's own handler.
	s.http.DisableGeneralOptionsHandler = true
	s.fastLn = s.ln
	s.ln = coalesce.Listen(framing.Listen(s.ln))
	s.http.ConnContext = coalesce.ConnContext
	return s, nil
}

// Plain listens on addr for requests answered by h, with nothing between
// the connection and net/http (the admin listener).
func Plain(name, addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	return listen(name, addr, h, log)
}

func listen(name, addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &Server{name: name, ln: ln}
	s.http = &http.Server{
		Handler:           counted(&s.active, h),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    framing.MaxHeaderBytes, // framing's limit follows it
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the server listens on ("127.0.0.1:8080").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers requests until Shutdown or Close; it returns nil then.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if s.draining.Load() && errors.Is(err, net.ErrClosed) {
		return nil // Shutdown closed the listener first (drain)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

// Shutdown stops s gracefully: no new connections, and requests in flight
// finish until ctx ends; then the rest are cut off, and the stop is still a
// clean one. http.Server.Shutdown alone waits up to 5 s for connections
// that never sent a request (browsers open them ahead of time): once no
// request is in flight, those are closed at once. It reports whether ctx
// ended first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.drain(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- s.http.Shutdown(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				s.http.Close()
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		case <-tick.C:
			if s.active.Load() == 0 {
				s.http.Close()
			}
		}
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.http.Close() }

// counted counts the requests in flight through h.
func counted(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		defer n.Add(-1)
		h.ServeHTTP(w, r)
	})
}
