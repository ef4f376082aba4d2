package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newLocal(t *testing.T) (*Local, string) {
	t.Helper()
	base := t.TempDir()
	l, err := NewLocal(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if err := os.WriteFile(filepath.Join(base, "secret.txt"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return l, base
}

func TestLocalPutOpenListDelete(t *testing.T) {
	l, _ := newLocal(t)
	ctx := context.Background()
	for p, body := range map[string]string{"a/b/c.txt": "hello", "a/empty": "", "a/z.bin": "zz", "top": "t"} {
		if err := l.Put(ctx, p, strings.NewReader(body)); err != nil {
			t.Fatalf("Put %s: %v", p, err)
		}
	}
	obj, err := l.Open(ctx, "a/b/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(obj)
	_ = obj.Close()
	if string(got) != "hello" || obj.Info().Size != 5 {
		t.Fatalf("read %q size %d", got, obj.Info().Size)
	}
	files, err := l.List(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
	}
	if strings.Join(names, ",") != "a/b,a/empty,a/z.bin" || !files[0].IsDir || files[1].FileSize != 0 || files[2].FileSize != 2 {
		t.Fatalf("List = %+v", files)
	}
	if files, _ := l.List(ctx, "missing"); len(files) != 0 {
		t.Fatalf("List missing = %+v", files)
	}
	if files, _ := l.List(ctx, "top"); len(files) != 0 {
		t.Fatalf("List of a file = %+v", files)
	}
	if _, err := l.Open(ctx, "a"); !IsNotFound(err) {
		t.Fatalf("Open dir: %v", err)
	}
	if _, err := l.Open(ctx, "nope"); !IsNotFound(err) {
		t.Fatalf("Open missing: %v", err)
	}
	// Overwrite, then put onto a directory (lands inside it, as in MLflow).
	if err := l.Put(ctx, "top", strings.NewReader("new")); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "a/b", strings.NewReader("inside")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(l.Dir(), "a", "b", "b")); string(b) != "inside" {
		t.Fatalf("put onto a directory wrote %q", b)
	}
	if err := l.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(ctx, "a"); err != nil {
		t.Fatalf("deleting a missing path: %v", err)
	}
	if err := l.Delete(ctx, ""); err == nil {
		t.Fatal("deleting the root must be refused")
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(b []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("client went away")
	}
	n := min(len(b), f.n)
	f.n -= n
	return n, nil
}

func TestLocalPutIsAtomic(t *testing.T) {
	l, _ := newLocal(t)
	ctx := context.Background()
	if err := l.Put(ctx, "d/f.txt", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "d/f.txt", &failingReader{n: 100000}); err == nil {
		t.Fatal("expected the failing upload to fail")
	}
	if b, _ := os.ReadFile(filepath.Join(l.Dir(), "d", "f.txt")); string(b) != "old" {
		t.Fatalf("failed upload replaced the file: %q", b)
	}
	if err := l.Put(ctx, "d/g.txt", &failingReader{n: 10}); err == nil {
		t.Fatal("expected failure")
	}
	ents, _ := os.ReadDir(filepath.Join(l.Dir(), "d"))
	if len(ents) != 1 {
		t.Fatalf("leftovers after failed uploads: %v", ents)
	}
}

func TestLocalSymlinkEscape(t *testing.T) {
	l, base := newLocal(t)
	ctx := context.Background()
	if err := os.Symlink(base, filepath.Join(l.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, "link/secret.txt"); err == nil {
		t.Fatal("read through an escaping symlink")
	}
	if err := l.Put(ctx, "link/new.txt", strings.NewReader("x")); err == nil {
		t.Fatal("wrote through an escaping symlink")
	}
	if _, err := os.Stat(filepath.Join(base, "new.txt")); err == nil {
		t.Fatal("file created outside the root")
	}
	if files, _ := l.List(ctx, "link"); len(files) != 0 {
		t.Fatalf("listed outside the root: %+v", files)
	}
	_ = l.Delete(ctx, "link/secret.txt")
	if _, err := os.Stat(filepath.Join(base, "secret.txt")); err != nil {
		t.Fatal("deleted outside the root")
	}
}

// TestLocalLargeStream streams 64 MiB through Put and Open and checks the
// digest; the reader is generated, never held whole in memory.
func TestLocalLargeStream(t *testing.T) {
	if testing.Short() {
		t.Skip("large stream")
	}
	l, _ := newLocal(t)
	ctx := context.Background()
	const size = 64 << 20
	src := io.LimitReader(&patternReader{}, size)
	h := sha256.New()
	if err := l.Put(ctx, "big.bin", io.TeeReader(src, h)); err != nil {
		t.Fatal(err)
	}
	want := h.Sum(nil)
	obj, err := l.Open(ctx, "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	h2 := sha256.New()
	n, err := io.Copy(h2, obj)
	if err != nil || n != size || !bytes.Equal(h2.Sum(nil), want) {
		t.Fatalf("read back %d bytes, err %v, digest match %v", n, err, bytes.Equal(h2.Sum(nil), want))
	}
}

type patternReader struct{ i byte }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.i
		p.i = p.i*31 + 7
	}
	return len(b), nil
}
