package maint

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
)

// UploadGCS copies the local file src to the object named by uri
// (gs://bucket/path/name) and reads the object back to check that its
// SHA-256 matches the file's. The object appears only once the upload is
// complete (GCS uploads are atomic). endpoint, when set, points the client
// at an emulator; STORAGE_EMULATOR_HOST and Application Default
// Credentials work as for the artifact store.
func UploadGCS(ctx context.Context, uri, src, endpoint string) (int64, error) {
	bucket, name, err := gcs.ParseURI(uri)
	if err != nil {
		return 0, err
	}
	if name == "" {
		return 0, fmt.Errorf("%s names a bucket, not an object: use gs://bucket/path/backup.db", uri)
	}
	dir, base := path.Split(name)
	st, err := gcs.New(ctx, gcs.Options{Bucket: bucket, Prefix: path.Clean("/" + dir)[1:], Endpoint: endpoint})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, fmt.Errorf("hashing %s: %w", src, err)
	}
	want := h.Sum(nil)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := st.Put(ctx, base, f); err != nil {
		return 0, fmt.Errorf("uploading to %s: %w", uri, err)
	}
	obj, err := st.Open(ctx, base)
	if err != nil {
		return 0, fmt.Errorf("reading back %s: %w", uri, err)
	}
	defer obj.Close()
	h.Reset()
	got, err := io.Copy(h, obj)
	if err != nil {
		return 0, fmt.Errorf("reading back %s: %w", uri, err)
	}
	if got != n || string(h.Sum(nil)) != string(want) {
		return 0, fmt.Errorf("%s differs from the verified local copy after upload (%d bytes, want %d)", uri, got, n)
	}
	return n, nil
}
