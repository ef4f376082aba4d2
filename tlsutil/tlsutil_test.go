package tlsutil_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tlsutil"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil/testpki"
)

func genPKI(t *testing.T) *testpki.PKI {
	t.Helper()
	p, err := testpki.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadCAPool(t *testing.T) {
	p := genPKI(t)
	dir := t.TempDir()

	bundle := "# Issuer: test\n" + string(p.CA.CertPEM) + "\nsome comment\n" + string(p.OtherCA.CertPEM)
	good := write(t, dir, "bundle.pem", []byte(bundle))
	pool, certs, err := tlsutil.LoadCAPool(good)
	if err != nil {
		t.Fatalf("good bundle: %v", err)
	}
	if len(certs) != 2 || pool == nil {
		t.Fatalf("got %d certs", len(certs))
	}
	// The pool really verifies the client certificate.
	if _, err := p.Client.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client does not verify against loaded pool: %v", err)
	}
	// Several files.
	if _, certs, err = tlsutil.LoadCAPool(p.CA.CertFile, p.OtherCA.CertFile); err != nil || len(certs) != 2 {
		t.Fatalf("two files: %d, %v", len(certs), err)
	}

	cases := []struct {
		name  string
		files []string
		want  string
	}{
		{"none", nil, "no CA files"},
		{"empty name", []string{""}, "empty CA file name"},
		{"missing", []string{filepath.Join(dir, "nope.pem")}, "no such file"},
		{"empty", []string{write(t, dir, "empty.pem", nil)}, "empty"},
		{"whitespace", []string{write(t, dir, "ws.pem", []byte(" \n\t\n"))}, "empty"},
		{"DER", []string{write(t, dir, "ca.der", p.CA.Cert.Raw)}, "no PEM CERTIFICATE"},
		{"text", []string{write(t, dir, "text.pem", []byte("hello world\n"))}, "no PEM CERTIFICATE"},
		{"private key", []string{write(t, dir, "key.pem", p.CA.KeyPEM)}, `"PRIVATE KEY"`},
		{"cert then key", []string{write(t, dir, "mixed.pem", append(append([]byte{}, p.CA.CertPEM...), p.CA.KeyPEM...))}, `"PRIVATE KEY"`},
		{"bad cert", []string{write(t, dir, "bad.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))}, "parsing certificate"},
		{"good then missing", []string{good, filepath.Join(dir, "nope.pem")}, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool, certs, err := tlsutil.LoadCAPool(tc.files...)
			if err == nil {
				t.Fatalf("want error, got pool with %d certs", len(certs))
			}
			if pool != nil || certs != nil {
				t.Fatal("pool returned alongside error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	if _, _, err := tlsutil.LoadCAPool(); !errors.Is(err, tlsutil.ErrNoCAFiles) {
		t.Fatalf("want ErrNoCAFiles, got %v", err)
	}
}

func TestParseCertField(t *testing.T) {
	for _, s := range []string{"cn", "CN", " san_email ", "san_uri", "san_dns"} {
		if _, err := tlsutil.ParseCertField(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "subject", "email"} {
		if _, err := tlsutil.ParseCertField(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	h := hex.EncodeToString(sum[:])
	var colons []string
	for i := 0; i < len(h); i += 2 {
		colons = append(colons, strings.ToUpper(h[i:i+2]))
	}
	for _, s := range []string{h, strings.ToUpper(h), "sha256:" + h, "SHA256:" + strings.Join(colons, ":"), strings.Join(colons, ":")} {
		fp, err := tlsutil.ParseFingerprint(s)
		if err != nil || fp != sum {
			t.Errorf("%q: %x %v", s, fp, err)
		}
	}
	for _, s := range []string{"", h[:62], h + "00", strings.Replace(h, h[:2], "zz", 1)} {
		if _, err := tlsutil.ParseFingerprint(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestCertMapper(t *testing.T) {
	p := genPKI(t)
	c := p.Client.Cert
	cases := []struct {
		from []tlsutil.CertField
		want string
	}{
		{[]tlsutil.CertField{tlsutil.FieldCN}, "alice"},
		{[]tlsutil.CertField{tlsutil.FieldSANEmail}, "alice@example.com"},
		{[]tlsutil.CertField{tlsutil.FieldSANURI}, "spiffe://example.com/alice"},
		{[]tlsutil.CertField{tlsutil.FieldSANDNS}, "alice.clients.example.com"},
		{[]tlsutil.CertField{tlsutil.FieldSANEmail, tlsutil.FieldCN}, "alice@example.com"},
	}
	for _, tc := range cases {
		m := tlsutil.CertMapper{From: tc.from}
		got, err := m.Username(c)
		if err != nil || got != tc.want {
			t.Errorf("%v: %q %v", tc.from, got, err)
		}
	}

	// Fallback order: a CN-only certificate with san_email first.
	cnOnly, err := p.Issue(testpki.ClientOptions{Name: "cn-only", CN: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	m := tlsutil.CertMapper{From: []tlsutil.CertField{tlsutil.FieldSANEmail, tlsutil.FieldSANURI, tlsutil.FieldCN}}
	if got, err := m.Username(cnOnly.Cert); err != nil || got != "bob" {
		t.Errorf("fallback: %q %v", got, err)
	}
	// Nothing matches.
	m = tlsutil.CertMapper{From: []tlsutil.CertField{tlsutil.FieldSANEmail}}
	if _, err := m.Username(cnOnly.Cert); !errors.Is(err, tlsutil.ErrNoCertIdentity) {
		t.Errorf("want ErrNoCertIdentity, got %v", err)
	}
	// Empty mapper denies.
	if _, err := (&tlsutil.CertMapper{}).Username(c); !errors.Is(err, tlsutil.ErrNoCertIdentity) {
		t.Errorf("empty mapper: %v", err)
	}
	var nilMapper *tlsutil.CertMapper
	if _, err := nilMapper.Username(c); err == nil {
		t.Error("nil mapper accepted")
	}

	// Fingerprint table wins over fields; other certificates fall through.
	m = tlsutil.CertMapper{
		From:         []tlsutil.CertField{tlsutil.FieldCN},
		Fingerprints: map[[32]byte]string{tlsutil.Fingerprint(cnOnly.Cert): "ci-runner"},
	}
	if got, _ := m.Username(cnOnly.Cert); got != "ci-runner" {
		t.Errorf("fingerprint: %q", got)
	}
	if got, _ := m.Username(c); got != "alice" {
		t.Errorf("fingerprint fallthrough: %q", got)
	}
	// Fingerprint-only mapper denies unknown certificates.
	m.From = nil
	if _, err := m.Username(c); !errors.Is(err, tlsutil.ErrNoCertIdentity) {
		t.Errorf("fingerprint-only: %v", err)
	}

	// Control characters are refused.
	evil, err := p.Issue(testpki.ClientOptions{Name: "evil", CN: "alice\nadmin"})
	if err != nil {
		t.Fatal(err)
	}
	m = tlsutil.CertMapper{From: []tlsutil.CertField{tlsutil.FieldCN}}
	if _, err := m.Username(evil.Cert); !errors.Is(err, tlsutil.ErrNoCertIdentity) {
		t.Errorf("control char: %v", err)
	}
}

func TestTestPKI(t *testing.T) {
	p := genPKI(t)
	verify := func(c *x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	if err := verify(p.Client.Cert, p.CAPool(), x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client: %v", err)
	}
	if err := verify(p.ExpiredClient.Cert, p.CAPool(), x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("expired client verifies")
	}
	if err := verify(p.WrongCAClient.Cert, p.CAPool(), x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("wrong-CA client verifies")
	}
	if err := p.Server.Cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := p.Server.Cert.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}
	if err := verify(p.Server.Cert, p.CAPool(), x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("server: %v", err)
	}
	for _, f := range []string{p.CA.CertFile, p.Server.KeyFile, p.Client.BundleFile, p.WrongCAClient.CertFile} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if _, _, err := tlsutil.LoadCAPool(p.CA.CertFile); err != nil {
		t.Errorf("CA file: %v", err)
	}
	if _, err := p.Issue(testpki.ClientOptions{}); err == nil {
		t.Error("Issue without name accepted")
	}
	if _, err := p.Issue(testpki.ClientOptions{Name: "u", URIs: []string{"%zz"}}); err == nil {
		t.Error("bad URI accepted")
	}
}
