package authn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tlsutil"
)

// ClientCert maps the verified TLS client certificate to a username.
type ClientCert struct {
	mapper tlsutil.CertMapper
	now    func() time.Time
}

// NewClientCert returns a ClientCert using mapper. now may be nil
// (time.Now). A mapper with neither fields nor fingerprints is refused.
func NewClientCert(mapper tlsutil.CertMapper, now func() time.Time) (*ClientCert, error) {
	if len(mapper.From) == 0 && len(mapper.Fingerprints) == 0 {
		return nil, errors.New("authn: client certificate mapping has no rule")
	}
	if now == nil {
		now = time.Now
	}
	return &ClientCert{mapper: mapper, now: now}, nil
}

// Authenticate returns a Principal with MethodCert from the leaf of the
// first verified chain. It wraps ErrNoCredentials when the connection is not
// TLS or carries no client certificate, and ErrInvalidCredentials when a
// certificate was presented but not verified by the TLS stack (for example
// with tls.RequestClientCert), has expired since the handshake, or maps to
// no username. PeerCertificates alone are never trusted.
func (c *ClientCert) Authenticate(cs *tls.ConnectionState) (*Principal, error) {
	if cs == nil {
		return nil, fmt.Errorf("%w: not a TLS connection", ErrNoCredentials)
	}
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		if len(cs.PeerCertificates) > 0 {
			return nil, invalid("cert: client certificate not verified")
		}
		return nil, fmt.Errorf("%w: no client certificate", ErrNoCredentials)
	}
	leaf := cs.VerifiedChains[0][0]
	// The handshake checked validity, but a connection can outlive the
	// certificate (keep-alive, HTTP/2).
	now := c.now()
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, invalid("cert: client certificate outside its validity period")
	}
	name, err := c.mapper.Username(leaf)
	if err != nil {
		return nil, invalidErr("cert", err)
	}
	return &Principal{Username: name, Method: MethodCert, ExpiresAt: leaf.NotAfter, ClientCert: name}, nil
}
