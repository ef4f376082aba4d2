package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// TestPGMultipartKeySharedByReplicas: two "replicas" (separate pools,
// separate artifact handlers over one shared directory) take the
// multipart signing key from the database: an upload created on one
// accepts its parts on the other and completes there. With per-process
// keys the same exchange is refused, so the test can fail.
func TestPGMultipartKeySharedByReplicas(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	dir := t.TempDir()
	replica := func(key []byte) string {
		store, err := artifact.NewLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		h := artifact.NewHandler(store, artifact.HandlerOptions{SigningKey: key})
		const prefix = "/api/2.0/mlflow-artifacts"
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeArtifacts(w, r, strings.TrimPrefix(r.URL.EscapedPath(), prefix))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	key := func() []byte {
		pool, err := pgdb.Open(ctx, uri, pgdb.Options{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		k, err := pgMultipartKey(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b := replica(key()), replica(key())
	if err := crossReplicaUpload(t, dir, a, b); err != nil {
		t.Fatalf("upload across replicas with the shared key: %v", err)
	}
	// Per-process keys (nil): the other replica refuses the part.
	c, d := replica(nil), replica([]byte(strings.Repeat("k", 48)))
	var se *artifacttest.StatusError
	if err := crossReplicaUpload(t, dir, c, d); !errors.As(err, &se) || se.Code/100 != 4 {
		t.Fatalf("parts signed with another key: %v, want a 4xx refusal", err)
	}
}

// crossReplicaUpload creates a two-part upload on a, PUTs both parts to b
// and completes on b, then checks the file.
func crossReplicaUpload(t *testing.T, dir, a, b string) error {
	t.Helper()
	c := http.DefaultClient
	dirPath := "1/run/artifacts"
	cr, err := artifacttest.Create(c, a, dirPath, "f.bin", 2)
	if err != nil {
		return err
	}
	bu, _ := url.Parse(b)
	var parts []artifacttest.PartResult
	data := []string{strings.Repeat("x", 5<<20), "tail"}
	for i, cred := range cr.Credentials {
		u, err := url.Parse(cred.URL)
		if err != nil {
			return err
		}
		u.Host = bu.Host
		cred.URL = u.String()
		etag, err := artifacttest.PutPart(cred, []byte(data[i]))
		if err != nil {
			return err
		}
		parts = append(parts, artifacttest.PartResult{PartNumber: cred.PartNumber, ETag: etag, URL: cred.URL})
	}
	if err := artifacttest.Complete(c, b, dirPath, "f.bin", cr.UploadID, parts); err != nil {
		return err
	}
	got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(dirPath), "f.bin"))
	if err != nil || string(got) != data[0]+data[1] {
		t.Fatalf("completed file: %d bytes, %v", len(got), err)
	}
	return nil
}

// TestPGAuthStoreGlue: the caddymodule glue opens the PostgreSQL gateway
// store on a pool (migrating it) and the store works.
func TestPGAuthStoreGlue(t *testing.T) {
	uri := pgtest.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, uri, pgdb.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := pgAuthStore(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "alice", nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "alice", nil, false); !errors.Is(err, authstore.ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
}

// TestLookupFailureStatus: a gateway lookup that failed because the
// database is unreachable answers MLflow's retryable 503
// TEMPORARILY_UNAVAILABLE; any other failure stays a 500.
func TestLookupFailureStatus(t *testing.T) {
	ctx := context.Background()
	dead, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	_, unreachable := pgAuthStore(ctx, dead)
	if unreachable == nil {
		t.Fatal("opened a store on an unreachable database")
	}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{unreachable, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE"},
		{tracking.Errorf(tracking.TemporarilyUnavailable, "tracking database down"), http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE"},
		{errors.New("stored permission: bad level"), http.StatusInternalServerError, "INTERNAL_ERROR"},
	} {
		rec := httptest.NewRecorder()
		writeLookupFailure(rec, tc.err, "Internal server error; see the server log.")
		var body struct {
			ErrorCode string `json:"error_code"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body.ErrorCode != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, rec.Code, rec.Body, tc.status, tc.code)
		}
	}
}
