package authn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tlsutil"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil/testpki"
)

type authResult struct {
	User, Method, ClientCert, Err string
	NoCreds, Invalid              bool
}

// tlsServer runs an authenticator behind a real TLS listener that asks for,
// and verifies when given, client certificates.
func tlsServer(t *testing.T, pki *testpki.PKI, pool *x509.CertPool, a *Authenticator) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		StripIdentityHeaders(r.Header)
		p, err := a.Authenticate(r.Context(), r)
		res := authResult{}
		if err != nil {
			res.Err = err.Error()
			res.NoCreds = errors.Is(err, ErrNoCredentials)
			res.Invalid = errors.Is(err, ErrInvalidCredentials)
		} else {
			res.User, res.Method, res.ClientCert = p.Username, string(p.Method), p.ClientCert
		}
		json.NewEncoder(w).Encode(res)
	}))
	srv.TLS = pki.ServerTLSConfig(tls.VerifyClientCertIfGiven)
	if pool != nil {
		srv.TLS.ClientCAs = pool
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, pki *testpki.PKI, srv *httptest.Server, client *testpki.Cert, hdr map[string]string) (authResult, error) {
	t.Helper()
	cfg := pki.ClientTLSConfig(nil)
	if client != nil {
		// Always present the certificate, even when the server's list of
		// acceptable CAs does not include its issuer (Go's client would
		// otherwise silently send none), so the server must reject it.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &client.TLS, nil
		}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return authResult{}, err
	}
	defer resp.Body.Close()
	var res authResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestClientCertHandshake(t *testing.T) {
	pki, err := testpki.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The server trusts the CA loaded the way the gateway will load it.
	pool, _, err := tlsutil.LoadCAPool(pki.CA.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := NewClientCert(tlsutil.CertMapper{From: []tlsutil.CertField{tlsutil.FieldSANEmail, tlsutil.FieldCN}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{ClientCert: cc})
	if err != nil {
		t.Fatal(err)
	}
	srv := tlsServer(t, pki, pool, a)

	res, err := call(t, pki, srv, pki.Client, map[string]string{"X-Remote-User": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if res.User != "alice@example.com" || res.Method != "cert" {
		t.Fatalf("good cert: %+v", res)
	}

	res, err = call(t, pki, srv, nil, map[string]string{"X-Mlflow-User": "admin", "X-Forwarded-User": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoCreds {
		t.Fatalf("no cert, identity headers: %+v", res)
	}

	for name, c := range map[string]*testpki.Cert{"expired": pki.ExpiredClient, "wrong CA": pki.WrongCAClient} {
		if res, err := call(t, pki, srv, c, nil); err == nil {
			t.Errorf("%s: handshake succeeded: %+v", name, res)
		}
	}
}

func TestClientCertState(t *testing.T) {
	pki, err := testpki.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	cc, _ := NewClientCert(tlsutil.CertMapper{From: []tlsutil.CertField{tlsutil.FieldCN}}, clk.Now)
	leaf := pki.Client.Cert
	chain := [][]*x509.Certificate{{leaf, pki.CA.Cert}}

	p, err := cc.Authenticate(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: chain})
	if err != nil || p.Username != "alice" || p.ExpiresAt != leaf.NotAfter {
		t.Fatalf("%+v %v", p, err)
	}
	_, err = cc.Authenticate(nil)
	wantKind(t, err, ErrNoCredentials)
	_, err = cc.Authenticate(&tls.ConnectionState{})
	wantKind(t, err, ErrNoCredentials)
	// Presented but unverified (tls.RequestClientCert): never trusted.
	_, err = cc.Authenticate(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}})
	wantKind(t, err, ErrInvalidCredentials)
	// Expired since the handshake on a long-lived connection.
	clk.Add(48 * time.Hour)
	_, err = cc.Authenticate(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: chain})
	wantKind(t, err, ErrInvalidCredentials)
	clk.Add(-48 * time.Hour)
	// Mapped to nothing.
	cnOnly, _ := pki.Issue(testpki.ClientOptions{Name: "nocn"})
	_, err = cc.Authenticate(&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cnOnly.Cert}}})
	wantKind(t, err, ErrInvalidCredentials)

	if _, err := NewClientCert(tlsutil.CertMapper{}, nil); err == nil {
		t.Error("empty mapper accepted")
	}
}
