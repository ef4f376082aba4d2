// Package gcs is an artifact.Store on a Google Cloud Storage bucket.
//
// Artifact paths map to object names under an optional prefix:
// gs://bucket/prefix with the artifact path "1/abc/artifacts/model.pkl" is
// the object "prefix/1/abc/artifacts/model.pkl". Directories are implied by
// "/" in object names, as MLflow's GCS repository treats them.
//
// Uploads stream through a storage.Writer: the object appears atomically
// when the writer is closed, and a failed upload is abandoned by cancelling
// its context, so nothing partial is ever visible. Downloads are ranged
// reads: seeking an open object starts a new range read at the new offset,
// so HTTP Range requests read only what the client asked for.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// DefaultChunkSize is the buffer of one streamed upload: the storage
// client sends an upload in chunks of this size (resumable upload), so it
// is also the memory one upload in flight costs.
const DefaultChunkSize = 8 << 20

// Options configure a Store.
type Options struct {
	// Bucket is the bucket name (required).
	Bucket string
	// Prefix is the object-name prefix under which artifacts live, without
	// leading or trailing slashes; "" is the bucket's root.
	Prefix string
	// Endpoint points the client at an emulator (such as fake-gcs-server)
	// or a private endpoint: "http://host:port" or a full JSON API URL
	// ending in "/storage/v1/". With an endpoint the client uses no
	// authentication and JSON reads. When empty, STORAGE_EMULATOR_HOST is
	// honoured by the storage client itself; otherwise credentials come
	// from Application Default Credentials.
	Endpoint string
	// ChunkSize is the upload chunk size; 0 means DefaultChunkSize. A
	// negative value sends each upload in one request without retries and
	// without buffering.
	ChunkSize int
	// ClientOptions are extra options for storage.NewClient.
	ClientOptions []option.ClientOption
	// GoogleAccessID and PrivateKey sign the URLs of SignedURL: a service
	// account's email and its RSA private key in PEM form. Without a
	// PrivateKey the client's own credentials sign: the key of a service
	// account key file from Application Default Credentials, otherwise
	// IAM SignBlob as GoogleAccessID (or as the account the credentials
	// or the metadata server name). See signed.go.
	GoogleAccessID string
	PrivateKey     []byte
}

// Store is an artifact.Store on a GCS bucket.
type Store struct {
	client    *storage.Client
	bucket    *storage.BucketHandle
	name      string
	prefix    string // "" or "prefix/" (with the trailing slash)
	chunkSize int
	sign      signing // SignedURL's credentials and host (signed.go)
}

var _ artifact.Store = (*Store)(nil)

// ParseURI splits gs://bucket/prefix into the bucket and the cleaned
// prefix. The prefix goes through artifact.CleanPath, so it cannot hold
// "..", empty segments or other unsafe names.
func ParseURI(uri string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(uri, "gs://")
	if !ok {
		return "", "", fmt.Errorf("gcs: %q is not a gs:// URI", uri)
	}
	if strings.ContainsAny(rest, "?#") {
		return "", "", fmt.Errorf("gcs: %q: gs:// URIs take no query or fragment", uri)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !validBucket(bucket) {
		return "", "", fmt.Errorf("gcs: %q: invalid bucket name %q", uri, bucket)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix, err = artifact.CleanPath(prefix); err != nil {
		return "", "", fmt.Errorf("gcs: %q: invalid object prefix %q", uri, prefix)
	}
	return bucket, prefix, nil
}

// validBucket checks the character set and length of a bucket name.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 222 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// EmulatorHost returns the emulator address from STORAGE_EMULATOR_HOST
// ("" when unset).
func EmulatorHost() string { return os.Getenv("STORAGE_EMULATOR_HOST") }

// New connects to GCS. It does no I/O beyond building the client: a missing
// bucket or missing permissions show up on first use.
func New(ctx context.Context, opts Options) (*Store, error) {
	if !validBucket(opts.Bucket) {
		return nil, fmt.Errorf("gcs: invalid bucket name %q", opts.Bucket)
	}
	prefix, err := artifact.CleanPath(strings.Trim(opts.Prefix, "/"))
	if err != nil {
		return nil, fmt.Errorf("gcs: invalid object prefix %q", opts.Prefix)
	}
	copts := slices.Clone(opts.ClientOptions)
	if ep := opts.Endpoint; ep != "" {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		if !strings.HasSuffix(strings.TrimSuffix(ep, "/"), "/storage/v1") {
			ep = strings.TrimSuffix(ep, "/") + "/storage/v1/"
		}
		if !strings.HasSuffix(ep, "/") {
			ep += "/"
		}
		copts = append(copts, option.WithEndpoint(ep), option.WithoutAuthentication(), storage.WithJSONReads())
	} else if EmulatorHost() != "" {
		copts = append(copts, storage.WithJSONReads())
	}
	client, err := storage.NewClient(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("gcs: creating client: %w", err)
	}
	cs := opts.ChunkSize
	switch {
	case cs == 0:
		cs = DefaultChunkSize
	case cs < 0:
		cs = 0
	}
	sign, err := newSigning(opts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s := &Store{client: client, bucket: client.Bucket(opts.Bucket), name: opts.Bucket, chunkSize: cs, sign: sign}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	return s, nil
}

// Close closes the client.
func (s *Store) Close() error { return s.client.Close() }

// String returns the store's gs:// URI.
func (s *Store) String() string { return "gs://" + s.name + "/" + strings.TrimSuffix(s.prefix, "/") }

// object returns the object name of the artifact path p.
func (s *Store) object(p string) string { return s.prefix + p }

// dirPrefix returns the listing prefix of directory p ("" for the root of
// an unprefixed store).
func (s *Store) dirPrefix(p string) string {
	if p == "" {
		return s.prefix
	}
	return s.prefix + p + "/"
}

// hidden reports whether the object name component is an upload in
// progress (staged multipart parts), which listings never show.
func hidden(name string) bool { return strings.HasPrefix(name, artifact.ReservedPrefix) }

// reserved reports a path with a segment that names the store's staging
// area.
func reserved(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if hidden(seg) {
			return true
		}
	}
	return false
}

func errInvalidPath() error {
	return &tracking.Error{Code: tracking.InvalidParameterValue, Message: "Invalid path"}
}

// isDir reports whether some object lives under directory p.
func (s *Store) isDir(ctx context.Context, p string) (bool, error) {
	it := s.bucket.Objects(ctx, &storage.Query{Prefix: s.dirPrefix(p), Projection: storage.ProjectionNoACL})
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, iterator.Done):
		return false, nil
	}
	return false, fmt.Errorf("gcs: list: %w", err)
}

// Put implements artifact.Store. The upload is streamed; the object
// replaces any previous one atomically when the upload completes, and an
// upload that fails is cancelled so no object is created.
func (s *Store) Put(ctx context.Context, p string, r io.Reader) error {
	if p == "" || reserved(p) {
		return errInvalidPath()
	}
	// MLflow's repositories put a file inside an existing directory of
	// the same name.
	dir, err := s.isDir(ctx, p)
	if err != nil {
		return err
	}
	if dir {
		p = p + "/" + path.Base(p)
	}
	_, err = s.write(ctx, s.object(p), r, nil)
	return err
}

// write streams r into the object name and returns its attributes. On any
// error the upload is cancelled.
func (s *Store) write(ctx context.Context, name string, r io.Reader, meta map[string]string) (*storage.ObjectAttrs, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.bucket.Object(name).NewWriter(wctx)
	w.ChunkSize = s.chunkSize
	w.ContentType = artifact.ContentType(name)
	w.Metadata = meta
	if _, err := io.Copy(w, r); err != nil {
		cancel() // abandon the upload: nothing becomes visible
		_ = w.Close()
		return nil, fmt.Errorf("gcs: upload: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("gcs: upload: %w", err)
	}
	return w.Attrs(), nil
}

// Open implements artifact.Store. The object's generation is pinned, so a
// concurrent overwrite does not mix two versions into one download.
func (s *Store) Open(ctx context.Context, p string) (artifact.Object, error) {
	if p == "" {
		return nil, fmt.Errorf("gcs: %w: the root is a directory", artifact.ErrNotFound)
	}
	if reserved(p) {
		return nil, errInvalidPath()
	}
	obj := s.bucket.Object(s.object(p))
	attrs, err := obj.Attrs(ctx)
	if err != nil {
		if errors.Is(err, storage.ErrObjectNotExist) {
			return nil, fmt.Errorf("gcs: %w: %s", artifact.ErrNotFound, p)
		}
		return nil, fmt.Errorf("gcs: stat: %w", err)
	}
	info := artifact.ObjectInfo{Size: attrs.Size, ModTime: attrs.Updated}
	if attrs.Etag != "" {
		info.ETag = `"` + strings.Trim(attrs.Etag, `"`) + `"`
	}
	return &object{ctx: ctx, obj: obj.Generation(attrs.Generation), info: info}, nil
}

// object is an open GCS object read through range reads.
type object struct {
	ctx  context.Context
	obj  *storage.ObjectHandle
	info artifact.ObjectInfo
	off  int64
	r    *storage.Reader // nil until the next Read
}

func (o *object) Info() artifact.ObjectInfo { return o.info }

// Read reads from the current offset, starting a range read there if none
// is open.
func (o *object) Read(b []byte) (int, error) {
	if o.off >= o.info.Size {
		return 0, io.EOF
	}
	if o.r == nil {
		r, err := o.obj.NewRangeReader(o.ctx, o.off, -1)
		if err != nil {
			if errors.Is(err, storage.ErrObjectNotExist) {
				return 0, fmt.Errorf("gcs: %w: object changed while reading", artifact.ErrNotFound)
			}
			return 0, fmt.Errorf("gcs: read: %w", err)
		}
		o.r = r
	}
	n, err := o.r.Read(b)
	o.off += int64(n)
	if err == io.EOF && o.off < o.info.Size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Seek moves the offset; the next Read starts a new range read there. A
// seek to the current offset keeps the open reader.
func (o *object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.info.Size + offset
	default:
		return o.off, errors.New("gcs: seek: invalid whence")
	}
	if abs < 0 {
		return o.off, errors.New("gcs: seek: negative position")
	}
	if abs != o.off && o.r != nil {
		_ = o.r.Close()
		o.r = nil
	}
	o.off = abs
	return abs, nil
}

// Close ends any range read in progress.
func (o *object) Close() error {
	if o.r == nil {
		return nil
	}
	err := o.r.Close()
	o.r = nil
	return err
}

// List implements artifact.Store with MLflow's semantics: a common prefix
// is a directory (is_dir, no size), an object a file with its size.
// Objects named like the directory itself ("dir/", folder placeholders)
// and uploads in progress are left out.
func (s *Store) List(ctx context.Context, p string) ([]tracking.FileInfo, error) {
	if reserved(p) {
		return nil, nil
	}
	pre := s.dirPrefix(p)
	it := s.bucket.Objects(ctx, &storage.Query{Prefix: pre, Delimiter: "/", Projection: storage.ProjectionNoACL})
	var out []tracking.FileInfo
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("gcs: list: %w", err)
		}
		if a.Prefix != "" {
			name := strings.TrimSuffix(strings.TrimPrefix(a.Prefix, pre), "/")
			if name == "" || hidden(name) || strings.Contains(name, "/") {
				continue
			}
			out = append(out, tracking.FileInfo{Path: artifact.JoinClean(p, name), IsDir: true})
			continue
		}
		name := strings.TrimPrefix(a.Name, pre)
		if name == "" || hidden(name) || strings.Contains(name, "/") {
			continue
		}
		out = append(out, tracking.FileInfo{Path: artifact.JoinClean(p, name), FileSize: a.Size})
	}
	slices.SortFunc(out, func(a, b tracking.FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Delete implements artifact.Store: the object at p, and every object
// under p as a directory.
func (s *Store) Delete(ctx context.Context, p string) error {
	if p == "" || reserved(p) {
		return errInvalidPath()
	}
	if err := s.deleteObject(ctx, s.object(p)); err != nil {
		return err
	}
	return s.deletePrefix(ctx, s.dirPrefix(p))
}

// deleteObject deletes one object; a missing object is not an error.
func (s *Store) deleteObject(ctx context.Context, name string) error {
	err := s.bucket.Object(name).Delete(ctx)
	if err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
		return fmt.Errorf("gcs: delete: %w", err)
	}
	return nil
}

// deletePrefix deletes every object whose name starts with pre.
func (s *Store) deletePrefix(ctx context.Context, pre string) error {
	it := s.bucket.Objects(ctx, &storage.Query{Prefix: pre, Projection: storage.ProjectionNoACL})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gcs: list: %w", err)
		}
		if err := s.deleteObject(ctx, a.Name); err != nil {
			return err
		}
	}
}
