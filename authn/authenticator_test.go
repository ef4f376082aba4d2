package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tlsutil"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil/testpki"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

type fixture struct {
	users  *memUsers
	tokens *memTokens
	basic  *Basic
	jwt    *JWTVerifier
	tokv   *TokenVerifier
	token  string
	jwtTok string
	pki    *testpki.PKI
	cert   *ClientCert
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	k := testKeys()
	f := &fixture{users: &memUsers{}, tokens: &memTokens{}}
	f.users.set(User{Name: "alice", PasswordHash: mustHash(t, "alice-pw", bcrypt.MinCost)})
	f.users.set(User{Name: "ci"})
	var err error
	if f.basic, err = NewBasic(f.users, BasicOptions{FakeHashCost: bcrypt.MinCost}); err != nil {
		t.Fatal(err)
	}
	ek := must(ParsePublicKeyPEM(k.ecPEM, "ES256", "ec1"))
	if f.jwt, err = NewJWTVerifier(JWTOptions{Audiences: []string{"mlflow"}}, StaticKeys{ek}); err != nil {
		t.Fatal(err)
	}
	f.jwtTok = sign(t, jwt.SigningMethodES256, k.ec, "ec1", jwt.MapClaims{"sub": "jwt-user", "aud": "mlflow", "exp": time.Now().Add(time.Hour).Unix()})
	var h [32]byte
	if f.token, h, err = NewToken(); err != nil {
		t.Fatal(err)
	}
	f.tokens.add(TokenRecord{ID: "tok1", Username: "ci", Hash: h})
	if f.tokv, err = NewTokenVerifier(f.tokens, f.users, nil); err != nil {
		t.Fatal(err)
	}
	if f.pki, err = testpki.Generate(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if f.cert, err = NewClientCert(tlsutil.CertMapper{From: []tlsutil.CertField{tlsutil.FieldCN}}, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func basicHdr(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

func TestAuthenticatorHeaders(t *testing.T) {
	f := newFixture(t)
	a, err := New(Config{Basic: f.basic, JWT: f.jwt, Tokens: f.tokv})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		user   string
		method Method
		kind   error
	}
	cases := []struct {
		name string
		hdr  []string
		want want
	}{
		{"basic", []string{basicHdr("alice", "alice-pw")}, want{"alice", MethodBasic, nil}},
		{"basic lower-case scheme", []string{"basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-pw"))}, want{"alice", MethodBasic, nil}},
		{"basic wrong password", []string{basicHdr("alice", "nope")}, want{kind: ErrInvalidCredentials}},
		{"basic unknown user", []string{basicHdr("mallory", "alice-pw")}, want{kind: ErrInvalidCredentials}},
		{"basic malformed", []string{"Basic !!!"}, want{kind: ErrInvalidCredentials}},
		{"bearer token", []string{"Bearer " + f.token}, want{"ci", MethodToken, nil}},
		{"bearer jwt", []string{"Bearer " + f.jwtTok}, want{"jwt-user", MethodJWT, nil}},
		{"bearer garbage", []string{"Bearer hello"}, want{kind: ErrInvalidCredentials}},
		{"bearer empty", []string{"Bearer "}, want{kind: ErrInvalidCredentials}},
		{"bearer huge", []string{"Bearer " + strings.Repeat("a", MaxBearerBytes+1)}, want{kind: ErrInvalidCredentials}},
		{"unknown scheme", []string{"Negotiate abc"}, want{kind: ErrInvalidCredentials}},
		{"two headers", []string{basicHdr("alice", "alice-pw"), "Bearer " + f.token}, want{kind: ErrInvalidCredentials}},
		{"none", nil, want{kind: ErrNoCredentials}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/2.0/mlflow/experiments/search", nil)
			for _, h := range tc.hdr {
				r.Header.Add("Authorization", h)
			}
			// Client-set identity headers never count.
			r.Header.Set("X-Mlflow-User", "admin")
			r.Header.Set("X-Remote-User", "admin")
			p, err := a.Authenticate(context.Background(), r)
			if tc.want.kind != nil {
				wantKind(t, err, tc.want.kind)
				for _, secret := range []string{"alice-pw", f.token, f.jwtTok} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error leaks a credential: %v", err)
					}
				}
				return
			}
			if err != nil || p.Username != tc.want.user || p.Method != tc.want.method {
				t.Fatalf("%+v %v", p, err)
			}
		})
	}
	if got := a.Challenges(); len(got) != 2 || !strings.HasPrefix(got[0], `Basic realm="mlflow"`) || got[1] != `Bearer realm="mlflow"` {
		t.Errorf("challenges %q", got)
	}

	// Methods that are not enabled refuse their credentials.
	only, _ := New(Config{Basic: f.basic})
	for _, h := range []string{"Bearer " + f.token, "Bearer " + f.jwtTok} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		_, err := only.Authenticate(context.Background(), r)
		wantKind(t, err, ErrInvalidCredentials)
	}
	bearerOnly, _ := New(Config{JWT: f.jwt})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", basicHdr("alice", "alice-pw"))
	_, err = bearerOnly.Authenticate(context.Background(), r)
	wantKind(t, err, ErrInvalidCredentials)
	r.Header.Set("Authorization", "Bearer "+f.token)
	_, err = bearerOnly.Authenticate(context.Background(), r)
	wantKind(t, err, ErrInvalidCredentials)
	if got := bearerOnly.Challenges(); len(got) != 1 || got[0] != `Bearer realm="mlflow"` {
		t.Errorf("challenges %q", got)
	}

	// Store failure: neither sentinel, still an error (deny).
	f.users.err = errors.New("store closed")
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", basicHdr("alice", "alice-pw"))
	if _, err := a.Authenticate(context.Background(), r); err == nil || errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrNoCredentials) {
		t.Errorf("store failure: %v", err)
	}
}

func TestAuthenticatorClientCert(t *testing.T) {
	f := newFixture(t)
	leaf := f.pki.Client.Cert
	verified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, f.pki.CA.Cert}}}
	unverified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	noCert := &tls.ConnectionState{}

	optional, err := New(Config{Basic: f.basic, Tokens: f.tokv, ClientCert: f.cert})
	if err != nil {
		t.Fatal(err)
	}
	required, err := New(Config{Basic: f.basic, Tokens: f.tokv, ClientCert: f.cert, RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	certOnly, err := New(Config{ClientCert: f.cert, RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		user, cert string
		method     Method
		kind       error
	}
	cases := []struct {
		name string
		a    *Authenticator
		tls  *tls.ConnectionState
		hdr  string
		want want
	}{
		{"optional: cert alone", optional, verified, "", want{"alice", "alice", MethodCert, nil}},
		{"optional: header wins, cert recorded", optional, verified, "Bearer " + f.token, want{"ci", "alice", MethodToken, nil}},
		{"optional: header without cert", optional, noCert, basicHdr("alice", "alice-pw"), want{"alice", "", MethodBasic, nil}},
		{"optional: plain HTTP, header", optional, nil, basicHdr("alice", "alice-pw"), want{"alice", "", MethodBasic, nil}},
		{"optional: nothing", optional, noCert, "", want{kind: ErrNoCredentials}},
		{"optional: unverified cert fails even with good header", optional, unverified, basicHdr("alice", "alice-pw"), want{kind: ErrInvalidCredentials}},
		{"optional: cert + bad header", optional, verified, basicHdr("alice", "x"), want{kind: ErrInvalidCredentials}},
		{"required: cert + header", required, verified, basicHdr("alice", "alice-pw"), want{"alice", "alice", MethodBasic, nil}},
		{"required: cert alone not enough", required, verified, "", want{kind: ErrNoCredentials}},
		{"required: header alone not enough", required, noCert, basicHdr("alice", "alice-pw"), want{kind: ErrNoCredentials}},
		{"required: plain HTTP", required, nil, basicHdr("alice", "alice-pw"), want{kind: ErrNoCredentials}},
		{"required: unverified cert", required, unverified, basicHdr("alice", "alice-pw"), want{kind: ErrInvalidCredentials}},
		{"cert only: cert", certOnly, verified, "", want{"alice", "alice", MethodCert, nil}},
		{"cert only: none", certOnly, noCert, "", want{kind: ErrNoCredentials}},
		{"cert only: header refused", certOnly, verified, basicHdr("alice", "alice-pw"), want{kind: ErrInvalidCredentials}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = tc.tls
			if tc.hdr != "" {
				r.Header.Set("Authorization", tc.hdr)
			}
			p, err := tc.a.Authenticate(context.Background(), r)
			if tc.want.kind != nil {
				wantKind(t, err, tc.want.kind)
				return
			}
			if err != nil || p.Username != tc.want.user || p.Method != tc.want.method || p.ClientCert != tc.want.cert {
				t.Fatalf("%+v %v", p, err)
			}
		})
	}
	if len(certOnly.Challenges()) != 0 {
		t.Error("cert-only authenticator offers an HTTP challenge")
	}
}

func TestAuthenticatorRequiredCertHandshake(t *testing.T) {
	f := newFixture(t)
	a, err := New(Config{Basic: f.basic, ClientCert: f.cert, RequireClientCert: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := tlsServer(t, f.pki, nil, a)
	hdr := map[string]string{"Authorization": basicHdr("alice", "alice-pw")}
	res, err := call(t, f.pki, srv, f.pki.Client, hdr)
	if err != nil || res.User != "alice" || res.Method != "basic" || res.ClientCert != "alice" {
		t.Fatalf("cert + basic: %+v %v", res, err)
	}
	res, err = call(t, f.pki, srv, nil, hdr)
	if err != nil || !res.NoCreds {
		t.Fatalf("basic without cert: %+v %v", res, err)
	}
	if _, err := call(t, f.pki, srv, f.pki.ExpiredClient, hdr); err == nil {
		t.Fatal("expired client cert accepted")
	}
	if _, err := call(t, f.pki, srv, f.pki.WrongCAClient, hdr); err == nil {
		t.Fatal("wrong-CA client cert accepted")
	}
}

func TestNewAuthenticatorErrors(t *testing.T) {
	f := newFixture(t)
	if _, err := New(Config{}); err == nil {
		t.Error("no methods accepted")
	}
	if _, err := New(Config{Basic: f.basic, RequireClientCert: true}); err == nil {
		t.Error("RequireClientCert without mapping accepted")
	}
	if _, err := New(Config{Basic: f.basic, Realm: `a"b`}); err == nil {
		t.Error("quote in realm accepted")
	}
	a, _ := New(Config{Basic: f.basic, Realm: "corp"})
	if got := a.Challenges(); got[0] != `Basic realm="corp", charset="UTF-8"` {
		t.Errorf("%q", got)
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{}
	for _, k := range IdentityHeaders() {
		if http.CanonicalHeaderKey(k) != k {
			t.Errorf("%q not canonical", k)
		}
		h.Set(strings.ToLower(k), "admin")
	}
	h.Set("Authorization", "Basic x")
	h.Set("Content-Type", "application/json")
	StripIdentityHeaders(h)
	if len(h) != 2 {
		t.Errorf("left %v", h)
	}
	for _, must := range []string{"X-Mlflow-User", "X-Remote-User", "X-Forwarded-User"} {
		found := false
		for _, k := range IdentityHeaders() {
			found = found || k == must
		}
		if !found {
			t.Errorf("%s not listed", must)
		}
	}
}
