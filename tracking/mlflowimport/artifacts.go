package mlflowimport

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // compared with the MD5 a cloud source keeps, not for security
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
)

// copyWorkers is how many files of a tree are copied at once: a copy
// ends with an fsync, and fsyncs issued together share the file
// system's journal commits.
const copyWorkers = 8

// copyTree copies every file of tree into the sink below the
// slash-separated directory to, streaming, several files at once. The
// sink writes a file whole or not at all (a local file is written under a
// temporary name, synced and renamed). A file already there with the
// source file's size and content is skipped: the content is compared by
// MD5 when the source or the sink keeps one (a cloud object), otherwise
// by the SHA-256 of the source stream against the sink's file (the source
// is then read twice only when the contents differ). It counts into the
// report.
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
	if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
		return fmt.Errorf("artifact path %q leaves the artifact directory", f.Path)
	}
	copied, n, err := copyFile(ctx, tree, f, im.sink, path.Join(to, f.Path))
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

// sameFile reports whether the sink already holds f at target.
func sameFile(ctx context.Context, tree ArtifactTree, f ArtifactFile, sink ArtifactSink, target string) (bool, error) {
	size, have, ok, err := sink.Stat(ctx, target)
	if err != nil || !ok || size != f.Size {
		return false, err
	}
	hs, _ := sink.(sinkHasher)
	switch {
	case f.MD5 != nil && have != nil:
		return bytes.Equal(have, f.MD5), nil
	case f.MD5 != nil && hs != nil:
		have, err := hs.Sum(ctx, target, md5.New()) //nolint:gosec // see import
		return err == nil && bytes.Equal(have, f.MD5), err
	case have == nil && hs == nil:
		return false, nil // nothing to compare with: copy
	}
	// The source keeps no MD5: hash its stream, with MD5 when the sink
	// keeps one, else SHA-256 against the sink's own hash.
	var h hash.Hash = sha256.New()
	if have != nil {
		h = md5.New() //nolint:gosec // see import
	}
	in, err := tree.Open(ctx, f.Path)
	if err != nil {
		return false, err
	}
	defer in.Close()
	if _, err := io.Copy(h, ctxReader{ctx, in}); err != nil {
		return false, err
	}
	if have == nil {
		if have, err = hs.Sum(ctx, target, sha256.New()); err != nil {
			return false, err
		}
	}
	return bytes.Equal(have, h.Sum(nil)), nil
}

// copyFile brings one file to target in sink unless it is there already.
func copyFile(ctx context.Context, tree ArtifactTree, f ArtifactFile, sink ArtifactSink, target string) (copied bool, n int64, err error) {
	same, err := sameFile(ctx, tree, f, sink, target)
	if err != nil || same {
		return false, 0, err
	}
	in, err := tree.Open(ctx, f.Path)
	if err != nil {
		return false, 0, err
	}
	defer in.Close()
	n, err = sink.Write(ctx, target, f, in)
	if err != nil {
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
