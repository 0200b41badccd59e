package logging

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/isrproxy/isrproxy/config"
)

// redacted replaces the secret in log lines.
const redacted = "[redacted]"

// redactingWriter is where the logger writes: every line it passes on has
// the secret replaced, however it got there. The access log and the API
// already redact the parameters they know; this catches the rest, such as
// a page path or a revalidate target that carries the secret in its value,
// raw or percent-encoded ("The secret never appears in a log line").
type redactingWriter struct {
	w       io.Writer
	secret  []byte   // as configured
	needles [][]byte // the spellings a log line may hold it in, raw
}

func newRedactingWriter(w io.Writer, secret string) io.Writer {
	if secret == "" {
		return w
	}
	r := &redactingWriter{w: w, secret: []byte(secret), needles: [][]byte{[]byte(secret)}}
	// The JSON handler escapes ", \ and control characters in strings.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		quoted := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if escaped := quoted[1 : len(quoted)-1]; !bytes.Equal(escaped, r.secret) {
			r.needles = append(r.needles, escaped)
		}
	}
	return r
}

// Write writes p, one log line, with the secret redacted. It reports len(p)
// written on success, as the logger expects.
func (r *redactingWriter) Write(p []byte) (int, error) {
	if _, err := r.w.Write(r.redact(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (r *redactingWriter) redact(line []byte) []byte {
	for _, n := range r.needles {
		if bytes.Contains(line, n) {
			line = bytes.ReplaceAll(line, n, []byte(config.Redacted))
		}
	}
	if bytes.IndexByte(line, '%') < 0 {
		return line
	}
	return redactEscaped(line, r.secret)
}

// redactEscaped replaces each span of line that percent-decodes to secret
// (%73ecret, %2F…, any mix of escaped and raw bytes) with [redacted].
func redactEscaped(line, secret []byte) []byte {
	// decoded holds line with every valid %XX decoded; start[i] is the
	// offset in line of the byte that decoded[i] came from.
	decoded := make([]byte, 0, len(line))
	start := make([]int, 0, len(line)+1)
	for i := 0; i < len(line); {
		start = append(start, i)
		if line[i] == '%' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
			decoded = append(decoded, unhex(line[i+1])<<4|unhex(line[i+2]))
			i += 3
			continue
		}
		decoded = append(decoded, line[i])
		i++
	}
	start = append(start, len(line))
	var out []byte
	last := 0 // offset in line copied so far
	for from := 0; ; {
		j := bytes.Index(decoded[from:], secret)
		if j < 0 {
			break
		}
		j += from
		out = append(out, line[last:start[j]]...)
		out = append(out, config.Redacted...)
		last = start[j+len(secret)]
		from = j + len(secret)
	}
	if out == nil {
		return line
	}
	return append(out, line[last:]...)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
