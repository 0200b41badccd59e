package proxy

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
)

// Go's Transport deletes a response's whole Connection header when it holds
// "close" (net/http's shouldClose), and with it the names of the headers it
// marked hop-by-hop: "Connection: X-Secret, close" would leave X-Secret to
// be stored and replayed. So for fills and refetches the origin connection
// keeps a copy of the bytes it reads while a response head arrives, and the
// names are read from there.

// maxHeadCopy bounds the bytes kept while a response head arrives.
const maxHeadCopy = 64 << 10

// headConn is an origin connection that can copy what it reads.
type headConn struct {
	net.Conn
	mu      sync.Mutex // guards copying and buf
	copying bool
	buf     []byte
}

// dialHeadConns wraps dial so that its connections are headConns.
func dialHeadConns(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &headConn{Conn: c}, nil
	}
}

func (c *headConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if c.copying && len(c.buf) < maxHeadCopy {
			c.buf = append(c.buf, p[:min(n, maxHeadCopy-len(c.buf))]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *headConn) startCopy() {
	c.mu.Lock()
	c.copying, c.buf = true, nil
	c.mu.Unlock()
}

func (c *headConn) stopCopy() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	c.copying, c.buf = false, nil
	return b
}

// headCopy is the copy of one fetch's response head.
type headCopy struct {
	mu   sync.Mutex // guards conn: GotConn may run on the transport's goroutine
	conn *headConn
}

// trace returns ctx with a trace that starts the copy on the connection
// the fetch gets (a plain-HTTP origin's; a TLS connection is not copied).
func (h *headCopy) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			c, ok := info.Conn.(*headConn)
			if !ok {
				return
			}
			c.startCopy()
			h.mu.Lock()
			prev := h.conn
			h.conn = c
			h.mu.Unlock()
			if prev != nil && prev != c {
				prev.stopCopy() // the Transport retried on another connection
			}
		},
	})
}

// removeClosedConnectionNames deletes from resp's header the names that a
// "Connection: …, close" listed, which the Transport dropped with it.
func (h *headCopy) removeClosedConnectionNames(resp *http.Response) {
	h.mu.Lock()
	c := h.conn
	h.mu.Unlock()
	if c == nil {
		return
	}
	head := c.stopCopy()
	if resp == nil || !resp.Close {
		return
	}
	for _, name := range connectionNames(head) {
		resp.Header.Del(name)
	}
}

// connectionNames returns the header names listed in the Connection lines
// of the final (not 1xx) response head at the start of b.
func connectionNames(b []byte) []string {
	for {
		end := bytes.Index(b, []byte("\r\n\r\n"))
		if end < 0 {
			end = len(b) // a head cut at maxHeadCopy: read what there is
		}
		head := b[:end]
		lines := strings.Split(string(head), "\r\n")
		if len(lines[0]) >= len("HTTP/1.1 1xx") && lines[0][9] == '1' && end < len(b) {
			b = b[end+4:] // an interim 1xx head: the final one follows
			continue
		}
		var names []string
		for _, line := range lines[1:] {
			name, value, ok := strings.Cut(line, ":")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "Connection") {
				continue
			}
			for _, token := range strings.Split(value, ",") {
				if token = strings.TrimSpace(token); token != "" && !strings.EqualFold(token, "close") {
					names = append(names, token)
				}
			}
		}
		return names
	}
}
