// Package framing checks the framing of HTTP/1.1 requests on a connection
// before net/http parses them. Go's parser is lenient where a proxy in
// front of isrproxy may not be (a bare LF ends a line, Transfer-Encoding
// wins over Content-Length), and two parsers that disagree about where a
// request ends let one request hide inside another: request smuggling.
// A request head that is not strictly well formed is replaced by a line
// net/http rejects, so the client gets 400 and the connection closes.
package framing

import (
	"bytes"
	"net"
	"strings"
)

// MaxHeaderBytes is the http.Server.MaxHeaderBytes of the server behind
// the checker: net/http reads at most that plus 4 KiB of a head.
const MaxHeaderBytes = 64 << 10

// maxHead is the largest request head gathered for checking: a little
// more than net/http would read, so that a larger one, passed on
// unchecked, is one net/http refuses (431) and closes on. Kept this small,
// a connection that never ends its head holds little memory and is
// rescanned cheaply.
const maxHead = MaxHeaderBytes + 8<<10

// maxKeptHead is the largest head buffer a connection keeps for its next
// request; a larger one, from an unusual head, is let go.
const maxKeptHead = 16 << 10

// rejected replaces a malformed head: a request line net/http refuses with
// 400 Bad Request, after which it closes the connection.
const rejected = "INVALID\r\n\r\n"

// Listen wraps ln so that each accepted connection's request heads are
// checked before net/http reads them.
func Listen(ln net.Listener) net.Listener { return &listener{Listener: ln} }

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// Wrap returns c with its request heads checked before they are read: for
// a connection accepted elsewhere (an HTTP/1.1 connection over TLS, once
// its handshake is done).
func Wrap(c net.Conn) net.Conn { return &conn{Conn: c} }

type state int

const (
	inHead state = iota // gathering a request head
	inBody              // passing remaining bytes of a Content-Length body
	raw                 // passing everything: after a chunked body or an upgrade
	dead                // a head was rejected: nothing more is read
)

// conn is a connection whose reads pass through the checker. net/http
// never reads one connection from two goroutines at once, so conn needs
// no lock.
type conn struct {
	net.Conn
	state     state
	head      []byte // the head being gathered
	remaining int64  // body bytes left, in inBody
	out       bytes.Buffer
	buf       [4096]byte
	err       error // the read error to report once out is drained
	fastState       // the fast path, when WrapFast made the conn
}

func (c *conn) Read(p []byte) (int, error) {
	for c.out.Len() == 0 {
		if err := c.err; err != nil {
			// Reported once: net/http sets past deadlines to interrupt a
			// read, then reads again.
			c.err = nil
			return 0, err
		}
		if c.state == raw && len(c.head) == 0 {
			return c.Conn.Read(p)
		}
		n, err := c.Conn.Read(c.buf[:])
		c.feed(c.buf[:n])
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				c.out.Write(c.head) // what arrived of a head, for net/http to judge
				c.head = nil
			}
			c.err = err
		}
	}
	return c.out.Read(p)
}

// feed moves data through the state machine into out.
func (c *conn) feed(data []byte) {
	for len(data) > 0 {
		switch c.state {
		case dead:
			return
		case raw:
			c.out.Write(data)
			return
		case inBody:
			n := min(int64(len(data)), c.remaining)
			c.out.Write(data[:n])
			data = data[n:]
			if c.remaining -= n; c.remaining == 0 {
				c.state = inHead
			}
		case inHead:
			c.head = append(c.head, data...)
			data = nil
			end := headEnd(c.head)
			if end < 0 {
				if len(c.head) > maxHead {
					c.out.Write(c.head)
					c.head, c.state = nil, raw
				}
				return
			}
			// The head's bytes are read below before anything is appended
			// to c.head again; then rest, fed next, moves to its front
			// (append copies as memmove does), so one buffer serves every
			// head of a keep-alive connection.
			head, rest := c.head[:end], c.head[end:]
			if c.head = c.head[:0]; cap(c.head) > maxKeptHead {
				c.head = nil
			}
			text := string(head) // the one copy: check and the fast path read it
			v := check(text)
			switch {
			case v.bad != "":
				c.out.WriteString(rejected)
				c.state = dead
				return
			case v.upgrade || v.chunked:
				c.state = raw // the answer closes the connection, but a 101: see CloseUnframed
			case v.length > 0:
				c.state, c.remaining = inBody, v.length
			default:
				answered, err := c.offer(text)
				if err != nil {
					c.state, c.err = dead, err
					return
				}
				if answered {
					data = rest
					continue
				}
			}
			c.out.Write(head)
			c.handed++
			data = rest
		}
	}
}

// headEnd returns the index just past the empty line that ends the head in
// b, or -1. Empty lines before the request line are skipped (RFC 9112 §2.2).
func headEnd(b []byte) int {
	start := 0
	for start < len(b) && (b[start] == '\r' || b[start] == '\n') {
		start++
	}
	for i := start; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

// verdict is what check found in a request head.
type verdict struct {
	bad     string // why the head is rejected; "" when it is not
	length  int64  // Content-Length
	chunked bool
	upgrade bool
}

// check judges one request head, ending with its empty line.
func check(head string) verdict {
	s := strings.TrimLeft(head, "\r\n")
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			if i == 0 || s[i-1] != '\r' {
				return verdict{bad: "bare LF"}
			}
		case '\r':
			if i+1 >= len(s) || s[i+1] != '\n' {
				return verdict{bad: "bare CR"}
			}
		case 0:
			return verdict{bad: "NUL"}
		}
	}
	// The lines between CRLFs, as strings.Split would give them, without
	// the slice.
	requestLine, rest, more := strings.Cut(strings.TrimSuffix(s, "\r\n\r\n"), "\r\n")
	if bad := checkRequestLine(requestLine); bad != "" {
		return verdict{bad: bad}
	}
	var v verdict
	lengths, encodings := 0, 0
	for more {
		var line string
		line, rest, more = strings.Cut(rest, "\r\n")
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			return verdict{bad: "folded or empty header line"}
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return verdict{bad: "malformed header name"}
		}
		value = strings.Trim(value, " \t")
		switch {
		case strings.EqualFold(name, "Content-Length"):
			lengths++
			n, ok := parseLength(value)
			if !ok {
				return verdict{bad: "malformed Content-Length"}
			}
			v.length = n
		case strings.EqualFold(name, "Transfer-Encoding"):
			encodings++
			if !strings.EqualFold(value, "chunked") {
				return verdict{bad: "Transfer-Encoding other than chunked"}
			}
			v.chunked = true
		case strings.EqualFold(name, "Upgrade"):
			v.upgrade = true
		}
	}
	switch {
	case lengths > 1:
		return verdict{bad: "repeated Content-Length"}
	case encodings > 1:
		return verdict{bad: "repeated Transfer-Encoding"}
	case lengths > 0 && encodings > 0:
		return verdict{bad: "Content-Length with Transfer-Encoding"}
	case encodings > 0 && strings.HasSuffix(requestLine, "HTTP/1.0"):
		return verdict{bad: "Transfer-Encoding in HTTP/1.0"}
	}
	return v
}

// checkRequestLine accepts "METHOD SP target SP HTTP/1.x".
func checkRequestLine(line string) string {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	switch {
	case !ok1 || !ok2 || !isToken(method) || target == "":
		return "malformed request line"
	case strings.ContainsAny(target, " \t\x7f") || strings.IndexFunc(target, func(r rune) bool { return r < 0x20 }) >= 0:
		return "malformed request target"
	case version != "HTTP/1.1" && version != "HTTP/1.0":
		return "not HTTP/1.x"
	}
	return ""
}

func parseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// isToken reports whether s is an RFC 9110 token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
