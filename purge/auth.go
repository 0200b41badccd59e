package purge

import (
	"crypto/sha256"
	"crypto/subtle"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// locked answers 429 when r's peer address is locked out, and reports it.
func (h *Handler) locked(c *call, r *http.Request) bool {
	wait, locked := h.lockout.check(peerAddr(r), h.now())
	if !locked {
		return false
	}
	secs := int(math.Ceil(wait.Seconds()))
	c.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	c.fail(http.StatusTooManyRequests, "Too many failed attempts; retry later")
	return true
}

// authenticate checks r's secret. On failure it counts the failure against
// the peer address, answers 401 and reports false.
func (h *Handler) authenticate(c *call, r *http.Request) bool {
	if h.validToken(token(r)) {
		return true
	}
	h.lockout.fail(peerAddr(r), h.now())
	c.fail(http.StatusUnauthorized, "Invalid token")
	return false
}

// validToken compares SHA-256 digests in constant time, so that neither the
// secret's bytes nor its length show in the timing.
func (h *Handler) validToken(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], h.digest[:]) == 1
}

// token is the secret r presents: "Authorization: Bearer <secret>" (the
// scheme in any case) when present, otherwise the first "secret" query
// parameter, as in the Next.js recipe. One candidate per request, so that
// repeating the parameter cannot multiply the guesses the lockout allows.
func token(r *http.Request) string {
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(cred)
	}
	return r.URL.Query().Get("secret")
}
