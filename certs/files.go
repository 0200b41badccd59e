// Package certs supplies the certificates of isrproxy's TLS listener:
// a PEM pair read from files ([Files]), re-read on demand and when the
// files change, or certificates obtained and renewed over ACME ([ACME]).
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Problems lists what is wrong with configured certificate material, one
// line each, every line naming its variable ("TLS_KEY_FILE: …").
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// PollInterval is how often [Files.Watch] looks at the files.
const PollInterval = 2 * time.Second

// Files is a certificate and key read from PEM files (TLS_CERT_FILE and
// TLS_KEY_FILE). A new pair replaces the old one only once both load and
// match; handshakes under way and open connections keep theirs.
type Files struct {
	certFile, keyFile string
	log               *slog.Logger
	onError           func() // a reload failed

	cert atomic.Pointer[tls.Certificate]
	mu   sync.Mutex // serialises reloads; guards stamp
	// stamp is the files' sizes and modification times when last read.
	stamp string
}

// LoadFiles reads the pair. Its error is [Problems] when a file is
// missing or unreadable, holds no usable PEM, or the key does not match
// the certificate. onError, if not nil, is called whenever a later reload
// fails.
func LoadFiles(certFile, keyFile string, log *slog.Logger, onError func()) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile, log: log, onError: onError}
	f.stamp = f.currentStamp()
	cert, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cert.Store(cert)
	return f, nil
}

// GetCertificate is a [tls.Config] GetCertificate: the current pair.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert.Load(), nil
}

// Reload reads the files again. A pair that fails to load is logged and
// the one in use is kept.
func (f *Files) Reload(why string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stamp = f.currentStamp()
	cert, err := f.load()
	if err != nil {
		f.log.Error("TLS certificate not reloaded: keeping the one in use", "why", why, "err", err.Error())
		if f.onError != nil {
			f.onError()
		}
		return err
	}
	f.cert.Store(cert)
	f.log.Info("TLS certificate reloaded", "why", why, "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// Watch reloads the pair whenever either file's size or modification
// time changes, looking every interval, until ctx ends.
func (f *Files) Watch(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		changed := f.currentStamp() != f.stamp
		f.mu.Unlock()
		if changed {
			f.Reload("files changed")
		}
	}
}

func (f *Files) currentStamp() string {
	var b strings.Builder
	for _, name := range []string{f.certFile, f.keyFile} {
		if fi, err := os.Stat(name); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("-;")
		}
	}
	return b.String()
}

// load reads and checks the pair, naming the variable of each problem.
func (f *Files) load() (*tls.Certificate, error) {
	var problems Problems
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		problems = append(problems, fmt.Sprintf("TLS_CERT_FILE: cannot read %q: %v", f.certFile, unwrapPath(err)))
	} else if !hasCertificate(certPEM) {
		problems = append(problems, fmt.Sprintf("TLS_CERT_FILE: %q holds no PEM certificate", f.certFile))
		certPEM = nil
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		problems = append(problems, fmt.Sprintf("TLS_KEY_FILE: cannot read %q: %v", f.keyFile, unwrapPath(err)))
	}
	if problems != nil || certPEM == nil {
		return nil, problems
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	switch {
	case err == nil:
	case strings.Contains(err.Error(), "does not match"):
		return nil, Problems{fmt.Sprintf("TLS_KEY_FILE: the key in %q does not match the certificate in %q", f.keyFile, f.certFile)}
	case strings.Contains(err.Error(), "certificate"):
		return nil, Problems{fmt.Sprintf("TLS_CERT_FILE: %q: %v", f.certFile, err)}
	default:
		return nil, Problems{fmt.Sprintf("TLS_KEY_FILE: %q: %v", f.keyFile, err)}
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, Problems{fmt.Sprintf("TLS_CERT_FILE: %q: %v", f.certFile, err)}
		}
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		f.log.Warn("TLS certificate has expired", "file", f.certFile,
			"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// hasCertificate reports whether b holds a PEM CERTIFICATE block.
func hasCertificate(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" {
			return true
		}
	}
}

// unwrapPath drops the path from an *os.PathError: the line names it.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
