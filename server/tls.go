package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/isrproxy/isrproxy/coalesce"
	"github.com/isrproxy/isrproxy/framing"
)

// HandshakeTimeout bounds a TLS handshake, counted from the connection's
// arrival.
const HandshakeTimeout = 10 * time.Second

// acmeTLS1 is the ALPN protocol of the ACME TLS-ALPN-01 challenge: its
// connections end with the handshake.
const acmeTLS1 = "acme-tls/1"

// TLS listens on addr for HTTPS requests answered by h, as [Public] does
// for plain HTTP. The client's ALPN picks HTTP/2 or HTTP/1.1; TLS 1.2 is
// the oldest version spoken. cfg supplies the certificates
// (GetCertificate) and may list further protocols in NextProtos, such as
// "acme-tls/1" for the TLS-ALPN-01 challenge.
//
// Handshakes run before net/http sees a connection, each in its own
// goroutine and within [HandshakeTimeout]. An HTTP/2 connection is then
// handed to net/http as the bare *tls.Conn, which its HTTP/2 server needs;
// an HTTP/1.1 one gets what a plain connection of [Public] gets: its
// request heads checked for smuggling, its stored answers sent in one write.
func TLS(name, addr string, h http.Handler, cfg *tls.Config, log *slog.Logger) (*Server, error) {
	s, err := listen(name, addr, framing.CloseUnframed(h), log)
	if err != nil {
		return nil, err
	}
	s.http.DisableGeneralOptionsHandler = true
	// A client that stops reading is disconnected, as on HTTP/1.1 (see
	// coalesce.SendTimeout).
	s.http.HTTP2 = &http.HTTP2Config{WriteByteTimeout: coalesce.SendTimeout}
	cfg = cfg.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	protos := []string{"h2", "http/1.1"}
	for _, p := range cfg.NextProtos {
		if !slices.Contains(protos, p) {
			protos = append(protos, p)
		}
	}
	cfg.NextProtos = protos
	s.ln = newTLSListener(s.ln, cfg, log)
	s.http.ConnContext = tlsConnContext
	// http.Server.TLSConfig stays nil: Serve then sets up HTTP/2 for the
	// *tls.Conn connections whose ALPN chose "h2".
	return s, nil
}

// tlsListener accepts connections whose TLS handshake is done.
type tlsListener struct {
	net.Listener
	config *tls.Config
	log    *slog.Logger
	start  sync.Once // the accept loop starts with the first Accept
	conns  chan net.Conn
	errs   chan error
	ctx    context.Context // ends with Close: handshakes under way stop
	cancel context.CancelFunc
	fast   *Server // the server whose fast path HTTP/1.1 connections get; nil: none (fast.go)
}

func newTLSListener(ln net.Listener, cfg *tls.Config, log *slog.Logger) *tlsListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &tlsListener{Listener: ln, config: cfg, log: log,
		conns: make(chan net.Conn), errs: make(chan error), ctx: ctx, cancel: cancel}
}

func (l *tlsListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.ctx.Done():
		return nil, fmt.Errorf("accept: %w", net.ErrClosed)
	}
}

// Close stops accepting and ends the handshakes under way.
func (l *tlsListener) Close() error {
	l.cancel()
	return l.Listener.Close()
}

func (l *tlsListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errs <- err: // net/http retries temporary errors, and stops on others
			case <-l.ctx.Done():
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.config)
	ctx, cancel := context.WithTimeout(l.ctx, HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// As net/http does: a plain-HTTP request on the TLS port.
			re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		l.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		tc.Close()
		return
	}
	var c net.Conn
	state := tc.ConnectionState()
	switch state.NegotiatedProtocol {
	case "h2":
		c = tc
	case acmeTLS1:
		tc.Close() // the challenge's answer was the handshake's certificate
		return
	default:
		c = &h1Conn{Conn: l.h1(tc), state: state}
	}
	select {
	case l.conns <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// h1Conn is an HTTP/1.1 connection over TLS, its reads checked by
// package framing and its writes gathered by package coalesce. Its
// ConnectionState is what net/http puts in Request.TLS for a connection
// that is not a *tls.Conn.
type h1Conn struct {
	*coalesce.Conn
	state tls.ConnectionState
}

func (c *h1Conn) ConnectionState() tls.ConnectionState { return c.state }

// tlsConnContext records an HTTP/1.1 connection for coalesce.From.
func tlsConnContext(ctx context.Context, c net.Conn) context.Context {
	if h, ok := c.(*h1Conn); ok {
		return coalesce.ConnContext(ctx, h.Conn)
	}
	return ctx
}
