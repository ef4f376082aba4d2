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
	"syscall"

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

// notDir reports a path that runs through a regular file ("f.txt/x"):
// for reads it does not exist, for writes it conflicts.
func notDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

// conflict reports a write that collides with what is already there: a
// file where a directory is needed or the other way round.
func conflict(err error) bool {
	return notDir(err) || errors.Is(err, syscall.EISDIR) || errors.Is(err, fs.ErrExist) ||
		errors.Is(err, syscall.ENOTEMPTY)
}

// errConflict is the client's mistake of writing across an existing file
// or onto a non-empty directory (MLflow fails such writes with a 500).
func errConflict(p string) error {
	return tracking.Errorf(tracking.InvalidParameterValue,
		"Cannot write artifact '%s': it conflicts with an existing file or directory", p)
}

// checkName refuses paths that name the store's own upload temporaries.
func checkName(p string) error {
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, tempPrefix) {
			return errInvalidPath()
		}
	}
	return nil
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
// target, which is synced and then renamed into place. On failure the
// temporary file is removed, and so are the (still empty) directories this
// Put created, so that a failed upload leaves nothing visible.
func (l *Local) Put(ctx context.Context, p string, r io.Reader) (err error) {
	if p == "" {
		return errInvalidPath()
	}
	if err := checkName(p); err != nil {
		return err
	}
	target := osPath(p)
	if fi, err := l.root.Stat(target); err == nil && fi.IsDir() {
		// As MLflow's local repository (shutil.copy2 into a directory).
		target = filepath.Join(target, path.Base(p))
	}
	dir := filepath.Dir(target)
	var created []string
	defer func() {
		if err != nil {
			l.removeEmpty(created)
		}
	}()
	var f *os.File
	var tmp string
	// A concurrent failed Put may remove a directory it created just
	// after our MkdirAll found it; try again then.
	for attempt := 0; ; attempt++ {
		c, err := l.mkdirAll(dir)
		created = append(created, c...)
		if err != nil {
			if conflict(err) {
				return errConflict(p)
			}
			return rootErr("create directory", err)
		}
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		tmp = filepath.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
		done := track(l.tempKey(filepath.ToSlash(tmp)))
		f, err = l.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err == nil {
			defer done() // after the rename or the removal below
			break
		}
		done()
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue
		}
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
	if err = ctx.Err(); err != nil {
		return err
	}
	if err = l.root.Rename(tmp, target); err != nil {
		if conflict(err) {
			return errConflict(p)
		}
		return rootErr("rename into place", err)
	}
	if d, derr := l.root.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// mkdirAll creates dir and its missing parents inside the root and
// returns the directories it created, deepest last.
func (l *Local) mkdirAll(dir string) ([]string, error) {
	if dir == "." {
		return nil, nil
	}
	var missing []string
	for d := dir; d != "."; d = filepath.Dir(d) {
		fi, err := l.root.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return nil, &fs.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := l.root.Mkdir(missing[i], 0o750)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return created, err
		}
		if err == nil {
			created = append(created, missing[i])
		}
	}
	return created, nil
}

// removeEmpty removes the given directories, deepest first, where they are
// still empty (a concurrent upload may have put something there).
func (l *Local) removeEmpty(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = l.root.Remove(dirs[i]) // fails, harmlessly, when not empty
	}
}

// Open implements Store.
func (l *Local) Open(ctx context.Context, p string) (Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkName(p); err != nil {
		return nil, err
	}
	f, err := l.root.Open(osPath(p))
	if err != nil {
		if notDir(err) {
			return nil, fmt.Errorf("artifact: %w: not a file", fs.ErrNotExist)
		}
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

// List implements Store: the direct children of directory p, sorted by
// name as MLflow does. A missing path, a file, or a path that
// leaves the root lists as empty. A symbolic link is described by what it
// points to when that is inside the root, and left out otherwise.
func (l *Local) List(ctx context.Context, p string) ([]tracking.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if checkName(p) != nil {
		return nil, nil
	}
	d, err := l.root.Open(osPath(p))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || notDir(err) || escapes(err) {
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
		var efi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			// Follow it through the root: escaping or dangling links
			// are not listed.
			efi, err = l.root.Stat(osPath(JoinClean(p, name)))
		} else {
			efi, err = e.Info()
		}
		if err != nil {
			continue // removed meanwhile, dangling or escaping
		}
		info := tracking.FileInfo{Path: JoinClean(p, name), IsDir: efi.IsDir()}
		if !info.IsDir {
			info.FileSize = efi.Size()
		}
		out = append(out, info)
	}
	// MLflow sorts by path; within one directory that is by name, in code
	// point order (the byte order of UTF-8).
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
	if err := checkName(p); err != nil {
		return err
	}
	// RemoveAll removes a symbolic link, never what it points to.
	if err := l.root.RemoveAll(osPath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) && !notDir(err) {
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
