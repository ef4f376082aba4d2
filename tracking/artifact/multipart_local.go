package artifact

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// localStaging is the directory, at the root of a Local store, under which
// multipart uploads are staged: one subdirectory per upload, holding one
// file per part named "<part>.<md5 hex>". Its name starts with
// ReservedPrefix, so it is never listed and no artifact path can reach it.
const localStaging = tempPrefix + "mpu"

var _ Multipart = (*Local)(nil)

// stageDir is the staging directory of an upload, relative to the root.
func stageDir(upload string) string { return path.Join(localStaging, upload) }

// CreateUpload implements Multipart.
func (l *Local) CreateUpload(ctx context.Context, upload string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.root.MkdirAll(stageDir(upload), 0o750); err != nil {
		return rootErr("create staging directory", err)
	}
	return nil
}

// PutPart implements Multipart: the part is written to a temporary file in
// the upload's staging directory, hashed on the way, and renamed to its
// final name; earlier uploads of the same part are removed.
func (l *Local) PutPart(ctx context.Context, upload string, part int, r io.Reader) (etag string, err error) {
	defer track(l.stagingKey(upload))()
	dir := stageDir(upload)
	if _, err := l.root.Stat(dir); err != nil {
		return "", fmt.Errorf("artifact: multipart upload: %w", fs.ErrNotExist)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, "tmp-"+hex.EncodeToString(rnd[:]))
	f, err := l.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("artifact: multipart upload: %w", fs.ErrNotExist)
		}
		return "", rootErr("create part file", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = l.root.Remove(tmp)
		}
	}()
	h := md5.New()
	if _, err = io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r}); err != nil {
		return "", fmt.Errorf("artifact: write part: %w", err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("artifact: sync part: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("artifact: close part: %w", err)
	}
	etag = hex.EncodeToString(h.Sum(nil))
	prefix := strconv.Itoa(part) + "."
	if old, err := l.stagedParts(dir); err == nil {
		for _, name := range old {
			if strings.HasPrefix(name, prefix) {
				_ = l.root.Remove(path.Join(dir, name))
			}
		}
	}
	if err = l.root.Rename(tmp, path.Join(dir, prefix+etag)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("artifact: multipart upload: %w", fs.ErrNotExist) // aborted meanwhile
		}
		return "", rootErr("stage part", err)
	}
	return etag, nil
}

// stagedParts lists the file names in a staging directory.
func (l *Local) stagedParts(dir string) ([]string, error) {
	d, err := l.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// CompleteParts implements Multipart: the parts are concatenated through
// Put (a temporary file renamed into place), so the file appears whole or
// not at all; then the staging directory is removed.
func (l *Local) CompleteParts(ctx context.Context, upload, p string, parts []Part) error {
	defer track(l.stagingKey(upload))()
	dir := stageDir(upload)
	names, err := l.stagedParts(dir)
	if err != nil {
		return fmt.Errorf("artifact: multipart upload: %w", fs.ErrNotExist)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	files := make([]*os.File, 0, len(parts))
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	readers := make([]io.Reader, 0, len(parts))
	for _, pt := range parts {
		name := strconv.Itoa(pt.Number) + "." + pt.ETag
		if !isLowerHex(pt.ETag) || !have[name] {
			return invalid("Part %d was not uploaded or its ETag %q does not match", pt.Number, pt.ETag)
		}
		f, err := l.root.Open(path.Join(dir, name))
		if err != nil {
			return rootErr("open part", err)
		}
		files = append(files, f)
		readers = append(readers, f)
	}
	if err := l.Put(ctx, p, io.MultiReader(readers...)); err != nil {
		return err
	}
	if err := l.root.RemoveAll(dir); err != nil {
		return rootErr("remove staging directory", err)
	}
	return nil
}

// AbortParts implements Multipart.
func (l *Local) AbortParts(ctx context.Context, upload string) error {
	if err := l.root.RemoveAll(stageDir(upload)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rootErr("remove staging directory", err)
	}
	return nil
}
