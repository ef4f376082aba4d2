package e2e

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/authn"
	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/authstore/boltauth"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy/storecopytest"
)

// TestCopyStoreCLIPostgres moves a bbolt store to PostgreSQL and back
// with the built binary, and compares the result with the source field
// by field.
func TestCopyStoreCLIPostgres(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	// A password in the URI (the test server trusts local connections and
	// ignores it) must never be printed.
	const secret = "s3cret-pw"
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		u.User = url.UserPassword(u.User.Username(), secret)
		uri = u.String()
	}
	dir := t.TempDir()
	src, back := filepath.Join(dir, "src.bolt"), filepath.Join(dir, "back.bolt")
	s, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := storecopytest.Fill(t, s, 3000)
	ctx := context.Background()
	auth, err := boltauth.New(s.DB())
	if err != nil {
		t.Fatal(err)
	}
	hash, err := authn.HashPassword("dave-password-123", 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.CreateUser(ctx, "dave", hash, true); err != nil {
		t.Fatal(err)
	}
	tok, _, err := auth.CreateToken(ctx, "dave", "ci", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.SetGrant(ctx, authstore.Experiment, "1", "dave", "EDIT"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out, e, code := runCaddy(t, dir, "mlflow", "copy-store", "--from", src, "--to", uri)
	if code != 0 || strings.Contains(out, "MISMATCH") {
		t.Fatalf("bbolt → PostgreSQL: exit %d\n%s\n%s", code, out, e)
	}
	if strings.Contains(e+out, secret) || !strings.Contains(e, "xxxxx@") {
		t.Fatalf("the password is not redacted:\n%s", e)
	}
	// The database now holds records: refused without --force.
	if _, e, code := runCaddy(t, dir, "mlflow", "copy-store", "--from", src, "--to", uri); code == 0 || !strings.Contains(e, "already holds records") {
		t.Fatalf("copy into a non-empty database: exit %d\n%s", code, e)
	}
	if out, e, code := runCaddy(t, dir, "mlflow", "copy-store", "--from", uri, "--to", back); code != 0 {
		t.Fatalf("PostgreSQL → bbolt: exit %d\n%s\n%s", code, out, e)
	}
	a, err := boltstore.Open(src, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := boltstore.Open(back, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d := storecopytest.Diff(storecopytest.Dump(t, a, f), storecopytest.Dump(t, b, f)); len(d) > 0 {
		t.Fatalf("the round trip differs:\n%s", strings.Join(d, "\n"))
	}
	// The gateway's state made the round trip: the same user (hash, id,
	// admin), the same token, the same grant.
	backAuth, err := boltauth.New(b.DB())
	if err != nil {
		t.Fatal(err)
	}
	u, err := backAuth.GetUser(ctx, "dave")
	if err != nil || string(u.PasswordHash) != string(hash) || !u.IsAdmin {
		t.Fatalf("user after the round trip: %+v, %v", u, err)
	}
	if rec, err := backAuth.LookupToken(ctx, authn.HashToken(tok)); err != nil || rec.Username != "dave" {
		t.Fatalf("token after the round trip: %+v, %v", rec, err)
	}
	if level, ok, err := backAuth.Permission(ctx, authstore.Experiment, "1", "dave"); err != nil || !ok || level != "EDIT" {
		t.Fatalf("grant after the round trip: %q %v %v", level, ok, err)
	}
}
