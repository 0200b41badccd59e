package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// ACMEOptions configures [NewACME].
type ACMEOptions struct {
	Domains []string // ACME_DOMAINS
	Email   string   // ACME_EMAIL; "" gives none
	CA      string   // ACME_CA, the directory URL
	CARoot  string   // ACME_CA_ROOT: a PEM file of roots trusted for CA, besides the system's
	Storage string   // ACME_STORAGE: a directory

	// HTTPAddr and TLSAddr are the listeners that answer the HTTP-01
	// challenge (the plain one, through [ACME.HTTPHandler]) and the
	// TLS-ALPN-01 one (the TLS one, through [ACME.GetCertificate] and
	// NextProtos "acme-tls/1"). The CA connects to ports 80 and 443.
	HTTPAddr, TLSAddr string

	// DisableHTTPChallenge and DisableTLSALPNChallenge leave a challenge
	// type out.
	DisableHTTPChallenge, DisableTLSALPNChallenge bool

	// RetryAfter is the wait after a first failure to obtain a
	// certificate; it doubles with each failure up to an hour. Zero: a
	// minute.
	RetryAfter time.Duration

	Logger  *slog.Logger
	OnError func() // a certificate could not be obtained or renewed
}

// ACME obtains and renews certificates for a list of domains with
// certmagic, keeping accounts and certificates in a directory: a restart
// serves those it has without asking the CA.
type ACME struct {
	opts   ACMEOptions
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewACME prepares certificate management; [ACME.Start] begins it. Its
// error is [Problems] when ACME_CA_ROOT cannot be used.
func NewACME(opts ACMEOptions) (*ACME, error) {
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Minute
	}
	if opts.OnError == nil {
		opts.OnError = func() {}
	}
	var roots *x509.CertPool
	if opts.CARoot != "" {
		pemBytes, err := os.ReadFile(opts.CARoot)
		if err != nil {
			return nil, Problems{fmt.Sprintf("ACME_CA_ROOT: cannot read %q: %v", opts.CARoot, unwrapPath(err))}
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pemBytes) {
			return nil, Problems{fmt.Sprintf("ACME_CA_ROOT: %q holds no PEM certificate", opts.CARoot)}
		}
	}
	zl := zapToSlog(opts.Logger.Handler())
	a := &ACME{opts: opts}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		Logger:           zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: opts.Storage},
		Logger:  zl,
		OnEvent: a.onEvent,
	})
	httpHost, httpPort := splitPort(opts.HTTPAddr)
	_, tlsPort := splitPort(opts.TLSAddr)
	// certmagic listens on the challenge ports itself unless they are
	// taken, in which case it leaves the answers to whoever listens
	// there: isrproxy's own listeners.
	a.issuer = certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA:                      opts.CA,
		Email:                   opts.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		ListenHost:              httpHost,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		DisableHTTPChallenge:    opts.DisableHTTPChallenge,
		DisableTLSALPNChallenge: opts.DisableTLSALPNChallenge,
		Logger:                  zl,
	})
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// splitPort returns the host and port of a listen address; 0 when it has
// none.
func splitPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// onEvent counts renewals that failed: certmagic retries them itself.
func (a *ACME) onEvent(_ context.Context, event string, data map[string]any) error {
	if event == "cert_failed" {
		if renewal, _ := data["renewal"].(bool); renewal {
			a.opts.OnError()
			a.opts.Logger.Error("TLS certificate not renewed: certmagic retries", "domain", data["identifier"], "err", fmt.Sprint(data["error"]))
		}
	}
	return nil
}

// Start loads the certificates ACME_STORAGE holds, at once and without
// asking the CA, so that a restart serves them from its first handshake.
// It obtains the others, each in the background, retrying with back-off
// until it succeeds or ctx ends; certmagic keeps them all renewed. A
// domain without a certificate yet fails its handshakes, and nothing else.
func (a *ACME) Start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	for _, d := range a.opts.Domains {
		if _, err := a.magic.CacheManagedCertificate(ctx, d); err == nil {
			a.opts.Logger.Info("TLS certificate loaded from storage", "domain", d)
			continue // managed from now on: certmagic renews it
		}
		a.wg.Go(func() { a.obtain(ctx, d) })
	}
}

func (a *ACME) obtain(ctx context.Context, domain string) {
	wait := a.opts.RetryAfter
	for {
		err := a.magic.ManageSync(ctx, []string{domain})
		if err == nil {
			a.opts.Logger.Info("TLS certificate ready", "domain", domain)
			return
		}
		if ctx.Err() != nil {
			return
		}
		a.opts.OnError()
		a.opts.Logger.Error("TLS certificate not obtained: will retry", "domain", domain, "err", err.Error(), "retry_in", wait.String())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, time.Hour)
	}
}

// Close stops obtaining and renewing, and waits for it.
func (a *ACME) Close() {
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	a.cache.Stop()
}

// GetCertificate is a [tls.Config] GetCertificate: the domain's
// certificate, or the TLS-ALPN-01 challenge's answer.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.magic.GetCertificate(hello)
}

// NextProtos are the ALPN protocols the TLS listener must offer besides
// HTTP's: the TLS-ALPN-01 challenge's.
func (a *ACME) NextProtos() []string {
	if a.opts.DisableTLSALPNChallenge {
		return nil
	}
	return []string{"acme-tls/1"}
}

// HTTPHandler answers the HTTP-01 challenge's requests
// (/.well-known/acme-challenge/…) and gives every other to next.
func (a *ACME) HTTPHandler(next http.Handler) http.Handler {
	return a.issuer.HTTPChallengeHandler(next)
}
