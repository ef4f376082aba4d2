package mlflowimport

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // compared with the MD5 a cloud source keeps, not for security
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// copyMode says how a destination file of the source file's size is
// recognised as the same file.
type copyMode int

const (
	// byHash compares contents: the source's MD5 when it offers one,
	// otherwise the SHA-256 of the source stream (read into a temporary
	// file) against the destination file's.
	byHash copyMode = iota
	// bySize takes a destination file of the same size as the same file
	// (for a run already imported whole, whose files were compared when
	// they were copied).
	bySize
)

// copyTree copies every file of tree into the local directory to,
// streaming. A file is written under a temporary name and renamed, so a
// file present is whole; a file already there and the same (see
// copyMode) is skipped. It counts into the report.
func (im *importer) copyTree(ctx context.Context, tree ArtifactTree, to string, mode copyMode) error {
	return tree.Walk(ctx, func(f ArtifactFile) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := filepath.FromSlash(f.Path)
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("artifact path %q leaves the artifact directory", f.Path)
		}
		target := filepath.Join(to, rel)
		copied, n, err := im.copyFile(ctx, tree, f, target, mode)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		im.mu.Lock()
		if copied {
			im.rep.ArtifactFiles++
			im.rep.ArtifactBytes += n
		} else {
			im.rep.ArtifactsSkipped++
		}
		im.mu.Unlock()
		im.bytesDone.Add(f.Size)
		im.progress("artifacts")
		return nil
	})
}

// copyFile brings one file to target unless it is there already.
func (im *importer) copyFile(ctx context.Context, tree ArtifactTree, f ArtifactFile, target string, mode copyMode) (copied bool, n int64, err error) {
	st, statErr := os.Stat(target)
	same := statErr == nil && st.Mode().IsRegular() && st.Size() == f.Size
	if same && mode == bySize {
		return false, 0, nil
	}
	if same && f.MD5 != nil {
		sum, err := fileSum(target, md5.New()) //nolint:gosec // see import
		if err != nil {
			return false, 0, err
		}
		if bytes.Equal(sum, f.MD5) {
			return false, 0, nil
		}
		same = false
	}
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return false, 0, statErr
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return false, 0, err
	}
	in, err := tree.Open(ctx, f.Path)
	if err != nil {
		return false, 0, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(target), ".import-*")
	if err != nil {
		return false, 0, err
	}
	keep := false
	defer func() {
		if !keep {
			_ = os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, in})
	if err == nil && n != f.Size {
		err = fmt.Errorf("read %d bytes, the source listed %d", n, f.Size)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, 0, err
	}
	if same {
		// Same size, no cheap checksum: compare what was read with
		// what is there.
		have, err := fileSum(target, sha256.New())
		if err != nil {
			return false, 0, err
		}
		if bytes.Equal(have, h.Sum(nil)) {
			return false, 0, nil
		}
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return false, 0, err
	}
	keep = true
	return true, n, nil
}

// fileSum hashes a local file.
func fileSum(path string, h hash.Hash) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
