package artifact

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Store is where artifact bytes live. Paths are cleaned relative paths
// (see CleanPath); "" is the root. Implementations stream in both
// directions and never hold a whole artifact in memory.
type Store interface {
	// Put writes the bytes of r to the file at p, replacing it atomically:
	// readers see the old content or the new, never a partial file. A
	// failed Put leaves nothing behind. Parent directories are created. If
	// p is an existing directory the file is written inside it under its
	// base name, as MLflow's local repository does. A path that collides
	// with an existing file (a file where a directory is needed) is a
	// *tracking.Error INVALID_PARAMETER_VALUE, as is an unsafe path.
	Put(ctx context.Context, p string, r io.Reader) error
	// Open opens the file at p for reading. A missing path, a directory,
	// or a path through a file ("f.txt/x") is an error satisfying
	// errors.Is(err, fs.ErrNotExist).
	Open(ctx context.Context, p string) (Object, error)
	// List lists the direct children of directory p with full store paths
	// (JoinClean(p, name)), sorted by name in byte order as MLflow sorts;
	// FileSize is 0 for directories. A missing path or a file lists as
	// empty (nil, nil). Callers that want names take path.Base.
	List(ctx context.Context, p string) ([]tracking.FileInfo, error)
	// Delete removes the file or the directory tree at p. A missing path is
	// not an error. The root ("") cannot be deleted.
	Delete(ctx context.Context, p string) error
}

// Object is an open artifact: seekable so that HTTP Range requests are
// served without reading what the client did not ask for.
type Object interface {
	io.ReadSeekCloser
	// Info describes the object.
	Info() ObjectInfo
}

// ObjectInfo is what a store knows about an object.
type ObjectInfo struct {
	Size    int64
	ModTime time.Time
	// ETag is a strong validator when the store has one ("" otherwise).
	ETag string
}

// ErrNotFound is returned (wrapped) for a missing artifact.
var ErrNotFound = fs.ErrNotExist

// IsNotFound reports whether err means the artifact does not exist.
func IsNotFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
