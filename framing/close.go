package framing

import (
	"net/http"
	"strings"
)

// CloseUnframed wraps h so that the answer to a request whose framing the
// checker stops following closes the connection: a chunked body (its end
// is net/http's to find) or an Upgrade (the connection may become a
// tunnel). After either, the checker passes bytes through unchecked, so a
// request hidden behind them must never be read: unless the answer is 101
// Switching Protocols, it carries "Connection: close". net/http's own
// "OPTIONS *" answer must be disabled ([http.Server].DisableGeneralOptionsHandler)
// for h to see every request.
func CloseUnframed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" && !chunked(r.TransferEncoding) {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(&closingWriter{ResponseWriter: w}, r)
	})
}

func chunked(te []string) bool {
	for _, v := range te {
		if strings.EqualFold(v, "chunked") {
			return true
		}
	}
	return false
}

// closingWriter sets "Connection: close" on any final answer but a 101.
type closingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *closingWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered, the header first.
func (w *closingWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets [http.ResponseController] reach the connection (a 101
// answer hijacks it).
func (w *closingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
