package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// AccessLog wraps next so that every request writes one structured line at
// info level: method, path (with any secret redacted), status, cache
// status, duration and bytes. When info is disabled it returns next as is:
// logging off costs nothing.
func AccessLog(next http.Handler, log *slog.Logger) http.Handler {
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return next
	}
	pool := &sync.Pool{New: func() any { return new(recorder) }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := pool.Get().(*recorder)
		*rec = recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", redactedTarget(r)),
			slog.Int("status", rec.status),
			slog.String("cache", w.Header().Get("X-Cache")),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", rec.bytes),
		)
		rec.ResponseWriter = nil
		pool.Put(rec)
	})
}

// redactedTarget is the request's path and query, any secret replaced.
func redactedTarget(r *http.Request) string {
	return redact(r.URL.EscapedPath(), r.URL.RawQuery)
}

// redact is the escaped path and raw query q, any secret in q replaced.
func redact(path, q string) string {
	if q == "" {
		return path
	}
	if strings.Contains(strings.ToLower(q), "secret") || strings.Contains(q, "%") {
		pairs := strings.Split(q, "&")
		for i, p := range pairs {
			name, _, _ := strings.Cut(p, "=")
			// The API decodes names (?%73ecret= is ?secret=): so does this.
			decoded, err := url.QueryUnescape(name)
			if err != nil || strings.Contains(strings.ToLower(decoded), "secret") {
				pairs[i] = name + "=[redacted]"
			}
		}
		q = strings.Join(pairs, "&")
	}
	return path + "?" + q
}

// recorder notes the status and size of an answer. Unwrap lets
// http.ResponseController (and so ReverseProxy's upgrades) reach the
// connection.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush lets streamed pass-through answers flush.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
