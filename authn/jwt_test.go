package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Test keys, generated once per test binary.
var testKeys = sync.OnceValue(func() (k struct {
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	hmac    []byte
	rsaPEM  []byte
	ecPEM   []byte
	edPEM   []byte
	otherEC *ecdsa.PrivateKey
}) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.otherEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	k.hmac = []byte("0123456789abcdef0123456789abcdef")
	k.rsaPEM = pubPEM(&k.rsa.PublicKey)
	k.ecPEM = pubPEM(&k.ec.PublicKey)
	k.edPEM = pubPEM(k.ed.Public())
	return k
})

func pubPEM(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func baseClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   "https://idp.example.com",
		"aud":   "mlflow",
		"sub":   "user-123",
		"email": "alice@example.com",
		"exp":   now.Add(time.Hour).Unix(),
		"iat":   now.Unix(),
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestJWT(t *testing.T) {
	k := testKeys()
	ctx := context.Background()
	clk := newClock()
	now := clk.Now()

	hk := must(NewHMACKey(k.hmac, "HS256", ""))
	rk := must(ParsePublicKeyPEM(k.rsaPEM, "RS256", "rsa1"))
	ek := must(ParsePublicKeyPEM(k.ecPEM, "", "ec1"))
	dk := must(ParsePublicKeyPEM(k.edPEM, "", "ed1"))
	opts := JWTOptions{
		Issuer:         "https://idp.example.com",
		Audiences:      []string{"mlflow", "other"},
		UsernameClaims: []string{"email", "preferred_username", "sub"},
		Now:            clk.Now,
	}
	v, err := NewJWTVerifier(opts, StaticKeys{rk, ek, dk})
	if err != nil {
		t.Fatal(err)
	}
	vh, err := NewJWTVerifier(opts, StaticKeys{hk})
	if err != nil {
		t.Fatal(err)
	}
	c := baseClaims(now)

	good := []struct {
		name string
		v    *JWTVerifier
		tok  string
	}{
		{"HS256", vh, sign(t, jwt.SigningMethodHS256, k.hmac, "", c)},
		{"RS256", v, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", c)},
		{"RS256 no kid", v, sign(t, jwt.SigningMethodRS256, k.rsa, "", c)},
		{"ES256", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", c)},
		{"EdDSA", v, sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", c)},
		{"aud list", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "aud", []string{"x", "other"}))},
		{"expired within leeway", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "exp", now.Add(-10*time.Second).Unix()))},
		{"nbf within leeway", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "nbf", now.Add(10*time.Second).Unix()))},
	}
	for _, tc := range good {
		t.Run("good/"+tc.name, func(t *testing.T) {
			p, err := tc.v.Verify(ctx, tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			if p.Username != "alice@example.com" || p.Method != MethodJWT || p.Claims["sub"] != "user-123" {
				t.Fatalf("%+v", p)
			}
			if p.ExpiresAt.IsZero() {
				t.Error("no ExpiresAt")
			}
		})
	}

	// Algorithm confusion: an HS256 token whose "secret" is the RSA public
	// key, the classic attack on libraries that take alg from the token.
	der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	unsigned := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	unsigned.Header["kid"] = "rsa1"
	noneTok, err := unsigned.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		v    *JWTVerifier
		tok  string
	}{
		{"expired", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "exp", now.Add(-time.Hour).Unix()))},
		{"no exp", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "exp", nil))},
		{"nbf in future", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "nbf", now.Add(time.Hour).Unix()))},
		{"iat in future", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "iat", now.Add(time.Hour).Unix()))},
		{"wrong iss", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "iss", "https://evil.example.com"))},
		{"no iss", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "iss", nil))},
		{"wrong aud", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "aud", "someone-else"))},
		{"no aud", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "aud", nil))},
		{"alg none", v, noneTok},
		{"HS256 with RSA public key PEM as secret", v, sign(t, jwt.SigningMethodHS256, k.rsaPEM, "rsa1", c)},
		{"HS256 with RSA public key DER as secret", v, sign(t, jwt.SigningMethodHS256, der, "rsa1", c)},
		{"HS256 token, public-key verifier", v, sign(t, jwt.SigningMethodHS256, k.hmac, "", c)},
		{"RS256 token, HMAC verifier", vh, sign(t, jwt.SigningMethodRS256, k.rsa, "", c)},
		{"RS384 with RS256-pinned key", v, sign(t, jwt.SigningMethodRS384, k.rsa, "rsa1", c)},
		{"PS256 with RS256-pinned key", v, sign(t, jwt.SigningMethodPS256, k.rsa, "rsa1", c)},
		{"ES256 under RSA kid", v, sign(t, jwt.SigningMethodES256, k.ec, "rsa1", c)},
		{"unknown kid", v, sign(t, jwt.SigningMethodES256, k.ec, "nope", c)},
		{"wrong key", v, sign(t, jwt.SigningMethodES256, k.otherEC, "ec1", c)},
		{"wrong HMAC secret", vh, sign(t, jwt.SigningMethodHS256, []byte("ffffffffffffffffffffffffffffffff"), "", c)},
		{"no username claim", v, sign(t, jwt.SigningMethodES256, k.ec, "ec1", with(c, "email", nil, "sub", nil))},
		{"malformed", v, "eyJhbGciOiJFUzI1NiJ9.eyJ9.AAAA"},
		{"tampered payload", v, func() string {
			s := sign(t, jwt.SigningMethodES256, k.ec, "ec1", c)
			parts := strings.Split(s, ".")
			p, _ := json.Marshal(with(c, "email", "admin@example.com"))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
		}()},
		{"crit header", v, func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
			tok.Header["kid"] = "ec1"
			tok.Header["crit"] = []string{"exp"}
			s, _ := tok.SignedString(k.ec)
			return s
		}()},
	}
	for _, tc := range bad {
		t.Run("bad/"+tc.name, func(t *testing.T) {
			p, err := tc.v.Verify(ctx, tc.tok)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			wantKind(t, err, ErrInvalidCredentials)
			if strings.Contains(err.Error(), tc.tok) || strings.Contains(err.Error(), string(k.hmac)) {
				t.Fatalf("error leaks token or secret: %v", err)
			}
		})
	}

	// The specific jwt errors stay reachable for logs and tests.
	_, err = v.Verify(ctx, bad[0].tok)
	if !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("expired: %v", err)
	}
}

func TestJWTUsernameClaims(t *testing.T) {
	k := testKeys()
	clk := newClock()
	ek := must(ParsePublicKeyPEM(k.ecPEM, "ES256", ""))
	v, err := NewJWTVerifier(JWTOptions{UsernameClaims: []string{"email", "preferred_username", "sub"}, Now: clk.Now}, StaticKeys{ek})
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{"exp": clk.Now().Add(time.Hour).Unix(), "sub": "s", "preferred_username": "pu", "email": "e@x", "groups": []string{"g1", "g2"}}
	cases := []struct {
		claims jwt.MapClaims
		want   string
	}{
		{c, "e@x"},
		{with(c, "email", nil), "pu"},
		{with(c, "email", ""), "pu"},
		{with(c, "email", 42), "pu"},
		{with(c, "email", nil, "preferred_username", nil), "s"},
	}
	for _, tc := range cases {
		p, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec, "", tc.claims))
		if err != nil || p.Username != tc.want {
			t.Errorf("want %q: %+v %v", tc.want, p, err)
		}
		if len(p.Groups) != 2 {
			t.Errorf("groups: %v", p.Groups)
		}
	}
	// Default claim order is just sub.
	v2, _ := NewJWTVerifier(JWTOptions{Now: clk.Now}, StaticKeys{ek})
	p, err := v2.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec, "", with(c, "groups", "solo")))
	if err != nil || p.Username != "s" || len(p.Groups) != 1 || p.Groups[0] != "solo" {
		t.Errorf("default: %+v %v", p, err)
	}
	// Without iss/aud configured, tokens without them pass.
	if _, err := v2.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec, "", jwt.MapClaims{"exp": clk.Now().Add(time.Hour).Unix(), "sub": "x"})); err != nil {
		t.Error(err)
	}
}

func TestKeyConfig(t *testing.T) {
	k := testKeys()
	if _, err := NewHMACKey([]byte("short"), "HS256", ""); err == nil {
		t.Error("short HMAC secret accepted")
	}
	if _, err := NewHMACKey(k.hmac, "HS512", ""); err == nil {
		t.Error("32-byte HS512 secret accepted")
	}
	if _, err := NewHMACKey(k.hmac, "RS256", ""); err == nil {
		t.Error("HMAC key pinned to RS256")
	}
	if hk, err := NewHMACKey(k.hmac, "", ""); err != nil || hk.Alg != "HS256" {
		t.Errorf("default alg: %+v %v", hk, err)
	}
	if _, err := ParsePublicKeyPEM(k.rsaPEM, "", ""); err == nil {
		t.Error("RSA key without alg accepted")
	}
	if _, err := ParsePublicKeyPEM(k.rsaPEM, "HS256", ""); err == nil {
		t.Error("RSA key pinned to HS256")
	}
	if _, err := ParsePublicKeyPEM(k.ecPEM, "ES384", ""); err == nil {
		t.Error("P-256 key pinned to ES384")
	}
	if _, err := ParsePublicKeyPEM(k.ecPEM, "RS256", ""); err == nil {
		t.Error("EC key pinned to RS256")
	}
	if key, err := ParsePublicKeyPEM(k.edPEM, "", ""); err != nil || key.Alg != "EdDSA" {
		t.Errorf("Ed25519: %+v %v", key, err)
	}
	pk1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	if _, err := ParsePublicKeyPEM(pk1, "PS256", ""); err != nil {
		t.Errorf("PKCS#1: %v", err)
	}
	priv, _ := x509.MarshalPKCS8PrivateKey(k.ec)
	if _, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), "ES256", ""); err == nil {
		t.Error("private key accepted")
	}
	if _, err := ParsePublicKeyPEM([]byte("nope"), "ES256", ""); err == nil {
		t.Error("garbage accepted")
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := ParsePublicKeyPEM(pubPEM(&small.PublicKey), "RS256", ""); err == nil {
		t.Error("1024-bit RSA accepted")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "k.pem")
	os.WriteFile(f, k.ecPEM, 0o600)
	if _, err := LoadPublicKeyFile(f, "", "x"); err != nil {
		t.Error(err)
	}
	if _, err := LoadPublicKeyFile(filepath.Join(dir, "missing.pem"), "", ""); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := NewJWTVerifier(JWTOptions{}); err == nil {
		t.Error("verifier without keys")
	}
	if _, err := NewJWTVerifier(JWTOptions{}, StaticKeys{}); err == nil {
		t.Error("verifier with empty key set")
	}
	if _, err := NewJWTVerifier(JWTOptions{Leeway: time.Hour}, StaticKeys{must(NewHMACKey(k.hmac, "", ""))}); err == nil {
		t.Error("hour of leeway accepted")
	}
}

// jwkOf renders a public key as a JWK map.
func jwkOf(kid, alg string, pub any) map[string]any {
	b := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": kid}
	if alg != "" {
		m["alg"] = alg
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b(p.N.Bytes()), b(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, _ := p.Bytes()
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b(raw[1:33]), b(raw[33:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b(p)
	}
	return m
}

func jwksJSON(keys ...map[string]any) []byte {
	out, _ := json.Marshal(map[string]any{"keys": keys})
	return out
}

func TestParseJWKS(t *testing.T) {
	k := testKeys()
	data := jwksJSON(
		jwkOf("r", "", &k.rsa.PublicKey),
		jwkOf("e", "ES256", &k.ec.PublicKey),
		jwkOf("d", "", k.ed.Public()),
		map[string]any{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
		with(jwt.MapClaims(jwkOf("enc", "", &k.ec.PublicKey)), "use", "enc"),
		map[string]any{"kty": "EC", "kid": "bad", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
	)
	keys, err := ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, key := range keys {
		got[key.ID] = key.Alg
	}
	want := map[string]string{"r": "RS256", "e": "ES256", "d": "EdDSA"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for id, alg := range want {
		if got[id] != alg {
			t.Errorf("%s: %q want %q", id, got[id], alg)
		}
	}
	for name, bad := range map[string][]byte{
		"not json":        []byte("{"),
		"empty":           jwksJSON(),
		"only oct":        jwksJSON(map[string]any{"kty": "oct", "k": "c2VjcmV0"}),
		"alg mismatch":    jwksJSON(jwkOf("x", "RS256", &k.ec.PublicKey)),
		"HS256 alg":       jwksJSON(jwkOf("x", "HS256", &k.rsa.PublicKey)),
		"point off curve": jwksJSON(map[string]any{"kty": "EC", "crv": "P-256", "x": base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "y": base64.RawURLEncoding.EncodeToString(make([]byte, 32))}),
		"even exponent":   jwksJSON(map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(k.rsa.N.Bytes()), "e": "Ag"}),
	} {
		if _, err := ParseJWKS(bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}

	f := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(f, data, 0o600)
	sk, err := LoadJWKSFile(f)
	if err != nil || len(sk) != 3 {
		t.Fatalf("file: %d %v", len(sk), err)
	}
	v, err := NewJWTVerifier(JWTOptions{}, sk)
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{"sub": "bob", "exp": time.Now().Add(time.Minute).Unix()}
	for _, tok := range []string{
		sign(t, jwt.SigningMethodRS256, k.rsa, "r", c),
		sign(t, jwt.SigningMethodES256, k.ec, "e", c),
		sign(t, jwt.SigningMethodEdDSA, k.ed, "d", c),
	} {
		if p, err := v.Verify(context.Background(), tok); err != nil || p.Username != "bob" {
			t.Errorf("%+v %v", p, err)
		}
	}
	// The oct key in the set must never be usable as an HMAC secret.
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, []byte("secret"), "sym", c)); err == nil {
		t.Error("HS256 token verified with a JWKS oct key")
	}
	if _, err := LoadJWKSFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing JWKS file accepted")
	}
}

// jwksServer serves a JWKS that tests can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	delay   time.Duration
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: 200}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status, delay := s.body, s.status, s.delay
		s.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte, status int, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status, s.delay = body, status, delay
}

func TestRemoteJWKS(t *testing.T) {
	k := testKeys()
	ctx := context.Background()
	srv := newJWKSServer(t, jwksJSON(jwkOf("k1", "ES256", &k.ec.PublicKey)))
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server not on loopback: %s", srv.URL)
	}
	clk := newClock()
	rj, err := NewRemoteJWKS(srv.URL, RemoteJWKSOptions{TTL: 10 * time.Minute, MinRefreshInterval: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewJWTVerifier(JWTOptions{Now: clk.Now}, rj)
	if err != nil {
		t.Fatal(err)
	}
	claims := func() jwt.MapClaims { return jwt.MapClaims{"sub": "carol", "exp": clk.Now().Add(time.Hour).Unix()} }
	verify := func(key any, kid string) error {
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, key, kid, claims()))
		return err
	}

	if err := verify(k.ec, "k1"); err != nil {
		t.Fatal(err)
	}
	if err := verify(k.ec, "k1"); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1 (cached)", n)
	}

	// Unknown kid: within MinRefreshInterval of the last fetch, no refetch.
	for range 10 {
		if err := verify(k.otherEC, "k2"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, unknown kids must be rate-limited", n)
	}

	// Key rotation at the IdP; after the interval an unknown kid refreshes once.
	srv.set(jwksJSON(jwkOf("k1", "ES256", &k.ec.PublicKey), jwkOf("k2", "ES256", &k.otherEC.PublicKey)), 200, 0)
	clk.Add(61 * time.Second)
	if err := verify(k.otherEC, "k2"); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	for range 5 {
		verify(k.otherEC, "k3")
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d after bogus kids, want 2", n)
	}

	// TTL expiry refetches; a failing IdP leaves the stale keys in use.
	srv.set([]byte("oops"), 500, 0)
	clk.Add(11 * time.Minute)
	if err := verify(k.ec, "k1"); err != nil {
		t.Fatalf("stale keys not used while IdP fails: %v", err)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
	// and the failure is rate-limited too.
	verify(k.ec, "k1")
	verify(k.ec, "k9")
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, failures must be rate-limited", n)
	}
}

func TestRemoteJWKSConcurrentSingleFetch(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwksJSON(jwkOf("k1", "ES256", &k.ec.PublicKey)))
	srv.set(srv.body, 200, 50*time.Millisecond)
	rj, err := NewRemoteJWKS(srv.URL, RemoteJWKSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			keys, err := rj.Keys(context.Background(), "k1")
			if err != nil || len(keys) != 1 {
				t.Errorf("%d keys, %v", len(keys), err)
			}
		})
	}
	wg.Wait()
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
}

func TestRemoteJWKSFailures(t *testing.T) {
	k := testKeys()
	ctx := context.Background()
	good := jwksJSON(jwkOf("k1", "ES256", &k.ec.PublicKey))

	srv := newJWKSServer(t, good)
	srv.set(append(good, make([]byte, 2048)...), 200, 0)
	rj, _ := NewRemoteJWKS(srv.URL, RemoteJWKSOptions{MaxBytes: 1024})
	if err := rj.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized: %v", err)
	}

	srv2 := newJWKSServer(t, good)
	srv2.set(good, 404, 0)
	rj, _ = NewRemoteJWKS(srv2.URL, RemoteJWKSOptions{})
	if err := rj.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	if keys, err := rj.Keys(ctx, "k1"); err == nil || len(keys) != 0 {
		t.Errorf("keys after failed fetch: %v %v", keys, err)
	}

	srv3 := newJWKSServer(t, good)
	srv3.set(good, 200, 2*time.Second)
	rj, _ = NewRemoteJWKS(srv3.URL, RemoteJWKSOptions{Timeout: 100 * time.Millisecond})
	start := time.Now()
	if err := rj.Refresh(ctx); err == nil {
		t.Error("slow server: no error")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timeout not applied: %s", d)
	}

	srv4 := newJWKSServer(t, good)
	rj, _ = NewRemoteJWKS(srv4.URL, RemoteJWKSOptions{})
	if err := rj.Refresh(ctx); err != nil {
		t.Errorf("refresh: %v", err)
	}

	for _, u := range []string{"http://idp.example.com/jwks", "ftp://x/y", "https://user:pw@idp.example.com/jwks", "https:///nohost", "::"} {
		if _, err := NewRemoteJWKS(u, RemoteJWKSOptions{}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	for _, u := range []string{"https://idp.example.com/jwks", "http://localhost:1/jwks", "http://[::1]:1/jwks"} {
		if _, err := NewRemoteJWKS(u, RemoteJWKSOptions{}); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
	if _, err := NewRemoteJWKS("http://idp.internal/jwks", RemoteJWKSOptions{AllowHTTP: true}); err != nil {
		t.Errorf("AllowHTTP: %v", err)
	}
}

func TestJWTStaticBeforeRemote(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwksJSON(jwkOf("remote", "ES256", &k.otherEC.PublicKey)))
	rj, _ := NewRemoteJWKS(srv.URL, RemoteJWKSOptions{})
	ek := must(ParsePublicKeyPEM(k.ecPEM, "ES256", "local"))
	v, err := NewJWTVerifier(JWTOptions{}, rj, StaticKeys{ek})
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{"sub": "d", "exp": time.Now().Add(time.Hour).Unix()}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec, "local", c)); err != nil {
		t.Fatal(err)
	}
	if srv.fetches.Load() != 0 {
		t.Fatal("remote JWKS fetched for a statically known kid")
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.otherEC, "remote", c)); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteJWKSRedirects(t *testing.T) {
	k := testKeys()
	good := newJWKSServer(t, jwksJSON(jwkOf("k1", "ES256", &k.ec.PublicKey)))
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, good.URL, http.StatusFound)
	}))
	t.Cleanup(redir.Close)
	rj, _ := NewRemoteJWKS(redir.URL, RemoteJWKSOptions{})
	if err := rj.Refresh(context.Background()); err != nil {
		t.Fatalf("loopback redirect: %v", err)
	}
	loop := httptest.NewServer(nil)
	loop.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL, http.StatusFound)
	})
	t.Cleanup(loop.Close)
	rj, _ = NewRemoteJWKS(loop.URL, RemoteJWKSOptions{})
	if err := rj.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "too many redirects") {
		t.Fatalf("redirect loop: %v", err)
	}
}

func TestRemoteJWKSWaiterContext(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t, jwksJSON(jwkOf("k1", "ES256", &k.ec.PublicKey)))
	srv.set(srv.body, 200, 300*time.Millisecond)
	rj, _ := NewRemoteJWKS(srv.URL, RemoteJWKSOptions{})
	done := make(chan struct{})
	go func() { rj.Keys(context.Background(), "k1"); close(done) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := rj.Keys(ctx, "k1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiter: %v", err)
	}
	<-done
	if keys, err := rj.Keys(context.Background(), "k1"); err != nil || len(keys) != 1 {
		t.Errorf("after fetch: %v %v", keys, err)
	}
}
