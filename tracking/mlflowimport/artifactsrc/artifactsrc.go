// Package artifactsrc gives the artifact locations an MLflow
// installation records (local paths, file:// URIs, gs:// URIs and the
// mlflow-artifacts:/ proxy locations) as mlflowimport.ArtifactTrees:
// listed and opened as streams where they are.
package artifactsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// Dir is a local directory of artifacts.
type Dir string

// Location implements mlflowimport.ArtifactTree.
func (d Dir) Location() string { return string(d) }

// Walk implements mlflowimport.ArtifactTree: every regular file, in
// lexical order; a directory that does not exist has none.
func (d Dir) Walk(ctx context.Context, fn func(mlflowimport.ArtifactFile) error) error {
	root := string(d)
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return fn(mlflowimport.ArtifactFile{Path: filepath.ToSlash(rel), Size: info.Size()})
	})
}

// Open implements mlflowimport.ArtifactTree.
func (d Dir) Open(_ context.Context, p string) (io.ReadCloser, error) {
	rel := filepath.FromSlash(p)
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("artifact path %q leaves %s", p, d)
	}
	return os.Open(filepath.Join(string(d), rel))
}

// GCS is the objects below a prefix of a Google Cloud Storage bucket.
type GCS struct {
	Client *storage.Client
	Bucket string
	// Prefix is the object-name prefix without a trailing slash ("" for
	// the whole bucket).
	Prefix string
}

// Location implements mlflowimport.ArtifactTree.
func (g GCS) Location() string { return "gs://" + path.Join(g.Bucket, g.Prefix) }

func (g GCS) dir() string {
	if g.Prefix == "" {
		return ""
	}
	return g.Prefix + "/"
}

// Walk implements mlflowimport.ArtifactTree: every object below the
// prefix (folder placeholders, names ending in '/', left out), with its
// size and MD5.
func (g GCS) Walk(ctx context.Context, fn func(mlflowimport.ArtifactFile) error) error {
	it := g.Client.Bucket(g.Bucket).Objects(ctx, &storage.Query{Prefix: g.dir()})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing %s: %w", g.Location(), err)
		}
		rel := strings.TrimPrefix(a.Name, g.dir())
		if rel == "" || strings.HasSuffix(rel, "/") {
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(rel)) || path.Clean(rel) != rel {
			return fmt.Errorf("object %q of %s is not a plain relative path", a.Name, g.Location())
		}
		if err := fn(mlflowimport.ArtifactFile{Path: rel, Size: a.Size, MD5: a.MD5}); err != nil {
			return err
		}
	}
}

// Open implements mlflowimport.ArtifactTree.
func (g GCS) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	r, err := g.Client.Bucket(g.Bucket).Object(g.dir() + p).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading gs://%s/%s%s: %w", g.Bucket, g.dir(), p, err)
	}
	return r, nil
}

// ErrUnreadable is returned (wrapped) by Resolve for a location this
// importer cannot read.
var ErrUnreadable = errors.New("cannot be read from here")

// Resolver turns artifact URIs into trees.
type Resolver struct {
	// From is where mlflow-artifacts:/ locations resolve (the source
	// server's --artifacts-destination): a local directory or
	// gs://bucket/prefix. Empty: such locations are unreadable.
	From string
	// Client reads gs:// locations; nil makes one on first use with
	// Application Default Credentials (or STORAGE_EMULATOR_HOST).
	Client *storage.Client

	once    sync.Once
	made    bool
	initErr error
}

func (r *Resolver) client(ctx context.Context) (*storage.Client, error) {
	r.once.Do(func() {
		if r.Client == nil {
			var opts []option.ClientOption
			if os.Getenv("STORAGE_EMULATOR_HOST") != "" {
				// Emulators (fake-gcs-server) serve the JSON API.
				opts = append(opts, storage.WithJSONReads())
			}
			r.Client, r.initErr = storage.NewClient(ctx, opts...)
			r.made = r.initErr == nil
		}
	})
	return r.Client, r.initErr
}

// Close releases a client the resolver made.
func (r *Resolver) Close() error {
	if r.made {
		return r.Client.Close()
	}
	return nil
}

// Resolve returns the tree an artifact URI names: plain paths and file:
// URIs as local directories, gs:// URIs as bucket prefixes,
// mlflow-artifacts:/ (and mlflow-artifacts://host/) locations below
// From. A local directory that does not exist is replaced by fallback (a
// moved file store keeps a run's artifacts in the run's folder) when
// that exists; with neither, the tree is nil: nothing to copy. Other
// schemes (s3://, hdfs:// ...) are ErrUnreadable.
func (r *Resolver) Resolve(ctx context.Context, uri, fallback string) (mlflowimport.ArtifactTree, error) {
	local := func(p string) mlflowimport.ArtifactTree {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return Dir(p)
		}
		if fallback != "" {
			if st, err := os.Stat(fallback); err == nil && st.IsDir() {
				return Dir(fallback)
			}
		}
		return nil
	}
	switch {
	case uri == "":
		return local(""), nil
	case strings.HasPrefix(uri, "file:"):
		u, err := url.Parse(uri)
		if err != nil {
			return nil, fmt.Errorf("artifact location %q: %w", uri, err)
		}
		return local(filepath.FromSlash(u.Path)), nil
	case strings.HasPrefix(uri, "gs://"):
		return r.gcs(ctx, uri)
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		rest := strings.TrimPrefix(uri, "mlflow-artifacts:")
		if u, err := url.Parse(uri); err == nil && u.Host != "" {
			rest = u.Path
		}
		rest = strings.Trim(rest, "/")
		if r.From == "" {
			if t := local(""); t != nil {
				return t, nil
			}
			return nil, fmt.Errorf("%s %w (set --artifacts-from to the source server's --artifacts-destination)", uri, ErrUnreadable)
		}
		if strings.HasPrefix(r.From, "gs://") {
			return r.gcs(ctx, strings.TrimSuffix(r.From, "/")+"/"+rest)
		}
		from := r.From
		if strings.HasPrefix(from, "file:") {
			u, err := url.Parse(from)
			if err != nil {
				return nil, fmt.Errorf("--artifacts-from %q: %w", from, err)
			}
			from = filepath.FromSlash(u.Path)
		}
		return local(filepath.Join(from, filepath.FromSlash(rest))), nil
	case !strings.Contains(uri, "://"):
		return local(uri), nil
	}
	return nil, fmt.Errorf("%s %w (only local, file://, gs:// and mlflow-artifacts:/ locations are read)", uri, ErrUnreadable)
}

func (r *Resolver) gcs(ctx context.Context, uri string) (mlflowimport.ArtifactTree, error) {
	rest := strings.TrimPrefix(uri, "gs://")
	bucket, prefix, _ := strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" || (prefix != "" && path.Clean(prefix) != prefix) || strings.HasPrefix(prefix, "..") {
		return nil, fmt.Errorf("artifact location %q is not gs://bucket/path", uri)
	}
	c, err := r.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", uri, err)
	}
	return GCS{Client: c, Bucket: bucket, Prefix: prefix}, nil
}
