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
	"sync"
)

// copyWorkers is how many files of a tree are copied at once: a copy
// ends with an fsync, and fsyncs issued together share the file
// system's journal commits.
const copyWorkers = 8

// copyTree copies every file of tree into the local directory to,
// streaming, several files at once. A file is written under a temporary
// name, synced and renamed, so a file present is whole. A file already
// there with the source file's size and content is skipped: the content
// is compared by the source's MD5 when it offers one (a cloud object),
// otherwise by the SHA-256 of the source stream against the destination
// file's (the source is then read twice only when the contents differ).
// It counts into the report.
func (im *importer) copyTree(ctx context.Context, tree ArtifactTree, to string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	files := make(chan ArtifactFile)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) {
		once.Do(func() { first = err; cancel() })
	}
	for range copyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range files {
				if err := im.copyOne(ctx, tree, f, to); err != nil {
					fail(err)
				}
			}
		}()
	}
	err := tree.Walk(ctx, func(f ArtifactFile) error {
		select {
		case files <- f:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(files)
	wg.Wait()
	if first != nil {
		return first
	}
	return err
}

// copyOne copies one file of a tree and counts it.
func (im *importer) copyOne(ctx context.Context, tree ArtifactTree, f ArtifactFile, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rel := filepath.FromSlash(f.Path)
	if !filepath.IsLocal(rel) {
		return fmt.Errorf("artifact path %q leaves the artifact directory", f.Path)
	}
	copied, n, err := copyFile(ctx, tree, f, filepath.Join(to, rel))
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
}

// sameFile reports whether target already holds f.
func sameFile(ctx context.Context, tree ArtifactTree, f ArtifactFile, target string) (bool, error) {
	st, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() || st.Size() != f.Size {
		return false, nil
	}
	if f.MD5 != nil {
		have, err := fileSum(target, md5.New()) //nolint:gosec // see import
		return err == nil && bytes.Equal(have, f.MD5), err
	}
	in, err := tree.Open(ctx, f.Path)
	if err != nil {
		return false, err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, in}); err != nil {
		return false, err
	}
	have, err := fileSum(target, sha256.New())
	return err == nil && bytes.Equal(have, h.Sum(nil)), err
}

// copyFile brings one file to target unless it is there already.
func copyFile(ctx context.Context, tree ArtifactTree, f ArtifactFile, target string) (copied bool, n int64, err error) {
	same, err := sameFile(ctx, tree, f, target)
	if err != nil || same {
		return false, 0, err
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
	n, err = io.Copy(tmp, ctxReader{ctx, in})
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
		return false, 0, err
	}
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
