// Package testpki generates a small throw-away PKI for tests: a CA, a
// server certificate for 127.0.0.1/::1/localhost, and client certificates
// (good, expired, signed by an unrelated CA, and CN/SAN variants on demand).
// Keys are ECDSA P-256 for speed. Everything is also written as PEM files so
// tests can exercise file-based configuration the way an operator would.
//
// It is for tests only: keys are written unencrypted with mode 0600.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Cert is a certificate, its key, their PEM encodings and the files they
// were written to.
type Cert struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key is the private key.
	Key *ecdsa.PrivateKey
	// CertPEM and KeyPEM are the PEM encodings (CERTIFICATE, PRIVATE KEY).
	CertPEM, KeyPEM []byte
	// CertFile and KeyFile are where CertPEM and KeyPEM were written.
	CertFile, KeyFile string
	// BundleFile holds the certificate followed by the key in one PEM file,
	// the form MLFLOW_TRACKING_CLIENT_CERT_PATH accepts.
	BundleFile string
	// TLS is the pair ready for tls.Config.Certificates.
	TLS tls.Certificate
}

// PKI is a generated test PKI.
type PKI struct {
	// Dir is where the PEM files live.
	Dir string
	// CA signs Server, Client and ExpiredClient.
	CA *Cert
	// OtherCA is an unrelated CA that signs WrongCAClient.
	OtherCA *Cert
	// Server is valid for 127.0.0.1, ::1 and localhost.
	Server *Cert
	// Client is a valid client certificate with CN "alice", email SAN
	// alice@example.com, URI SAN spiffe://example.com/alice and DNS SAN
	// alice.clients.example.com.
	Client *Cert
	// ExpiredClient is like Client (CN "alice") but expired a day ago.
	ExpiredClient *Cert
	// WrongCAClient is like Client (CN "alice") but signed by OtherCA.
	WrongCAClient *Cert
}

// ClientOptions describes an extra client certificate for Issue.
type ClientOptions struct {
	// Name is the base file name (required, unique within the PKI).
	Name string
	// CN is the subject common name.
	CN string
	// Emails become rfc822Name subject alternative names.
	Emails []string
	// URIs become URI subject alternative names.
	URIs []string
	// DNSNames become dNSName subject alternative names.
	DNSNames []string
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
	// SignedBy defaults to the PKI's CA.
	SignedBy *Cert
}

// Generate creates a PKI and writes its PEM files into dir, which must exist.
func Generate(dir string) (*PKI, error) {
	p := &PKI{Dir: dir}
	var err error
	if p.CA, err = newCA(dir, "ca", "caddy-mlflow test CA"); err != nil {
		return nil, err
	}
	if p.OtherCA, err = newCA(dir, "other-ca", "unrelated test CA"); err != nil {
		return nil, err
	}
	now := time.Now()
	p.Server, err = p.issue("server", p.CA, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(24 * time.Hour),
	})
	if err != nil {
		return nil, err
	}
	alice := ClientOptions{
		CN:       "alice",
		Emails:   []string{"alice@example.com"},
		URIs:     []string{"spiffe://example.com/alice"},
		DNSNames: []string{"alice.clients.example.com"},
	}
	o := alice
	o.Name = "client"
	if p.Client, err = p.Issue(o); err != nil {
		return nil, err
	}
	o = alice
	o.Name, o.NotBefore, o.NotAfter = "client-expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	if p.ExpiredClient, err = p.Issue(o); err != nil {
		return nil, err
	}
	o = alice
	o.Name, o.SignedBy = "client-wrong-ca", p.OtherCA
	if p.WrongCAClient, err = p.Issue(o); err != nil {
		return nil, err
	}
	return p, nil
}

// Issue creates and writes an extra client certificate.
func (p *PKI) Issue(o ClientOptions) (*Cert, error) {
	if o.Name == "" {
		return nil, fmt.Errorf("testpki: client certificate needs a Name")
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	if o.SignedBy == nil {
		o.SignedBy = p.CA
	}
	tmpl := &x509.Certificate{
		Subject:        pkix.Name{CommonName: o.CN},
		EmailAddresses: o.Emails,
		DNSNames:       o.DNSNames,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:      o.NotBefore,
		NotAfter:       o.NotAfter,
	}
	for _, s := range o.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("testpki: URI SAN %q: %w", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	return p.issue(o.Name, o.SignedBy, tmpl)
}

// CAPool returns a pool holding only the PKI's CA.
func (p *PKI) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	return pool
}

// ServerTLSConfig returns a server configuration using the Server
// certificate and trusting client certificates from CA.
func (p *PKI) ServerTLSConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.Server.TLS},
		ClientAuth:   auth,
		ClientCAs:    p.CAPool(),
		MinVersion:   tls.VersionTLS12,
	}
}

// ClientTLSConfig returns a client configuration trusting CA and presenting
// the given client certificate (none when client is nil).
func (p *PKI) ClientTLSConfig(client *Cert) *tls.Config {
	c := &tls.Config{RootCAs: p.CAPool(), MinVersion: tls.VersionTLS12}
	if client != nil {
		c.Certificates = []tls.Certificate{client.TLS}
	}
	return c
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, fmt.Errorf("testpki: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func newCA(dir, name, cn string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-72 * time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testpki: CA certificate: %w", err)
	}
	return finish(dir, name, der, key)
}

func (p *PKI) issue(name string, ca *Cert, tmpl *x509.Certificate) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testpki: key for %s: %w", name, err)
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: certificate %s: %w", name, err)
	}
	c, err := finish(p.Dir, name, der, key)
	if err != nil {
		return nil, err
	}
	// Chain the issuing CA so servers and clients send it too.
	c.TLS.Certificate = append(c.TLS.Certificate, ca.Cert.Raw)
	return c, nil
}

func finish(dir, name string, der []byte, key *ecdsa.PrivateKey) (*Cert, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: parsing %s: %w", name, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testpki: marshalling key %s: %w", name, err)
	}
	c := &Cert{
		Cert:       cert,
		Key:        key,
		CertPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		CertFile:   filepath.Join(dir, name+".crt"),
		KeyFile:    filepath.Join(dir, name+".key"),
		BundleFile: filepath.Join(dir, name+".pem"),
	}
	if c.TLS, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		return nil, fmt.Errorf("testpki: key pair %s: %w", name, err)
	}
	bundle := append(append([]byte{}, c.CertPEM...), c.KeyPEM...)
	for _, f := range []struct {
		path string
		data []byte
	}{{c.CertFile, c.CertPEM}, {c.KeyFile, c.KeyPEM}, {c.BundleFile, bundle}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, fmt.Errorf("testpki: writing %s: %w", f.path, err)
		}
	}
	return c, nil
}
