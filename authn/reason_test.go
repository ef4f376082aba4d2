package authn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// TestFailureReason classifies errors made by the real verifiers.
func TestFailureReason(t *testing.T) {
	ctx := context.Background()
	users := &memUsers{}
	users.set(User{Name: "alice", PasswordHash: mustHash(t, "s3cret-pw", bcrypt.MinCost)})
	users.set(User{Name: "off", PasswordHash: mustHash(t, "off-pw", bcrypt.MinCost), Disabled: true})
	b, _ := newTestBasic(t, users, BasicOptions{})

	clk := newClock()
	store := &memTokens{}
	mk := func(id string, exp time.Time, revoked bool) string {
		tok, h, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		store.add(TokenRecord{ID: id, Username: "alice", Hash: h, ExpiresAt: exp, Revoked: revoked})
		return tok
	}
	expired := mk("t1", clk.Now().Add(-time.Second), false)
	revoked := mk("t2", time.Time{}, true)
	unknown, _, _ := NewToken()
	tv, err := NewTokenVerifier(store, users, clk.Now)
	if err != nil {
		t.Fatal(err)
	}

	k := testKeys()
	hk := must(NewHMACKey(k.hmac, "HS256", ""))
	jv, err := NewJWTVerifier(JWTOptions{UsernameClaims: []string{"sub"}, Now: clk.Now}, StaticKeys{hk})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	expiredJWT := sign(t, jwt.SigningMethodHS256, k.hmac, "", jwt.MapClaims{"sub": "alice", "exp": now.Add(-time.Hour).Unix()})
	forgedJWT := sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-or-more!!"), "", jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()})

	errOf := func(_ *Principal, err error) error { return err }
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"lookup failure", errors.New("authn: lookup: disk on fire"), ""},
		{"no credentials", fmt.Errorf("%w: no Authorization header", ErrNoCredentials), ReasonMissingCredentials},
		{"wrong password", errOf(b.Authenticate(ctx, "alice", "nope")), ReasonBadPassword},
		{"unknown user", errOf(b.Authenticate(ctx, "mallory", "x")), ReasonUnknownUser},
		{"disabled user", errOf(b.Authenticate(ctx, "off", "off-pw")), ReasonUserDisabled},
		{"expired token", errOf(tv.Verify(ctx, expired)), ReasonTokenExpired},
		{"revoked token", errOf(tv.Verify(ctx, revoked)), ReasonTokenRevoked},
		{"unknown token", errOf(tv.Verify(ctx, unknown)), ReasonBadToken},
		{"expired JWT", errOf(jv.Verify(ctx, expiredJWT)), ReasonJWTExpired},
		{"forged JWT", errOf(jv.Verify(ctx, forgedJWT)), ReasonBadJWT},
		{"unsupported scheme", invalid("unsupported Authorization scheme"), ReasonBadCredentials},
		{"session expired", invalid("session: expired (idle)"), ReasonSessionExpired},
		{"session unknown", invalid("session: unknown or signed out"), ReasonBadSession},
		{"certificate", invalid("cert: client certificate not verified"), ReasonBadCertificate},
	}
	for _, tc := range cases {
		if got := FailureReason(tc.err); got != tc.want {
			t.Errorf("%s: FailureReason(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}
