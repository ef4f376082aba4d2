package tlsutil

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ErrNoCAFiles is returned by LoadCAPool when it is called without files.
var ErrNoCAFiles = errors.New("tlsutil: no CA files given")

// LoadCAPool reads one or more PEM files of trusted CA certificates and
// returns a pool holding all of them, together with the parsed certificates
// (in file order) so callers can log what they trust.
//
// It returns an error, and no pool, when no file is given, when a file is
// missing or unreadable, empty, contains no PEM CERTIFICATE block, contains
// a PEM block of any other type (a private key pasted into a bundle is a
// configuration mistake, not something to skip), or a certificate that does
// not parse. Text outside PEM blocks (comments in ca-bundle.crt style files)
// is allowed.
func LoadCAPool(files ...string) (*x509.CertPool, []*x509.Certificate, error) {
	if len(files) == 0 {
		return nil, nil, ErrNoCAFiles
	}
	pool := x509.NewCertPool()
	var all []*x509.Certificate
	for _, name := range files {
		if name == "" {
			return nil, nil, errors.New("tlsutil: empty CA file name")
		}
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("tlsutil: reading CA file: %w", err)
		}
		certs, err := ParseCertificatesPEM(data)
		if err != nil {
			return nil, nil, fmt.Errorf("tlsutil: CA file %q: %w", name, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		all = append(all, certs...)
	}
	return pool, all, nil
}

// ParseCertificatesPEM parses every PEM CERTIFICATE block in data. It fails
// on empty input, on input with no certificate, on any PEM block that is not
// a CERTIFICATE, and on a certificate that does not parse.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("file is empty")
	}
	var certs []*x509.Certificate
	rest := data
	for i := 0; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d has type %q, want CERTIFICATE", i, block.Type)
		}
		if len(block.Headers) != 0 {
			return nil, fmt.Errorf("PEM block %d has headers; encrypted or annotated certificates are not supported", i)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: parsing certificate: %w", i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found (is it DER or not a certificate?)")
	}
	return certs, nil
}
