package tlsutil

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// CertField names the part of a verified client certificate a username is
// taken from.
type CertField string

// The certificate fields a username can be taken from. The names are the
// values accepted in configuration (`username_from cn`).
const (
	// FieldCN is the subject common name.
	FieldCN CertField = "cn"
	// FieldSANEmail is the first rfc822Name subject alternative name.
	FieldSANEmail CertField = "san_email"
	// FieldSANURI is the first URI subject alternative name, as a string
	// (for example a SPIFFE ID).
	FieldSANURI CertField = "san_uri"
	// FieldSANDNS is the first dNSName subject alternative name.
	FieldSANDNS CertField = "san_dns"
)

// ParseCertField parses a configuration value (cn, san_email, san_uri,
// san_dns; case-insensitive) into a CertField.
func ParseCertField(s string) (CertField, error) {
	switch f := CertField(strings.ToLower(strings.TrimSpace(s))); f {
	case FieldCN, FieldSANEmail, FieldSANURI, FieldSANDNS:
		return f, nil
	}
	return "", fmt.Errorf("tlsutil: unknown certificate field %q (want cn, san_email, san_uri or san_dns)", s)
}

// Fingerprint returns the SHA-256 digest of the certificate's DER encoding,
// the value `openssl x509 -noout -fingerprint -sha256` prints.
func Fingerprint(cert *x509.Certificate) [32]byte {
	return sha256.Sum256(cert.Raw)
}

// ParseFingerprint parses a SHA-256 certificate fingerprint written as 64 hex
// digits, optionally separated by colons and optionally prefixed by
// "sha256:" (case-insensitive), as openssl prints it.
func ParseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	t := strings.TrimSpace(s)
	if len(t) >= 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	}
	t = strings.ReplaceAll(t, ":", "")
	if len(t) != 64 {
		return fp, fmt.Errorf("tlsutil: fingerprint must be 32 bytes of hex (SHA-256), got %d hex digits", len(t))
	}
	if _, err := hex.Decode(fp[:], []byte(t)); err != nil {
		return fp, fmt.Errorf("tlsutil: fingerprint is not hex: %w", err)
	}
	return fp, nil
}

// ErrNoCertIdentity is returned by CertMapper.Username when no configured
// rule yields a username for the certificate.
var ErrNoCertIdentity = errors.New("tlsutil: client certificate maps to no username")

// CertMapper maps a verified client certificate to a username. The explicit
// fingerprint table is consulted first; then the fields in From, in order;
// the first non-empty value wins. A mapper with neither fingerprints nor
// fields maps nothing (deny by default).
//
// A CertMapper must only be given a certificate that the TLS stack has
// verified (a leaf of tls.ConnectionState.VerifiedChains); it does not verify.
type CertMapper struct {
	// From lists the certificate fields to try, in order.
	From []CertField
	// Fingerprints maps SHA-256 certificate fingerprints to usernames.
	Fingerprints map[[32]byte]string
}

// Username returns the username the certificate maps to, or an error
// wrapping ErrNoCertIdentity. Values containing control characters are
// refused rather than passed on to logs and permission lookups.
func (m *CertMapper) Username(cert *x509.Certificate) (string, error) {
	if m == nil || cert == nil {
		return "", ErrNoCertIdentity
	}
	if len(m.Fingerprints) > 0 {
		fp := Fingerprint(cert)
		var match string
		found := 0
		// Visit every entry so timing does not depend on where the match is.
		for k, name := range m.Fingerprints {
			if subtle.ConstantTimeCompare(k[:], fp[:]) == 1 {
				match, found = name, 1
			}
		}
		if found == 1 {
			return checkName(match)
		}
	}
	for _, f := range m.From {
		var v string
		switch f {
		case FieldCN:
			v = cert.Subject.CommonName
		case FieldSANEmail:
			if len(cert.EmailAddresses) > 0 {
				v = cert.EmailAddresses[0]
			}
		case FieldSANURI:
			if len(cert.URIs) > 0 {
				v = cert.URIs[0].String()
			}
		case FieldSANDNS:
			if len(cert.DNSNames) > 0 {
				v = cert.DNSNames[0]
			}
		default:
			return "", fmt.Errorf("tlsutil: unknown certificate field %q", f)
		}
		if v != "" {
			return checkName(v)
		}
	}
	return "", ErrNoCertIdentity
}

func checkName(s string) (string, error) {
	if s == "" {
		return "", ErrNoCertIdentity
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%w: value contains a control character", ErrNoCertIdentity)
		}
	}
	return s, nil
}
