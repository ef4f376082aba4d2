package authn

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

func benchBasic(b *testing.B, cacheSize int) {
	users := &memUsers{}
	users.set(User{Name: "alice", PasswordHash: mustHash(b, "alice-pw", bcrypt.DefaultCost)})
	ba, err := NewBasic(users, BasicOptions{CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ba.Authenticate(ctx, "alice", "alice-pw"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ba.Authenticate(ctx, "alice", "alice-pw"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBasicCold is one bcrypt comparison at DefaultCost per request.
func BenchmarkBasicCold(b *testing.B) { benchBasic(b, -1) }

// BenchmarkBasicWarm is a verified-credential cache hit.
func BenchmarkBasicWarm(b *testing.B) { benchBasic(b, 0) }

// BenchmarkBasicUnknownUser shows unknown users cost a bcrypt comparison too.
func BenchmarkBasicUnknownUser(b *testing.B) {
	ba, err := NewBasic(&memUsers{}, BasicOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ba.Authenticate(context.Background(), "nobody", "pw")
	}
}

func BenchmarkJWTVerify(b *testing.B) {
	k := testKeys()
	c := jwt.MapClaims{"sub": "u", "aud": "mlflow", "iss": "idp", "exp": time.Now().Add(time.Hour).Unix()}
	cases := []struct {
		name string
		key  Key
		m    jwt.SigningMethod
		priv any
	}{
		{"HS256", must(NewHMACKey(k.hmac, "HS256", "k")), jwt.SigningMethodHS256, k.hmac},
		{"RS256", must(ParsePublicKeyPEM(k.rsaPEM, "RS256", "k")), jwt.SigningMethodRS256, k.rsa},
		{"ES256", must(ParsePublicKeyPEM(k.ecPEM, "ES256", "k")), jwt.SigningMethodES256, k.ec},
		{"EdDSA", must(ParsePublicKeyPEM(k.edPEM, "EdDSA", "k")), jwt.SigningMethodEdDSA, k.ed},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			v, err := NewJWTVerifier(JWTOptions{Issuer: "idp", Audiences: []string{"mlflow"}}, StaticKeys{tc.key})
			if err != nil {
				b.Fatal(err)
			}
			tok := sign(b, tc.m, tc.priv, "k", c)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTokenVerify(b *testing.B) {
	users := &memUsers{}
	users.set(User{Name: "ci"})
	store := &memTokens{}
	tok, h, _ := NewToken()
	store.add(TokenRecord{ID: "t", Username: "ci", Hash: h})
	v, _ := NewTokenVerifier(store, users, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate is the whole per-request path, in parallel.
func BenchmarkAuthenticate(b *testing.B) {
	k := testKeys()
	users := &memUsers{}
	users.set(User{Name: "alice", PasswordHash: mustHash(b, "alice-pw", bcrypt.DefaultCost)})
	users.set(User{Name: "ci"})
	store := &memTokens{}
	tok, h, _ := NewToken()
	store.add(TokenRecord{ID: "t", Username: "ci", Hash: h})
	ba, _ := NewBasic(users, BasicOptions{})
	tv, _ := NewTokenVerifier(store, users, nil)
	jv, _ := NewJWTVerifier(JWTOptions{}, StaticKeys{must(ParsePublicKeyPEM(k.ecPEM, "ES256", "k"))})
	a, _ := New(Config{Basic: ba, JWT: jv, Tokens: tv})
	jwtTok := sign(b, jwt.SigningMethodES256, k.ec, "k", jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	for _, tc := range []struct{ name, hdr string }{
		{"basic-warm", basicHdr("alice", "alice-pw")},
		{"token", "Bearer " + tok},
		{"jwt-ES256", "Bearer " + jwtTok},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", tc.hdr)
			if _, err := a.Authenticate(context.Background(), r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.Authenticate(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
