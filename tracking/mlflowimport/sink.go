package mlflowimport

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
)

// ArtifactSink is where imported artifacts are written: the storage
// behind the destination server's mlflow-artifacts:/ root. Paths are
// slash-separated and relative to that root
// ("<experiment id>/<run id>/artifacts/model/MLmodel").
type ArtifactSink interface {
	// Location names the sink in messages.
	Location() string
	// Stat returns the size of the file at p and its MD5 when the sink
	// keeps one (nil otherwise); ok is false when there is none.
	Stat(ctx context.Context, p string) (size int64, md5 []byte, ok bool, err error)
	// Write stores r at p whole or not at all: a reader error, a context
	// end or a byte count other than f.Size leaves what was at p before.
	// It returns the bytes written.
	Write(ctx context.Context, p string, f ArtifactFile, r io.Reader) (int64, error)
}

// sinkHasher is a sink that can hash what it holds (a local directory,
// which keeps no MD5).
type sinkHasher interface {
	Sum(ctx context.Context, p string, h hash.Hash) ([]byte, error)
}

// OpenSink opens the sink behind an Options.ArtifactsTo: gs://bucket/prefix
// for a Google Cloud Storage bucket (endpoint, when set, is an emulator or
// private endpoint as the server's gcs_endpoint; otherwise
// STORAGE_EMULATOR_HOST or Application Default Credentials), anything
// else a local directory. The returned close releases it.
func OpenSink(ctx context.Context, to, endpoint string) (ArtifactSink, func() error, error) {
	if !strings.HasPrefix(to, "gs://") {
		return LocalSink(to), func() error { return nil }, nil
	}
	s, err := NewGCSSink(ctx, to, endpoint)
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

// LocalSink is a local directory.
type LocalSink string

var _ ArtifactSink = LocalSink("")

// Location implements ArtifactSink.
func (d LocalSink) Location() string { return string(d) }

func (d LocalSink) file(p string) (string, error) {
	rel := filepath.FromSlash(p)
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("artifact path %q leaves the artifact directory", p)
	}
	return filepath.Join(string(d), rel), nil
}

// Stat implements ArtifactSink; a local file has no MD5 kept, and
// anything but a regular file counts as absent (it is replaced).
func (d LocalSink) Stat(_ context.Context, p string) (int64, []byte, bool, error) {
	target, err := d.file(p)
	if err != nil {
		return 0, nil, false, err
	}
	st, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	if !st.Mode().IsRegular() {
		return 0, nil, false, nil
	}
	return st.Size(), nil, true, nil
}

// Sum hashes the file at p.
func (d LocalSink) Sum(_ context.Context, p string, h hash.Hash) ([]byte, error) {
	target, err := d.file(p)
	if err != nil {
		return nil, err
	}
	return fileSum(target, h)
}

// Write implements ArtifactSink: a temporary file in the target's
// directory, synced and renamed over the target.
func (d LocalSink) Write(ctx context.Context, p string, f ArtifactFile, r io.Reader) (int64, error) {
	target, err := d.file(p)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".import-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err == nil && n != f.Size {
		err = fmt.Errorf("read %d bytes, the source listed %d", n, f.Size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return 0, err
	}
	return n, nil
}

// GCSSink is the objects below a prefix of a Google Cloud Storage bucket,
// named as the server's gs:// artifact store names them:
// "<prefix>/<path>".
type GCSSink struct {
	client *storage.Client
	bucket string
	prefix string // "" or "prefix/"
}

var _ ArtifactSink = (*GCSSink)(nil)

// NewGCSSink connects to the bucket of uri (gs://bucket/prefix). It does
// no I/O: a missing bucket or permission shows on the first write.
func NewGCSSink(ctx context.Context, uri, endpoint string) (*GCSSink, error) {
	bucket, prefix, err := gcs.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	var opts []option.ClientOption
	if ep := endpoint; ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		ep = strings.TrimSuffix(strings.TrimSuffix(ep, "/"), "/storage/v1") + "/storage/v1/"
		opts = append(opts, option.WithEndpoint(ep), option.WithoutAuthentication(), storage.WithJSONReads())
	} else if gcs.EmulatorHost() != "" {
		// Emulators (fake-gcs-server) serve the JSON API.
		opts = append(opts, storage.WithJSONReads())
	}
	client, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: creating client for %s: %w", uri, err)
	}
	s := &GCSSink{client: client, bucket: bucket}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	return s, nil
}

// Close releases the client.
func (s *GCSSink) Close() error { return s.client.Close() }

// Location implements ArtifactSink.
func (s *GCSSink) Location() string {
	return "gs://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

func (s *GCSSink) object(p string) (*storage.ObjectHandle, error) {
	if !filepath.IsLocal(filepath.FromSlash(p)) || path.Clean(p) != p {
		return nil, fmt.Errorf("artifact path %q is not a plain relative path", p)
	}
	return s.client.Bucket(s.bucket).Object(s.prefix + p), nil
}

// Stat implements ArtifactSink with the object's size and MD5.
func (s *GCSSink) Stat(ctx context.Context, p string) (int64, []byte, bool, error) {
	o, err := s.object(p)
	if err != nil {
		return 0, nil, false, err
	}
	a, err := o.Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("gs://%s/%s: %w", s.bucket, s.prefix+p, err)
	}
	return a.Size, a.MD5, true, nil
}

// Write implements ArtifactSink. GCS makes an object only when its
// writer closes after the whole upload; on any failure the writer's
// context is cancelled before closing, so no object (and no partial one)
// replaces what was there. The source's MD5, when it offers one, is sent
// along, and GCS refuses an upload that does not match it.
func (s *GCSSink) Write(ctx context.Context, p string, f ArtifactFile, r io.Reader) (int64, error) {
	o, err := s.object(p)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := o.NewWriter(wctx)
	w.ChunkSize = gcs.DefaultChunkSize // as the server's store; one buffer per file copied at once
	if len(f.MD5) == 16 {
		w.MD5 = f.MD5
	}
	n, err := io.Copy(w, ctxReader{ctx, r})
	if err == nil && n != f.Size {
		err = fmt.Errorf("read %d bytes, the source listed %d", n, f.Size)
	}
	if err != nil {
		cancel()
		_ = w.Close()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("writing gs://%s/%s: %w", s.bucket, s.prefix+p, err)
	}
	return n, nil
}
