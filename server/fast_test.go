package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isrproxy/isrproxy/framing"
)

// fakeFast answers GET /fast/… itself and declines the rest.
type fakeFast struct{ answered atomic.Int64 }

func (f *fakeFast) ServeFast(h *framing.Head, w io.Writer) (bool, error) {
	if !strings.HasPrefix(h.Path, "/fast/") {
		return false, nil
	}
	f.answered.Add(1)
	body := "fast " + h.Path
	_, err := io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
	return true, err
}

func itoa(n int) string { return strconv.Itoa(n) }

func startFast(t *testing.T, configure ...func(*http.Server)) (*Server, *fakeFast) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			time.Sleep(50 * time.Millisecond)
		}
		io.WriteString(w, "slow "+r.URL.Path)
	})
	s, err := Public("LISTEN_ADDR", "127.0.0.1:0", h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configure {
		c(s.http)
	}
	f := &fakeFast{}
	s.SetFast(f)
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s, f
}

// readBodies reads n answers from r and returns their bodies in order.
func readBodies(t *testing.T, r *bufio.Reader, n int) []string {
	t.Helper()
	var got []string
	for range n {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("answer %d: %v (got %q)", len(got)+1, err, got)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, string(b))
	}
	return got
}

// TestFastPathKeepsPipelinedOrder: a fast answer never overtakes one that
// net/http is still working on, in one write or in many.
func TestFastPathKeepsPipelinedOrder(t *testing.T) {
	s, f := startFast(t)
	req := func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: a\r\n\r\n" }
	paths := []string{"/fast/1", "/slow/2", "/fast/3", "/fast/4", "/slow/5", "/plain/6", "/fast/7"}
	for _, split := range []bool{false, true} {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		var all string
		for _, p := range paths {
			all += req(p)
		}
		if split {
			for _, p := range paths { // one request per write, no waiting
				io.WriteString(c, req(p))
			}
		} else {
			io.WriteString(c, all)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := readBodies(t, bufio.NewReader(c), len(paths))
		// Behind a request net/http still answers, the rest may be
		// net/http's too; whoever answers, the order holds.
		for i, p := range paths {
			if got[i] != "fast "+p && got[i] != "slow "+p {
				t.Fatalf("split=%v: answer %d is %q, want one for %s (all: %q)", split, i+1, got[i], p, got)
			}
		}
		if got[0] != "fast /fast/1" {
			t.Fatalf("split=%v: the first request, on an idle connection, was not fast: %q", split, got[0])
		}
		c.Close()
	}
	if f.answered.Load() == 0 {
		t.Fatal("the fast path answered nothing")
	}
}

// TestFastPathAfterNetHTTP: once net/http has answered, the next request
// on the connection may be fast again.
func TestFastPathAfterNetHTTP(t *testing.T) {
	s, f := startFast(t)
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, p := range []string{"/plain/1", "/fast/2", "/slow/3", "/fast/4"} {
		io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n")
		got := readBodies(t, r, 1)
		if !strings.HasSuffix(got[0], p) {
			t.Fatalf("answer %d: %q", i+1, got[0])
		}
		// net/http's answer leaves before it notes the connection idle: a
		// request sent at once would be net/http's too.
		time.Sleep(20 * time.Millisecond)
	}
	if n := f.answered.Load(); n != 2 {
		t.Fatalf("fast answers: %d, want 2", n)
	}
}

// TestFastPathIdleTimeout: after a fast answer the connection waits for
// the next request under the idle timeout, as after net/http's answers,
// not under the header timeout set when it opened.
func TestFastPathIdleTimeout(t *testing.T) {
	s, _ := startFast(t, func(h *http.Server) {
		h.ReadHeaderTimeout = 100 * time.Millisecond
		h.IdleTimeout = 2 * time.Second
	})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /fast/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readBodies(t, r, 1)
	time.Sleep(300 * time.Millisecond) // past the header timeout, within the idle one
	io.WriteString(c, "GET /fast/2 HTTP/1.1\r\nHost: a\r\n\r\n")
	if got := readBodies(t, r, 1); got[0] != "fast /fast/2" {
		t.Fatalf("got %q", got)
	}
}

// TestFastPathStopsOnShutdown: during a graceful stop no request is
// answered by the fast path; net/http has them.
func TestFastPathStopsOnShutdown(t *testing.T) {
	s, f := startFast(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.drain(ctx.Done())
	if ok, _ := s.ServeFast(&framing.Head{Method: "GET", Path: "/fast/1", Host: "a"}, io.Discard); ok {
		t.Fatal("answered while draining")
	}
	if f.answered.Load() != 0 {
		t.Fatal("the fast path was reached")
	}
}

// TestFastPathShutdownServesNil: with the fast path, a graceful stop closes
// the listener before it waits for fast answers, and Serve still returns nil.
func TestFastPathShutdownServesNil(t *testing.T) {
	s, err := Public("LISTEN_ADDR", "127.0.0.1:0", http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.SetFast(&fakeFast{})
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /fast/1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readBodies(t, bufio.NewReader(c), 1)
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatal("still accepting after Shutdown")
	}
}
