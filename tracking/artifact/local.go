package artifact

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// tempPrefix starts the names of uploads in progress; listings hide them.
const tempPrefix = ".mlflow-upload-"

// Local is a Store on a local directory. Every operation goes through an
// os.Root, so no path, symlink included, can reach outside the directory.
type Local struct {
	dir  string
	root *os.Root
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating if needed) the directory dir as a Local store.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact: resolve %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("artifact: create root: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("artifact: open root: %w", err)
	}
	return &Local{dir: abs, root: root}, nil
}

// Dir returns the absolute directory of the store.
func (l *Local) Dir() string { return l.dir }

// Close releases the directory handle.
func (l *Local) Close() error { return l.root.Close() }

// escapes reports whether err is os.Root refusing a path that leaves the
// root (through ".." or a symlink); such a path is the client's mistake.
func escapes(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// rootErr turns an os.Root escape into MLflow's invalid-path error and
// wraps anything else with context.
func rootErr(op string, err error) error {
	if escapes(err) {
		return errInvalidPath()
	}
	return fmt.Errorf("artifact: %s: %w", op, err)
}

// osPath turns a cleaned slash path into a path for the os.Root ("." for
// the root).
func osPath(p string) string {
	if p == "" {
		return "."
	}
	return filepath.FromSlash(p)
}

// Put implements Store: the bytes go to a temporary file next to the
// target, which is synced and then renamed into place.
func (l *Local) Put(ctx context.Context, p string, r io.Reader) (err error) {
	if p == "" {
		return errInvalidPath()
	}
	target := osPath(p)
	if fi, err := l.root.Stat(target); err == nil && fi.IsDir() {
		target = filepath.Join(target, path.Base(p))
	}
	dir := filepath.Dir(target)
	if err := l.root.MkdirAll(dir, 0o750); err != nil {
		return rootErr("create directory", err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
	f, err := l.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return rootErr("create temporary file", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = l.root.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("artifact: write: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("artifact: sync: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("artifact: close: %w", err)
	}
	if err = l.root.Rename(tmp, target); err != nil {
		return fmt.Errorf("artifact: rename into place: %w", err)
	}
	if d, derr := l.root.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Open implements Store.
func (l *Local) Open(ctx context.Context, p string) (Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := l.root.Open(osPath(p))
	if err != nil {
		return nil, rootErr("open", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("artifact: stat: %w", err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("artifact: %w: not a file", fs.ErrNotExist)
	}
	return &localObject{File: f, info: ObjectInfo{Size: fi.Size(), ModTime: fi.ModTime()}}, nil
}

type localObject struct {
	*os.File
	info ObjectInfo
}

func (o *localObject) Info() ObjectInfo { return o.info }

// List implements Store.
func (l *Local) List(ctx context.Context, p string) ([]tracking.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, err := l.root.Open(osPath(p))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if escapes(err) {
			return nil, nil
		}
		return nil, rootErr("open directory", err)
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		return nil, fmt.Errorf("artifact: stat: %w", err)
	}
	if !fi.IsDir() {
		return nil, nil
	}
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("artifact: read directory: %w", err)
	}
	out := make([]tracking.FileInfo, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		info := tracking.FileInfo{Path: JoinClean(p, name), IsDir: e.IsDir()}
		if !e.IsDir() {
			efi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			info.FileSize = efi.Size()
		}
		out = append(out, info)
	}
	// MLflow lists entries sorted by name (byte order).
	slices.SortFunc(out, func(a, b tracking.FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Delete implements Store.
func (l *Local) Delete(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p == "" {
		return errInvalidPath()
	}
	if err := l.root.RemoveAll(osPath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rootErr("delete", err)
	}
	return nil
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
