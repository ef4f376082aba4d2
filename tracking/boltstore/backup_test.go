package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// TestBackupFileUnderWrites: writers keep committing while BackupFile
// runs; the copy passes the check and holds every run acknowledged before
// the backup started.
func TestBackupFileUnderWrites(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "e")
	var acked []string
	for i := 0; i < 200; i++ {
		id := mkRun(t, s, exp, fmt.Sprint("pre", i), int64(i))
		ok(t, s.LogBatch(bg, id, tracking.Batch{Metrics: []tracking.Metric{{Key: "m", Value: 1, Timestamp: 1, Step: int64(i)}}}))
		acked = append(acked, id)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var during atomic.Int64
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, StartTime: int64(i)})
				if err != nil {
					t.Error(err)
					return
				}
				_ = s.LogBatch(bg, r.Info.RunID, tracking.Batch{Metrics: []tracking.Metric{{Key: "m", Value: 2, Timestamp: 1}}})
				during.Add(1)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	dst := filepath.Join(t.TempDir(), "backup.db")
	rep, err := BackupFile(bg, s.DB(), dst)
	close(stop)
	wg.Wait()
	ok(t, err)
	if during.Load() == 0 {
		t.Fatal("no write ran during the backup")
	}
	if rep.SchemaVersion != schemaVersion || rep.Counts["run"] < len(acked) || rep.Path != dst {
		t.Fatalf("report %+v", rep)
	}
	copyStore, err := Open(dst, Options{})
	ok(t, err)
	defer copyStore.Close()
	for _, id := range acked {
		r, err := copyStore.GetRun(bg, id)
		ok(t, err)
		if len(r.Data.Metrics) != 1 {
			t.Fatalf("run %s lost its metric in the copy", id)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".backup.db.tmp-*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

// TestBackupFileFailureKeepsOld: a snapshot that fails (or is not a
// database) never replaces the existing backup.
func TestBackupFileFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "b.db")
	ok(t, os.WriteFile(dst, []byte("old"), 0o600))
	_, err := WriteFileAtomic(bg, dst, func(w io.Writer) error {
		_, err := w.Write([]byte("not a bbolt file, long enough to be read as garbage pages................"))
		return err
	})
	if err == nil {
		t.Fatal("garbage verified")
	}
	_, err = WriteFileAtomic(bg, dst, func(io.Writer) error { return errors.New("stream broke") })
	if err == nil {
		t.Fatal("a failed stream succeeded")
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatalf("dst = %q", b)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".b.db.tmp-*")); len(m) != 0 {
		t.Fatalf("temporary files left: %v", m)
	}
}

func TestSnapshotCancelled(t *testing.T) {
	s, _ := openTest(t)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := Snapshot(ctx, s.DB(), io.Discard, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// TestCompactFile: after runs are hard-deleted the file keeps its size;
// compaction shrinks it, keeps every key, and refuses a locked file.
func TestCompactFile(t *testing.T) {
	s, path := openTest(t)
	exp := mkExp(t, s, "e")
	keep := mkRun(t, s, exp, "keep", 0)
	fillRun(t, s, exp, keep, 100)
	for i := 0; i < 30; i++ {
		id := mkRun(t, s, exp, fmt.Sprint("r", i), int64(i))
		fillRun(t, s, exp, id, 3000)
		ok(t, s.DeleteRun(bg, id))
		ok(t, s.HardDeleteRun(bg, id))
	}
	if _, err := CompactFile(bg, path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("compacting an open store: %v", err)
	}
	ok(t, s.Close())
	rep, err := CompactFile(bg, path, time.Second)
	ok(t, err)
	if rep.After >= rep.Before/2 {
		t.Fatalf("compaction %d -> %d bytes", rep.Before, rep.After)
	}
	fi, err := os.Stat(path)
	ok(t, err)
	if fi.Size() != rep.After {
		t.Fatalf("file is %d bytes, report says %d", fi.Size(), rep.After)
	}
	s2, err := Open(path, Options{})
	ok(t, err)
	defer s2.Close()
	r, err := s2.GetRun(bg, keep)
	ok(t, err)
	if len(r.Data.Params) != 1 || len(r.Data.Metrics) != 1 {
		t.Fatalf("kept run after compaction: %+v", r.Data)
	}
	var n int
	ok(t, s2.MetricHistory(bg, keep, "loss", 1000, func(ms []tracking.Metric) error { n += len(ms); return nil }))
	if n != 100 {
		t.Fatalf("history has %d points after compaction", n)
	}
}

// TestVerifyFileCountsIndexEntries: the run index (ridx) packs many
// entries into each bbolt key, so VerifyFile and BackupFile report its
// entries, not its blocks; a block that does not decode fails the check.
func TestVerifyFileCountsIndexEntries(t *testing.T) {
	s, path := openTest(t)
	exp := mkExp(t, s, "e")
	for i := 0; i < 40; i++ {
		id := mkRun(t, s, exp, fmt.Sprint("r", i), int64(i))
		ok(t, s.LogBatch(bg, id, tracking.Batch{
			Metrics: []tracking.Metric{{Key: "loss", Value: float64(i), Timestamp: 1}, {Key: "acc", Value: 1, Timestamp: 1}},
			Params:  []tracking.Param{{Key: "lr", Value: fmt.Sprint(i)}, {Key: "depth", Value: "3"}},
			Tags:    []tracking.Tag{{Key: "team", Value: "a"}},
		}))
	}
	var entries, blocks int
	ok(t, s.DB().View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bRunIdx)
		blocks = bk.Stats().KeyN
		x := newIxCursor(bk)
		for k, _ := x.First(); k != nil; k, _ = x.Next() {
			entries++
		}
		return x.err
	}))
	if blocks == 0 || entries <= 2*blocks {
		t.Fatalf("setup: %d index entries in %d blocks; the test needs packed blocks", entries, blocks)
	}
	rep, err := BackupFile(bg, s.DB(), filepath.Join(t.TempDir(), "backup.db"))
	ok(t, err)
	if rep.Counts["ridx"] != entries {
		t.Fatalf("backup counts %d ridx records, want its %d entries (%d blocks)", rep.Counts["ridx"], entries, blocks)
	}

	// A block whose value does not decode: the check fails and names it.
	ok(t, s.DB().Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bRunIdx).Cursor().First()
		return tx.Bucket(bRunIdx).Put(bytes.Clone(k), []byte{0xff})
	}))
	ok(t, s.Close())
	if _, err := VerifyFile(bg, path); err == nil || !strings.Contains(err.Error(), "corrupt run index") {
		t.Fatalf("verify of a corrupt index block: %v", err)
	}
}
