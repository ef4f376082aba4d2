package pgauth_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
)

func openBolt(t *testing.T) authstore.Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "a.bolt"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := boltauth.New(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot is everything a store holds, times at PostgreSQL's precision.
func snapshot(t *testing.T, s authstore.Store) string {
	t.Helper()
	ctx := context.Background()
	us := func(tm time.Time) time.Time { return tm.UTC().Truncate(time.Microsecond) }
	var out []string
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		out = append(out, fmt.Sprintf("user %d %q %q %v %s", u.ID, u.Username, u.PasswordHash, u.IsAdmin, us(u.Created)))
		for _, k := range []authstore.Kind{authstore.Experiment, authstore.RegisteredModel} {
			gs, err := s.UserGrants(ctx, k, u.Username)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("grants %s %v", k, gs))
		}
	}
	tokens, err := s.ListTokens(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tokens {
		exp := ""
		if !tk.ExpiresAt.IsZero() {
			exp = us(tk.ExpiresAt).String()
		}
		out = append(out, fmt.Sprintf("token %s %q %q %x %s %s %v", tk.ID, tk.Username, tk.Name, tk.Hash, us(tk.Created), exp, tk.Revoked))
	}
	sessions, err := s.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, se := range sessions {
		out = append(out, fmt.Sprintf("session %s %q %x %s %s %x", se.ID, se.Username, se.Hash, us(se.Created), us(se.LastSeen), se.PasswordDigest))
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// TestCopyBoltToPostgresAndBack: authstore.Copy moves every user, token,
// grant and session from bbolt to PostgreSQL and back unchanged, and what
// was copied still authenticates.
func TestCopyBoltToPostgresAndBack(t *testing.T) {
	ctx := context.Background()
	src := openBolt(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := src.CreateUser(ctx, fmt.Sprint("user", i), hash, i == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.DeleteUser(ctx, "user3"); err != nil { // ids with a gap
		t.Fatal(err)
	}
	tok, _, err := src.CreateToken(ctx, "user1", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, revoked, err := src.CreateToken(ctx, "user2", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.RevokeToken(ctx, "", revoked.ID); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		k      authstore.Kind
		res, u string
		level  string
	}{{authstore.Experiment, "1", "user1", "EDIT"}, {authstore.Experiment, "2", "user2", "READ"}, {authstore.RegisteredModel, "m", "user1", "MANAGE"}} {
		if err := src.CreateGrant(ctx, g.k, g.res, g.u, g.level); err != nil {
			t.Fatal(err)
		}
	}
	sessions, err := authn.NewSessions(src, src, authn.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cookie, _, err := sessions.Start(ctx, "user4")
	if err != nil {
		t.Fatal(err)
	}

	pg, _ := open(t)
	var calls int
	n, err := authstore.Copy(ctx, pg, src, func(authstore.Counts) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	want := authstore.Counts{Users: 4, Tokens: 2, Grants: 3, Sessions: 1}
	if n != want || calls != 4 {
		t.Fatalf("copied %+v with %d progress calls, want %+v and 4", n, calls, want)
	}
	if c, err := authstore.Count(ctx, pg); err != nil || c != want {
		t.Fatalf("Count(destination) = %+v, %v", c, err)
	}
	if a, b := snapshot(t, src), snapshot(t, pg); a != b {
		t.Fatalf("PostgreSQL copy differs:\n%s\n%s", a, b)
	}
	// What was copied still works.
	tv, _ := authn.NewTokenVerifier(pg, pg, nil)
	if _, err := tv.Verify(ctx, tok); err != nil {
		t.Fatalf("copied token: %v", err)
	}
	basic, _ := authn.NewBasic(pg, authn.BasicOptions{})
	if _, err := basic.Authenticate(ctx, "user2", "pw"); err != nil {
		t.Fatalf("copied password: %v", err)
	}
	pgSessions, _ := authn.NewSessions(pg, pg, authn.SessionOptions{})
	if _, err := pgSessions.Verify(ctx, cookie); err != nil {
		t.Fatalf("copied session: %v", err)
	}
	if u, err := pg.CreateUser(ctx, "later", nil, false); err != nil || u.ID <= 5 {
		t.Fatalf("user created after the copy: %+v, %v", u, err)
	}
	if err := pg.DeleteUser(ctx, "later"); err != nil {
		t.Fatal(err)
	}

	// A second copy into a non-empty destination fails, naming the user.
	if _, err := authstore.Copy(ctx, pg, src, nil); !errors.Is(err, authstore.ErrExists) {
		t.Fatalf("copy into a non-empty store: %v", err)
	}

	back := openBolt(t)
	if _, err := authstore.Copy(ctx, back, pg, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := snapshot(t, pg), snapshot(t, back); !reflect.DeepEqual(a, b) {
		t.Fatalf("bbolt copy of the PostgreSQL store differs:\n%s\n%s", a, b)
	}
}
