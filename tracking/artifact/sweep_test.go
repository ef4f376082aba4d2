package artifact_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// later is a clock DefaultTempAge and DefaultStagingAge in the future.
func later() time.Time { return time.Now().Add(artifact.DefaultTempAge + time.Hour) }

// tempFiles lists the temporary upload files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".mlflow-upload-") && !strings.Contains(p, ".mlflow-upload-mpu") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSweepLocal: stale temporary files anywhere in the tree and abandoned
// multipart staging areas are removed; young ones, and uploads in flight
// in this process whatever their age, are kept.
func TestSweepLocal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := artifact.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "1/r1/artifacts/model/MLmodel", strings.NewReader("m")); err != nil {
		t.Fatal(err)
	}
	// Leftovers of killed uploads: full-size, hidden.
	for _, p := range []string{"1/r1/artifacts/model/.mlflow-upload-00112233aabbccdd", "1/r2/artifacts/.mlflow-upload-0123456789abcdef"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		_ = os.MkdirAll(filepath.Dir(full), 0o750)
		if err := os.WriteFile(full, bytes.Repeat([]byte("x"), 1<<20), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// Something that only looks like ours is left alone.
	foreign := filepath.Join(dir, "1/r1/artifacts/.mlflow-upload-notes.txt")
	_ = os.WriteFile(foreign, []byte("mine"), 0o640)

	// An upload in flight, with its temporary file present.
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() { putDone <- s.Put(ctx, "1/r1/artifacts/big.bin", pr) }()
	_, _ = pw.Write(bytes.Repeat([]byte("y"), 4096))
	waitFor(t, "the in-flight temporary file", func() bool { return len(tempFiles(t, filepath.Join(dir, "1/r1/artifacts"))) == 3 }) // with model/ and the foreign one

	// Multipart: an abandoned upload, and one with a part in flight.
	mp := artifact.Multipart(s)
	abandoned, live := strings.Repeat("a", 32), strings.Repeat("b", 32)
	for _, up := range []string{abandoned, live} {
		if err := mp.CreateUpload(ctx, up); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mp.PutPart(ctx, abandoned, 1, strings.NewReader("part")); err != nil {
		t.Fatal(err)
	}
	ppr, ppw := io.Pipe()
	partDone := make(chan error, 1)
	go func() { _, err := mp.PutPart(ctx, live, 1, ppr); partDone <- err }()
	_, _ = ppw.Write([]byte("part data"))

	// Young: nothing is removed.
	res, err := s.Sweep(ctx, artifact.SweepOptions{})
	if err != nil || res != (artifact.SweepResult{}) {
		t.Fatalf("sweep of young uploads = %+v, %v; want nothing removed", res, err)
	}
	// Old: the leftovers go, the in-flight ones stay.
	res, err = s.Sweep(ctx, artifact.SweepOptions{Now: later})
	if err != nil || res.Temps != 2 || res.Bytes != 2<<20 || res.Stagings != 1 {
		t.Fatalf("sweep = %+v, %v; want 2 temporary files (2 MiB) and 1 staging area", res, err)
	}
	if left := tempFiles(t, dir); len(left) != 2 { // the in-flight one and the foreign one
		t.Fatalf("temporary files after the sweep: %v", left)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("a file that is not an upload temporary was removed: %v", err)
	}
	if _, err := mp.PutPart(ctx, abandoned, 2, strings.NewReader("late")); !artifact.IsNotFound(err) {
		t.Fatalf("part of the swept upload = %v, want not found", err)
	}
	// The in-flight uploads finish normally.
	_, _ = pw.Write([]byte("end"))
	pw.Close()
	if err := <-putDone; err != nil {
		t.Fatalf("in-flight Put after the sweep: %v", err)
	}
	ppw.Close()
	if err := <-partDone; err != nil {
		t.Fatalf("in-flight part after the sweep: %v", err)
	}
	if o, err := s.Open(ctx, "1/r1/artifacts/big.bin"); err != nil || o.Info().Size != 4099 {
		t.Fatalf("in-flight upload after the sweep: %v", err)
	} else {
		o.Close()
	}
	res, err = s.Sweep(ctx, artifact.SweepOptions{Now: later})
	if err != nil || res.Stagings != 1 || res.Temps != 0 {
		t.Fatalf("second sweep = %+v, %v; want the finished live staging area only", res, err)
	}
}

// TestStartSweeperSweepsAtStartup: the sweeper's first sweep runs at
// once, not an interval later.
func TestStartSweeperSweepsAtStartup(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "1/r/artifacts/.mlflow-upload-aabbccddeeff0011")
	_ = os.MkdirAll(filepath.Dir(stale), 0o750)
	_ = os.WriteFile(stale, []byte("x"), 0o640)
	old := time.Now().Add(-2 * artifact.DefaultTempAge)
	_ = os.Chtimes(stale, old, old)
	s, err := artifact.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := artifact.StartSweeper(s, time.Hour, artifact.SweepOptions{}, zap.NewNop())
	defer stop()
	waitFor(t, "the start-up sweep", func() bool { _, err := os.Stat(stale); return os.IsNotExist(err) })
}

// TestSweepAfterKill9: a process killed with SIGKILL in the middle of an
// upload leaves its full-size temporary file; the next server's sweep
// removes it once it is stale, and listings never show it.
func TestSweepAfterKill9(t *testing.T) {
	if dir := os.Getenv("SWEEP_KILL_CHILD_DIR"); dir != "" {
		s, err := artifact.NewLocal(dir)
		if err != nil {
			os.Exit(2)
		}
		r, w := io.Pipe()
		go func() {
			_, _ = w.Write(bytes.Repeat([]byte("z"), 3<<20))
			fmt.Println("written")
			select {} // never finishes: the parent kills us
		}()
		_ = s.Put(context.Background(), "1/r/artifacts/huge.bin", r)
		os.Exit(3)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepAfterKill9$")
	cmd.Env = append(os.Environ(), "SWEEP_KILL_CHILD_DIR="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, _ = out.Read(buf)
	runDir := filepath.Join(dir, "1/r/artifacts")
	waitFor(t, "the child's full temporary file", func() bool {
		f := tempFiles(t, runDir)
		if len(f) != 1 {
			return false
		}
		fi, err := os.Stat(f[0])
		return err == nil && fi.Size() == 3<<20
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if f := tempFiles(t, runDir); len(f) != 1 {
		t.Fatalf("after kill -9: %v, want the orphaned temporary file", f)
	}

	s, err := artifact.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if files, _ := s.List(context.Background(), "1/r/artifacts"); len(files) != 0 {
		t.Fatalf("listing shows %v", files)
	}
	if res, err := s.Sweep(context.Background(), artifact.SweepOptions{}); err != nil || res.Temps != 0 {
		t.Fatalf("sweep of a young orphan = %+v, %v; want it kept (it might be another server's)", res, err)
	}
	res, err := s.Sweep(context.Background(), artifact.SweepOptions{Now: later})
	if err != nil || res.Temps != 1 || res.Bytes != 3<<20 {
		t.Fatalf("sweep = %+v, %v; want the 3 MiB orphan removed", res, err)
	}
	if f := tempFiles(t, dir); len(f) != 0 {
		t.Fatalf("left: %v", f)
	}
}
