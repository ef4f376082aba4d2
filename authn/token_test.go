package authn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, h, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 {
			t.Fatalf("bad token shape %q", tok)
		}
		if h != HashToken(tok) {
			t.Fatal("hash mismatch")
		}
		if !IsToken(tok) || IsJWT(tok) {
			t.Fatalf("shape detection wrong for %q", tok)
		}
		if seen[tok] {
			t.Fatal("duplicate token")
		}
		seen[tok] = true
	}
}

func TestShapes(t *testing.T) {
	jwtLike := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	cases := []struct {
		s            string
		isJWT, isTok bool
	}{
		{jwtLike, true, false},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", true, false}, // alg none shape: routed to JWT and rejected there
		{"a.b", false, false},
		{"a.b.c.d", false, false},
		{".b.c", false, false},
		{"a..c", false, false},
		{"a+b.c.d", false, false},
		{"mlft_" + strings.Repeat("A", 43), false, true},
		{"mlft_" + strings.Repeat("A", 42), false, false},
		{"mlft_" + strings.Repeat("A", 42) + "=", false, false},
		{"mlft_" + strings.Repeat("A", 20) + "." + strings.Repeat("A", 10) + ".AA", false, false},
		{"xxxx_" + strings.Repeat("A", 43), false, false},
		{"", false, false},
	}
	for _, tc := range cases {
		if IsJWT(tc.s) != tc.isJWT || IsToken(tc.s) != tc.isTok {
			t.Errorf("%q: IsJWT=%v IsToken=%v", tc.s, IsJWT(tc.s), IsToken(tc.s))
		}
	}
}

func TestTokenVerifier(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	users := &memUsers{}
	users.set(User{Name: "ci"})
	users.set(User{Name: "off", Disabled: true})
	store := &memTokens{}
	mk := func(id, user string, exp time.Time, revoked bool) string {
		tok, h, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		store.add(TokenRecord{ID: id, Username: user, Hash: h, ExpiresAt: exp, Revoked: revoked})
		return tok
	}
	good := mk("t1", "ci", time.Time{}, false)
	goodExp := mk("t2", "ci", clk.Now().Add(time.Hour), false)
	expired := mk("t3", "ci", clk.Now().Add(-time.Second), false)
	revoked := mk("t4", "ci", time.Time{}, true)
	disabled := mk("t5", "off", time.Time{}, false)
	ghost := mk("t6", "deleted-user", time.Time{}, false)
	nouser := mk("t7", "", time.Time{}, false)
	unknown, _, _ := NewToken()

	v, err := NewTokenVerifier(store, users, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{good, goodExp} {
		p, err := v.Verify(ctx, tok)
		if err != nil || p.Username != "ci" || p.Method != MethodToken || p.TokenID == "" {
			t.Fatalf("%+v %v", p, err)
		}
	}
	for name, tok := range map[string]string{
		"expired": expired, "revoked": revoked, "unknown": unknown, "disabled user": disabled,
		"deleted user": ghost, "no user": nouser, "malformed": "mlft_short", "jwt shape": "a.b.c",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(ctx, tok)
			wantKind(t, err, ErrInvalidCredentials)
			if strings.Contains(err.Error(), tok) {
				t.Fatalf("error leaks token: %v", err)
			}
		})
	}
	// Expiry boundary: valid just before, invalid at ExpiresAt.
	clk.Add(time.Hour)
	if _, err := v.Verify(ctx, goodExp); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("at expiry: %v", err)
	}

	// A store that matches loosely is caught by the constant-time re-check.
	loose := &memTokens{loose: true}
	_, h, _ := NewToken()
	loose.add(TokenRecord{ID: "x", Username: "ci", Hash: h})
	lv, _ := NewTokenVerifier(loose, nil, nil)
	other, _, _ := NewToken()
	if _, err := lv.Verify(ctx, other); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("loose store: %v", err)
	}

	// Without a UserSource the user is not checked.
	nv, _ := NewTokenVerifier(store, nil, nil)
	if _, err := nv.Verify(ctx, ghost); err != nil {
		t.Errorf("no user source: %v", err)
	}

	// Store failures are not credential errors.
	store.err = errors.New("bolt: timeout")
	if _, err := v.Verify(ctx, good); err == nil || errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("store failure: %v", err)
	}
	store.err = nil
	users.err = errors.New("bolt: timeout")
	if _, err := v.Verify(ctx, good); err == nil || errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("user store failure: %v", err)
	}
	if _, err := NewTokenVerifier(nil, nil, nil); err == nil {
		t.Error("nil TokenSource accepted")
	}
}
