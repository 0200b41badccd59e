package logging

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactingWriterHidesEverySpellingOfTheSecret(t *testing.T) {
	const secret = `s3cret/"value"-0123456789`
	for _, tt := range []struct{ line, want string }{
		{`{"path":"/x"}`, `{"path":"/x"}`},
		{`{"path":"/api/revalidate;secret=s3cret/\"value\"-0123456789"}`, `{"path":"/api/revalidate;secret=[redacted]"}`},
		{`path=/x%3Fsecret%3Ds3cret%2F%22value%22-0123456789&y=1`, `path=/x%3Fsecret%3D[redacted]&y=1`},
		{`%73%33cret/%22value%22-0123456789 and %zz`, `[redacted] and %zz`},
		{`s3cret/"value"-0123456789 twice s3cret%2f"value"-0123456789`, `[redacted] twice [redacted]`},
		{`100%`, `100%`},
	} {
		var buf bytes.Buffer
		w := newRedactingWriter(&buf, secret)
		n, err := w.Write([]byte(tt.line))
		assert.NoError(t, err)
		assert.Equal(t, len(tt.line), n)
		assert.Equal(t, tt.want, buf.String(), tt.line)
	}
}
