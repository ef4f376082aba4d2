// Package authstoretest is the shared test suite of authstore.Store
// implementations: every backend runs the same tests (as
// tracking/artifact/artifacttest does for artifact stores).
package authstoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

// Opener returns two stores on one fresh, empty database: for bbolt two
// Stores on one file, for PostgreSQL two Stores on two pools (two
// replicas). Most tests use only the first.
type Opener func(t *testing.T) (a, b authstore.Store)

// Options describe the backend.
type Options struct {
	// ProcessThrottle: the backend keeps the sign-in throttle per Store
	// (one process owns the database), so two Stores do not share it.
	ProcessThrottle bool
}

// Run runs the whole suite.
func Run(t *testing.T, open Opener, opts Options) {
	tests := []struct {
		name string
		fn   func(*testing.T, authstore.Store, authstore.Store)
	}{
		{"UsersTokensGrants", testUsersTokensGrants},
		{"Users", testUsers},
		{"Tokens", testTokens},
		{"Grants", testGrants},
		{"Sessions", testSessions},
		{"Import", testImport},
		{"NotUTF8", testNotUTF8},
		{"Throttle", testThrottle},
		{"ConcurrentCreateUser", testConcurrentCreateUser},
		{"ReplicasSeeChangesAtOnce", testReplicasSeeChanges},
		{"SharedThrottleState", testSharedThrottle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "SharedThrottleState" && opts.ProcessThrottle {
				t.Skip("the throttle is per process for this backend")
			}
			a, b := open(t)
			tc.fn(t, a, b)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testUsersTokensGrants(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, "bob", []byte("$2a$hash"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "bob", nil, false); !errors.Is(err, authstore.ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	if _, err := s.LookupUser(ctx, "nobody"); !errors.Is(err, authn.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	must(t, s.EnsureAdmin(ctx, "root", []byte("$2a$root")))
	if u, _ := s.LookupUser(ctx, "root"); !u.Admin {
		t.Fatal("bootstrap admin is not admin")
	}

	tok, rec, err := s.CreateToken(ctx, "bob", "ci", time.Hour)
	must(t, err)
	got, err := s.LookupToken(ctx, authn.HashToken(tok))
	if err != nil || got.Username != "bob" || got.ID != rec.ID || got.Revoked {
		t.Fatalf("LookupToken = %+v, %v", got, err)
	}
	if err := s.RevokeToken(ctx, "carol", rec.ID); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("revoking someone else's token: %v", err)
	}
	must(t, s.RevokeToken(ctx, "bob", rec.ID))
	if got, _ := s.LookupToken(ctx, authn.HashToken(tok)); !got.Revoked {
		t.Fatal("token not revoked")
	}
	if _, _, err := s.CreateToken(ctx, "nobody", "", 0); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("token for unknown user: %v", err)
	}

	must(t, s.CreateGrant(ctx, authstore.Experiment, "1", "bob", "EDIT"))
	if err := s.CreateGrant(ctx, authstore.Experiment, "1", "bob", "READ"); !errors.Is(err, authstore.ErrExists) {
		t.Fatalf("duplicate grant: %v", err)
	}
	if err := s.CreateGrant(ctx, authstore.Experiment, "1", "nobody", "READ"); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("grant to unknown user: %v", err)
	}
	if l, ok, _ := s.Permission(ctx, authstore.Experiment, "1", "bob"); !ok || l != "EDIT" {
		t.Fatalf("Permission = %q %v", l, ok)
	}
	// "1" and "10" must not collide.
	if _, ok, _ := s.Permission(ctx, authstore.Experiment, "10", "bob"); ok {
		t.Fatal("grant leaked to another experiment")
	}
	must(t, s.CreateGrant(ctx, authstore.RegisteredModel, "m", "bob", "MANAGE"))
	must(t, s.RenameResource(ctx, authstore.RegisteredModel, "m", "m2"))
	if _, ok, _ := s.Permission(ctx, authstore.RegisteredModel, "m2", "bob"); !ok {
		t.Fatal("grant did not follow the rename")
	}
	must(t, s.DeleteUser(ctx, "bob"))
	if _, ok, _ := s.Permission(ctx, authstore.Experiment, "1", "bob"); ok {
		t.Fatal("grant survived its user")
	}
	if _, err := s.LookupToken(ctx, authn.HashToken(tok)); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatal("token survived its user")
	}
}

func testUsers(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	for _, bad := range []string{"", "a\x00b", "tab\there", string(make([]byte, authstore.MaxUsernameLength+1))} {
		if _, err := s.CreateUser(ctx, bad, nil, false); err == nil || errors.Is(err, authstore.ErrExists) {
			t.Errorf("CreateUser(%q) = %v, want a validation error", bad, err)
		}
	}
	before := time.Now().Add(-time.Second)
	u1, err := s.CreateUser(ctx, "zed", []byte("$2a$z"), true)
	must(t, err)
	u2, err := s.CreateUser(ctx, "amy", nil, false)
	must(t, err)
	if u1.ID == 0 || u2.ID == 0 || u1.ID == u2.ID {
		t.Fatalf("ids %d %d", u1.ID, u2.ID)
	}
	if u1.Created.Before(before) || u1.Created.After(time.Now().Add(time.Second)) {
		t.Fatalf("created %s", u1.Created)
	}
	got, err := s.GetUser(ctx, "zed")
	must(t, err)
	if got.ID != u1.ID || string(got.PasswordHash) != "$2a$z" || !got.IsAdmin || !got.Created.Equal(u1.Created) {
		t.Fatalf("GetUser = %+v, created %+v", got, u1)
	}
	must(t, s.UpdatePassword(ctx, "amy", []byte("$2a$new")))
	must(t, s.SetAdmin(ctx, "zed", false))
	if u, _ := s.LookupUser(ctx, "amy"); string(u.PasswordHash) != "$2a$new" {
		t.Fatalf("password not updated: %q", u.PasswordHash)
	}
	if u, _ := s.GetUser(ctx, "zed"); u.IsAdmin {
		t.Fatal("admin flag not cleared")
	}
	if err := s.UpdatePassword(ctx, "nobody", nil); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("UpdatePassword(unknown) = %v", err)
	}
	if err := s.SetAdmin(ctx, "nobody", true); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("SetAdmin(unknown) = %v", err)
	}
	if err := s.DeleteUser(ctx, "nobody"); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("DeleteUser(unknown) = %v", err)
	}
	// EnsureAdmin is declarative: it promotes and resets the hash.
	must(t, s.EnsureAdmin(ctx, "amy", []byte("$2a$boot")))
	must(t, s.EnsureAdmin(ctx, "amy", []byte("$2a$boot")))
	if u, _ := s.GetUser(ctx, "amy"); !u.IsAdmin || string(u.PasswordHash) != "$2a$boot" || u.ID != u2.ID {
		t.Fatalf("EnsureAdmin on an existing user: %+v", u)
	}
	us, err := s.ListUsers(ctx)
	must(t, err)
	if len(us) != 2 || us[0].Username != "amy" || us[1].Username != "zed" {
		t.Fatalf("ListUsers = %v", names(us))
	}
	must(t, s.DeleteUser(ctx, "amy"))
	u3, err := s.CreateUser(ctx, "amy", nil, false)
	must(t, err)
	if u3.ID == u2.ID {
		t.Fatal("a re-created user reused the old id")
	}
}

func names(us []*authstore.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func testTokens(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	_, err := s.CreateUser(ctx, "bob", nil, false)
	must(t, err)
	_, err = s.CreateUser(ctx, "eve", nil, false)
	must(t, err)
	if _, _, err := s.CreateToken(ctx, "bob", "x", -time.Second); err == nil {
		t.Fatal("negative lifetime accepted")
	}
	if _, _, err := s.CreateToken(ctx, "bob", string(make([]byte, authstore.MaxTokenNameLength+1)), 0); err == nil {
		t.Fatal("long token name accepted")
	}
	t1, r1, err := s.CreateToken(ctx, "bob", "first", 0)
	must(t, err)
	time.Sleep(2 * time.Millisecond)
	t2, r2, err := s.CreateToken(ctx, "bob", "second", time.Hour)
	must(t, err)
	time.Sleep(2 * time.Millisecond)
	_, r3, err := s.CreateToken(ctx, "eve", "", 0)
	must(t, err)
	if t1 == t2 || !authn.IsToken(t1) || r1.ID == r2.ID {
		t.Fatal("tokens not distinct or malformed")
	}
	got, err := s.LookupToken(ctx, authn.HashToken(t2))
	must(t, err)
	if !got.ExpiresAt.Equal(r2.ExpiresAt) || got.ExpiresAt.IsZero() || got.Hash != authn.HashToken(t2) {
		t.Fatalf("LookupToken = %+v, want expiry %s", got, r2.ExpiresAt)
	}
	if got, _ := s.LookupToken(ctx, authn.HashToken(t1)); !got.ExpiresAt.IsZero() {
		t.Fatalf("token without expiry expires at %s", got.ExpiresAt)
	}
	if _, err := s.LookupToken(ctx, [32]byte{1}); !errors.Is(err, authn.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	ts, err := s.ListTokens(ctx, "bob")
	must(t, err)
	if len(ts) != 2 || ts[0].ID != r2.ID || ts[1].ID != r1.ID || ts[0].Name != "second" {
		t.Fatalf("ListTokens(bob) = %+v", ts)
	}
	all, err := s.ListTokens(ctx, "")
	must(t, err)
	if len(all) != 3 || all[0].ID != r3.ID {
		t.Fatalf("ListTokens() = %d tokens", len(all))
	}
	// An admin revokes any token by id alone.
	must(t, s.RevokeToken(ctx, "", r3.ID))
	if err := s.RevokeToken(ctx, "", "no-such-id"); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("revoking an unknown id: %v", err)
	}
	all, _ = s.ListTokens(ctx, "eve")
	if len(all) != 1 || !all[0].Revoked {
		t.Fatalf("revoked token listed as %+v", all)
	}
}

func testGrants(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	for _, u := range []string{"bob", "eve"} {
		_, err := s.CreateUser(ctx, u, nil, false)
		must(t, err)
	}
	if err := s.CreateGrant(ctx, authstore.Experiment, "", "bob", "READ"); err == nil {
		t.Fatal("empty resource accepted")
	}
	if err := s.SetGrant(ctx, authstore.Experiment, "a\x00b", "bob", "READ"); err == nil {
		t.Fatal("resource with NUL accepted")
	}
	must(t, s.SetGrant(ctx, authstore.Experiment, "2", "bob", "READ"))
	must(t, s.SetGrant(ctx, authstore.Experiment, "2", "bob", "MANAGE")) // replaces
	must(t, s.CreateGrant(ctx, authstore.Experiment, "10", "bob", "EDIT"))
	must(t, s.CreateGrant(ctx, authstore.Experiment, "2", "eve", "READ"))
	must(t, s.CreateGrant(ctx, authstore.RegisteredModel, "2", "bob", "USE"))
	if l, _, _ := s.Permission(ctx, authstore.Experiment, "2", "bob"); l != "MANAGE" {
		t.Fatalf("SetGrant did not replace: %q", l)
	}
	// Kinds are apart.
	if l, _, _ := s.Permission(ctx, authstore.RegisteredModel, "2", "bob"); l != "USE" {
		t.Fatalf("model grant = %q", l)
	}
	gs, err := s.UserGrants(ctx, authstore.Experiment, "bob")
	must(t, err)
	if fmt.Sprint(gs) != "[{10 bob EDIT} {2 bob MANAGE}]" {
		t.Fatalf("UserGrants = %v", gs)
	}
	must(t, s.UpdateGrant(ctx, authstore.Experiment, "10", "bob", "READ"))
	if err := s.UpdateGrant(ctx, authstore.Experiment, "11", "bob", "READ"); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("UpdateGrant(absent) = %v", err)
	}
	must(t, s.DeleteGrant(ctx, authstore.Experiment, "10", "bob"))
	if err := s.DeleteGrant(ctx, authstore.Experiment, "10", "bob"); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("DeleteGrant(absent) = %v", err)
	}
	// A rename onto a name the user already holds a grant on keeps the
	// moved grant; other users' grants on the new name stay.
	must(t, s.CreateGrant(ctx, authstore.RegisteredModel, "old", "bob", "MANAGE"))
	must(t, s.CreateGrant(ctx, authstore.RegisteredModel, "new", "bob", "READ"))
	must(t, s.CreateGrant(ctx, authstore.RegisteredModel, "new", "eve", "EDIT"))
	must(t, s.RenameResource(ctx, authstore.RegisteredModel, "old", "new"))
	if l, _, _ := s.Permission(ctx, authstore.RegisteredModel, "new", "bob"); l != "MANAGE" {
		t.Fatalf("after rename bob has %q on new", l)
	}
	if l, _, _ := s.Permission(ctx, authstore.RegisteredModel, "new", "eve"); l != "EDIT" {
		t.Fatalf("after rename eve has %q on new", l)
	}
	if _, ok, _ := s.Permission(ctx, authstore.RegisteredModel, "old", "bob"); ok {
		t.Fatal("grant stayed on the old name")
	}
	must(t, s.RenameResource(ctx, authstore.RegisteredModel, "absent", "other"))
}

func testSessions(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	_, err := s.CreateUser(ctx, "bob", []byte("$2a$b"), false)
	must(t, err)
	_, err = s.CreateUser(ctx, "eve", []byte("$2a$e"), false)
	must(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := func(id, user string, created time.Time) authn.SessionRecord {
		return authn.SessionRecord{ID: id, Username: user, Hash: authn.HashToken(id), Created: created, LastSeen: created,
			PasswordDigest: authn.PasswordDigest([]byte("$2a$" + user))}
	}
	if err := s.CreateSession(ctx, rec("x", "nobody", now)); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("session of an unknown user: %v", err)
	}
	old := now.Add(-48 * time.Hour)
	for _, r := range []authn.SessionRecord{rec("s1", "bob", now), rec("s2", "bob", now), rec("s3", "eve", now), rec("s4", "eve", old)} {
		must(t, s.CreateSession(ctx, r))
	}
	got, err := s.LookupSession(ctx, authn.HashToken("s1"))
	must(t, err)
	if want := rec("s1", "bob", now); got.ID != want.ID || got.Username != "bob" || got.Hash != want.Hash ||
		!got.Created.Equal(now) || !got.LastSeen.Equal(now) || got.PasswordDigest != want.PasswordDigest {
		t.Fatalf("LookupSession = %+v", got)
	}
	if _, err := s.LookupSession(ctx, authn.HashToken("none")); !errors.Is(err, authn.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	later := now.Add(time.Minute)
	must(t, s.TouchSession(ctx, authn.HashToken("s1"), later))
	if err := s.TouchSession(ctx, authn.HashToken("none"), later); !errors.Is(err, authn.ErrNotFound) {
		t.Fatalf("touching an unknown session: %v", err)
	}
	digest := authn.PasswordDigest([]byte("$2a$new"))
	must(t, s.RebindSession(ctx, authn.HashToken("s1"), digest))
	got, _ = s.LookupSession(ctx, authn.HashToken("s1"))
	if !got.LastSeen.Equal(later) || got.PasswordDigest != digest {
		t.Fatalf("after touch and rebind: %+v", got)
	}
	if n, _ := s.CountSessions(ctx, "bob"); n != 2 {
		t.Fatalf("CountSessions(bob) = %d", n)
	}
	if n, _ := s.CountSessions(ctx, ""); n != 4 {
		t.Fatalf("CountSessions() = %d", n)
	}
	all, err := s.ListSessions(ctx)
	must(t, err)
	if len(all) != 4 {
		t.Fatalf("ListSessions = %d", len(all))
	}
	n, err := s.DeleteExpiredSessions(ctx, now.Add(-24*time.Hour), now.Add(-24*time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("DeleteExpiredSessions removed %d, want 1", n)
	}
	must(t, s.DeleteSession(ctx, authn.HashToken("s2")))
	must(t, s.DeleteSession(ctx, authn.HashToken("s2"))) // absent: no error
	must(t, s.DeleteUser(ctx, "eve"))
	if n, _ := s.CountSessions(ctx, ""); n != 1 {
		t.Fatalf("after logout and user deletion %d sessions, want 1", n)
	}
}

// testImport: records copied from another store keep their ids, hashes
// and times; later users get fresh ids.
func testImport(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	created := time.Date(2024, 3, 1, 12, 0, 0, 123456000, time.UTC)
	u := &authstore.User{ID: 41, Username: "imp", PasswordHash: []byte("$2a$imp"), IsAdmin: true, Created: created}
	must(t, s.ImportUser(ctx, u))
	if err := s.ImportUser(ctx, u); !errors.Is(err, authstore.ErrExists) {
		t.Fatalf("importing twice: %v", err)
	}
	got, err := s.GetUser(ctx, "imp")
	must(t, err)
	if got.ID != 41 || !got.Created.Equal(created) || !got.IsAdmin || string(got.PasswordHash) != "$2a$imp" {
		t.Fatalf("imported user = %+v", got)
	}
	next, err := s.CreateUser(ctx, "next", nil, false)
	must(t, err)
	if next.ID <= 41 {
		t.Fatalf("user created after an import got id %d", next.ID)
	}
	tok := &authstore.Token{ID: "abcd", Username: "imp", Name: "copied", Hash: authn.HashToken("mlft_x"),
		Created: created, ExpiresAt: created.Add(time.Hour), Revoked: true}
	must(t, s.ImportToken(ctx, tok))
	if err := s.ImportToken(ctx, tok); !errors.Is(err, authstore.ErrExists) {
		t.Fatalf("importing a token twice: %v", err)
	}
	bad := *tok
	bad.Username, bad.Hash, bad.ID = "nobody", authn.HashToken("other"), "efgh"
	if err := s.ImportToken(ctx, &bad); !errors.Is(err, authstore.ErrNotFound) {
		t.Fatalf("token of an unknown user: %v", err)
	}
	ts, err := s.ListTokens(ctx, "imp")
	must(t, err)
	if len(ts) != 1 || *ts[0] != *tok {
		t.Fatalf("imported token = %+v, want %+v", ts, tok)
	}
}

// testNotUTF8: names no store can hold are refused on creation and simply
// not found on lookup (never a lookup failure, which authn would report
// as a server error).
func testNotUTF8(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	bad := "caf\xe9"
	if _, err := s.CreateUser(ctx, bad, nil, false); err == nil {
		t.Fatal("non-UTF-8 username accepted")
	}
	if _, err := s.LookupUser(ctx, bad); !errors.Is(err, authn.ErrNotFound) {
		t.Fatalf("LookupUser(non-UTF-8) = %v", err)
	}
	if _, ok, err := s.Permission(ctx, authstore.Experiment, bad, bad); ok || err != nil {
		t.Fatalf("Permission(non-UTF-8) = %v %v", ok, err)
	}
}

var (
	userLimit = func(k string) authstore.Limit {
		return authstore.Limit{Key: "u\x00" + k + "\xff", Burst: 5, Refill: 30 * time.Second}
	}
	ipLimit = authstore.Limit{Key: "i\x00192.0.2.1", Burst: 30, Refill: 2 * time.Second}
)

// testThrottle: attempts in flight count (each takes its token before the
// slow check), a refused attempt changes nothing, Give and Forget restore.
func testThrottle(t *testing.T, s, _ authstore.Store) {
	ctx := context.Background()
	th := s.Throttle()
	now := time.Unix(1_700_000_000, 0)
	u := userLimit("root")
	warmUp(t, th, now)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := th.Take(ctx, now, u, ipLimit)
			if err != nil {
				t.Error(err)
			}
			if ok {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := admitted.Load(); n != 5 {
		t.Fatalf("%d concurrent attempts admitted, want 5", n)
	}
	if ok, _ := th.Take(ctx, now, u, ipLimit); ok {
		t.Fatal("admitted after the burst")
	}
	// The refused attempts took nothing from the address.
	for i := range 25 {
		if ok, _ := th.Take(ctx, now, userLimit(fmt.Sprint("other", i)), ipLimit); !ok {
			t.Fatalf("address attempt %d refused: refused attempts spent its tokens", i)
		}
	}
	if ok, _ := th.Take(ctx, now, userLimit("yet-another"), ipLimit); ok {
		t.Fatal("address admitted past its burst")
	}
	// Refill: one token per Refill.
	now = now.Add(30 * time.Second)
	if ok, _ := th.Take(ctx, now, u); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := th.Take(ctx, now, u); ok {
		t.Fatal("more than one token refilled")
	}
	must(t, th.Give(ctx, now, u))
	if ok, _ := th.Take(ctx, now, u); !ok {
		t.Fatal("given-back token refused")
	}
	must(t, th.Forget(ctx, u.Key))
	for i := range 5 {
		if ok, _ := th.Take(ctx, now, u); !ok {
			t.Fatalf("attempt %d after Forget refused", i+1)
		}
	}
	// Give never goes past the burst.
	v := userLimit("full")
	for range 3 {
		must(t, th.Give(ctx, now, v))
	}
	n := 0
	for {
		ok, _ := th.Take(ctx, now, v)
		if !ok {
			break
		}
		n++
	}
	if n != 5 {
		t.Fatalf("bucket holds %d after Give on a full one, want 5", n)
	}
}

// warmUp runs concurrent calls on unrelated buckets first, so that a
// store with a connection pool has its connections open and the calls
// that follow really overlap.
func warmUp(t *testing.T, th authstore.Throttle, now time.Time) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := th.Take(context.Background(), now, authstore.Limit{Key: fmt.Sprint("warm-up ", i), Burst: 1, Refill: time.Second}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// testConcurrentCreateUser: two stores (replicas) creating one name at
// once: exactly one wins, the others get ErrExists.
func testConcurrentCreateUser(t *testing.T, a, b authstore.Store) {
	ctx := context.Background()
	for round := range 5 {
		name := fmt.Sprint("race", round)
		var wins, exists atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.CreateUser(ctx, name, nil, false)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, authstore.ErrExists):
					exists.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || exists.Load() != 7 {
			t.Fatalf("%s: %d creations won, %d got ErrExists", name, wins.Load(), exists.Load())
		}
	}
}

// testReplicasSeeChanges: a change made through one store is seen by the
// authenticators of the other on the very next request: a revoked token,
// a deleted user, a changed password (through Basic's verified-credential
// cache), an ended session, a removed grant.
func testReplicasSeeChanges(t *testing.T, a, b authstore.Store) {
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-1"), bcrypt.MinCost)
	must(t, err)
	_, err = a.CreateUser(ctx, "bob", hash, false)
	must(t, err)
	tok, rec, err := a.CreateToken(ctx, "bob", "", 0)
	must(t, err)
	tv, err := authn.NewTokenVerifier(b, b, nil)
	must(t, err)
	basic, err := authn.NewBasic(b, authn.BasicOptions{CacheTTL: time.Hour})
	must(t, err)
	sess, err := authn.NewSessions(b, b, authn.SessionOptions{})
	must(t, err)
	sessA, err := authn.NewSessions(a, a, authn.SessionOptions{})
	must(t, err)

	if _, err := tv.Verify(ctx, tok); err != nil {
		t.Fatalf("token refused on the other replica: %v", err)
	}
	if _, err := basic.Authenticate(ctx, "bob", "pw-1"); err != nil { // now cached on b
		t.Fatal(err)
	}
	cookie, _, err := sessA.Start(ctx, "bob")
	must(t, err)
	if _, err := sess.Verify(ctx, cookie); err != nil {
		t.Fatalf("session refused on the other replica: %v", err)
	}
	must(t, a.SetGrant(ctx, authstore.Experiment, "7", "bob", "EDIT"))
	if _, ok, _ := b.Permission(ctx, authstore.Experiment, "7", "bob"); !ok {
		t.Fatal("grant not seen on the other replica")
	}

	must(t, a.RevokeToken(ctx, "bob", rec.ID))
	if _, err := tv.Verify(ctx, tok); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("token revoked on a still accepted on b: %v", err)
	}
	must(t, a.DeleteGrant(ctx, authstore.Experiment, "7", "bob"))
	if _, ok, _ := b.Permission(ctx, authstore.Experiment, "7", "bob"); ok {
		t.Fatal("grant removed on a still seen on b")
	}
	hash2, err := bcrypt.GenerateFromPassword([]byte("pw-2"), bcrypt.MinCost)
	must(t, err)
	must(t, a.UpdatePassword(ctx, "bob", hash2))
	if _, err := basic.Authenticate(ctx, "bob", "pw-1"); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("old password still accepted on b after a change on a: %v", err)
	}
	if _, err := sess.Verify(ctx, cookie); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("session survived a password change on the other replica: %v", err)
	}
	if _, err := basic.Authenticate(ctx, "bob", "pw-2"); err != nil {
		t.Fatal(err)
	}
	cookie, _, err = sessA.Start(ctx, "bob")
	must(t, err)
	must(t, sessA.End(ctx, cookie))
	if _, err := sess.Verify(ctx, cookie); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("signed-out session accepted on b: %v", err)
	}
	tok2, _, err := a.CreateToken(ctx, "bob", "", 0)
	must(t, err)
	must(t, a.DeleteUser(ctx, "bob"))
	if _, err := basic.Authenticate(ctx, "bob", "pw-2"); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("deleted user still accepted on b: %v", err)
	}
	if _, err := tv.Verify(ctx, tok2); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("token of a deleted user accepted on b: %v", err)
	}
}

// testSharedThrottle: failures counted through one store lock the
// username out through the other.
func testSharedThrottle(t *testing.T, a, b authstore.Store) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	u := userLimit("shared")
	warmUp(t, a.Throttle(), now)
	warmUp(t, b.Throttle(), now)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 30 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if ok, err := s.Throttle().Take(ctx, now, u); err != nil {
				t.Error(err)
			} else if ok {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := admitted.Load(); n != 5 {
		t.Fatalf("%d attempts admitted through two stores at once, want 5", n)
	}
	must(t, a.Throttle().Forget(ctx, u.Key))
	for i := range 5 {
		s := a
		if i%2 == 1 {
			s = b
		}
		if ok, err := s.Throttle().Take(ctx, now, u); !ok || err != nil {
			t.Fatalf("attempt %d: %v %v", i+1, ok, err)
		}
	}
	if ok, _ := b.Throttle().Take(ctx, now, u); ok {
		t.Fatal("the other store admitted a locked-out username")
	}
	if ok, _ := a.Throttle().Take(ctx, now, u); ok {
		t.Fatal("locked-out username admitted")
	}
}
