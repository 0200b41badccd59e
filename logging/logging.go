// Package logging builds isrproxy's structured logger: JSON or text lines on
// one writer, at a level, with the revalidate secret replaced in every line
// however it is spelled (raw, JSON-escaped or percent-encoded).
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing to w at level, as "json" or "text" lines
// (format), that never writes secret.
func New(w io.Writer, secret string, level slog.Level, format string) *slog.Logger {
	w = newRedactingWriter(w, secret)
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
