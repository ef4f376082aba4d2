package artifact

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// treeOf lists every path under dir (relative, slash-separated), so tests
// can assert that nothing at all was left behind.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// TestLocalThroughAFile: a path that runs through a regular file is
// missing for reads and deletes, and a 400 conflict for writes, never an
// internal error.
func TestLocalThroughAFile(t *testing.T) {
	l, _ := newLocal(t)
	ctx := context.Background()
	if err := l.Put(ctx, "d/f.txt", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Open(ctx, "d/f.txt/x"); !IsNotFound(err) {
		t.Errorf("Open through a file: %v, want not found", err)
	}
	if files, err := l.List(ctx, "d/f.txt/x"); err != nil || len(files) != 0 {
		t.Errorf("List through a file: %v %v", files, err)
	}
	if err := l.Delete(ctx, "d/f.txt/x"); err != nil {
		t.Errorf("Delete through a file: %v, want a no-op", err)
	}
	err := l.Put(ctx, "d/f.txt/x/y", strings.NewReader("y"))
	if !tracking.IsCode(err, tracking.InvalidParameterValue) {
		t.Errorf("Put through a file: %v, want INVALID_PARAMETER_VALUE", err)
	}
	// Onto a directory whose inner name is itself a directory: conflict.
	if err := l.Put(ctx, "e/e/e/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "e", strings.NewReader("x")); !tracking.IsCode(err, tracking.InvalidParameterValue) {
		t.Errorf("Put onto dir e with e/e a directory: %v, want INVALID_PARAMETER_VALUE", err)
	}
	if got := treeOf(t, l.Dir()); !slices.Equal(got, []string{"d", "d/f.txt", "e", "e/e", "e/e/e", "e/e/e/x"}) {
		t.Errorf("tree after refused writes: %v", got)
	}
}

// TestLocalFailedPutLeavesNothing: a reader failing mid-stream, or a
// cancelled context, leaves no file, no temporary file and none of the
// directories the Put created.
func TestLocalFailedPutLeavesNothing(t *testing.T) {
	l, _ := newLocal(t)
	if err := l.Put(context.Background(), "keep/a.txt", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(context.Background(), "keep/new/deeper/b.bin", &failingReader{n: 1 << 20}); err == nil {
		t.Fatal("expected the failing upload to fail")
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("partial"))
		cancel()
		_, _ = pw.Write([]byte("more"))
		_ = pw.Close()
	}()
	if err := l.Put(ctx, "other/c.bin", pr); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled upload: %v", err)
	}
	if got := treeOf(t, l.Dir()); !slices.Equal(got, []string{"keep", "keep/a.txt"}) {
		t.Fatalf("leftovers after failed uploads: %v", got)
	}
}

// TestLocalReservedNames: the names of uploads in progress cannot be
// read, written, listed or deleted through artifact paths.
func TestLocalReservedNames(t *testing.T) {
	l, _ := newLocal(t)
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(l.Dir(), tempPrefix+"x"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, tempPrefix+"x", strings.NewReader("y")); !tracking.IsCode(err, tracking.InvalidParameterValue) {
		t.Errorf("Put: %v", err)
	}
	if err := l.Put(ctx, "a/"+tempPrefix+"mpu/b", strings.NewReader("y")); !tracking.IsCode(err, tracking.InvalidParameterValue) {
		t.Errorf("Put under a reserved dir: %v", err)
	}
	if _, err := l.Open(ctx, tempPrefix+"x"); err == nil {
		t.Error("Open of an upload in progress succeeded")
	}
	if err := l.Delete(ctx, tempPrefix+"x"); err == nil {
		t.Error("Delete of an upload in progress succeeded")
	}
	if files, _ := l.List(ctx, ""); len(files) != 0 {
		t.Errorf("List shows uploads in progress: %v", files)
	}
	if b, _ := os.ReadFile(filepath.Join(l.Dir(), tempPrefix+"x")); string(b) != "partial" {
		t.Errorf("temporary file changed: %q", b)
	}
}

// TestLocalSymlinks: links inside the root behave as what they point to;
// links that leave the root are never followed (not read, written through,
// listed, or deleted through), and deleting one removes only the link.
func TestLocalSymlinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks")
	}
	l, base := newLocal(t)
	ctx := context.Background()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(filepath.Join(outside, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "o.txt"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string]string{"in/real/f.txt": "in", "in/file.txt": "12345"} {
		if err := l.Put(ctx, p, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"in/dirlink":    "real",                               // relative, inside
		"in/filelink":   "file.txt",                           // relative, inside
		"in/abs_inside": filepath.Join(l.Dir(), "in", "real"), // absolute: os.Root never follows these
		"in/esc_dir":    outside,                              // absolute, outside
		"in/esc_rel":    "../../outside/o.txt",                // relative, outside
		"in/esc_parent": "..",                                 // the root itself: inside
		"in/dangling":   "nowhere",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(l.Dir(), filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	files, err := l.List(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		kind := "f"
		if f.IsDir {
			kind = "d"
		}
		got = append(got, f.Path+":"+kind)
	}
	want := []string{"in/dirlink:d", "in/esc_parent:d", "in/file.txt:f", "in/filelink:f", "in/real:d"}
	if !slices.Equal(got, want) {
		t.Errorf("List(in) = %v, want %v", got, want)
	}
	if files[3].FileSize != 5 {
		t.Errorf("filelink size %d, want 5", files[3].FileSize)
	}
	if obj, err := l.Open(ctx, "in/dirlink/f.txt"); err != nil {
		t.Errorf("read through an inside link: %v", err)
	} else {
		_ = obj.Close()
	}
	for _, p := range []string{"in/esc_dir/o.txt", "in/esc_rel", "in/abs_inside/f.txt"} {
		if obj, err := l.Open(ctx, p); err == nil {
			_ = obj.Close()
			t.Errorf("Open(%s) read outside the root", p)
		} else if !tracking.IsCode(err, tracking.InvalidParameterValue) {
			t.Errorf("Open(%s): %v, want Invalid path", p, err)
		}
	}
	if err := l.Put(ctx, "in/esc_dir/new.txt", strings.NewReader("x")); err == nil {
		t.Error("wrote through an escaping link")
	}
	if files, _ := l.List(ctx, "in/esc_dir"); len(files) != 0 {
		t.Errorf("listed outside the root: %v", files)
	}
	// Overwriting an escaping file link replaces the link, not its target.
	if err := l.Put(ctx, "in/esc_rel", strings.NewReader("replaced")); err != nil {
		t.Fatalf("Put onto an escaping link: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(l.Dir(), "in", "esc_rel")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("link not replaced by a file: %v %v", fi, err)
	}
	_ = l.Delete(ctx, "in/esc_dir/sub")
	if err := l.Delete(ctx, "in/esc_dir"); err != nil {
		t.Errorf("Delete of the link itself: %v", err)
	}
	if err := l.Delete(ctx, "in"); err != nil {
		t.Errorf("Delete of a tree holding links: %v", err)
	}
	if got := treeOf(t, outside); !slices.Equal(got, []string{"o.txt", "sub"}) {
		t.Errorf("outside tree changed: %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "o.txt")); string(b) != "outside" {
		t.Errorf("outside file changed: %q", b)
	}
}

// TestLocalPutStreams: a 64 MiB upload and download go through a small
// buffer, not through memory.
func TestLocalPutStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("large stream")
	}
	l, _ := newLocal(t)
	ctx := context.Background()
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := l.Put(ctx, "big/big.bin", io.LimitReader(&patternReader{}, size)); err != nil {
		t.Fatal(err)
	}
	obj, err := l.Open(ctx, "big/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, struct{ io.Reader }{obj})
	_ = obj.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("read %d, %v", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("streaming 2x64 MiB allocated %d bytes; something buffers", alloc)
	}
}
