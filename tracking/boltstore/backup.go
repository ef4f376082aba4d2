package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Counts is the number of records in each top-level bucket of a
// database: its keys, except in the packed run index (bucket ridx), whose
// keys are blocks of entries (ixblock.go): there it is the index entries.
type Counts map[string]int

// String lists the counts of the buckets users know, then the rest.
func (c Counts) String() string {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", n, c[n]))
	}
	return strings.Join(parts, " ")
}

// countKeys counts the records of every top-level bucket visible to tx
// (see Counts); a run index block that does not decode is an error.
func countKeys(tx *bolt.Tx) (Counts, error) {
	c := Counts{}
	err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if bytes.Equal(name, bRunIdx) {
			n, err := ixCount(b)
			if err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
			c[string(name)] = n
			return nil
		}
		c[string(name)] = b.Stats().KeyN
		return nil
	})
	return c, err
}

// SnapshotInfo describes a snapshot written by Snapshot.
type SnapshotInfo struct {
	// Size is the number of bytes written (the file size of the copy).
	Size int64
	// TxID is the id of the last transaction the snapshot contains.
	TxID int
}

// Snapshot writes a consistent copy of db to w from one read transaction
// (bbolt's Tx.WriteTo): writers are not blocked, they only keep the pages
// the snapshot still reads from being reused until it ends. start, if not
// nil, is called with the snapshot's size and transaction id before the
// first byte is written (to send a Content-Length, say).
func Snapshot(ctx context.Context, db *bolt.DB, w io.Writer, start func(SnapshotInfo) error) (SnapshotInfo, error) {
	var info SnapshotInfo
	err := db.View(func(tx *bolt.Tx) error {
		info = SnapshotInfo{Size: tx.Size(), TxID: tx.ID()}
		if start != nil {
			if err := start(info); err != nil {
				return err
			}
		}
		n, err := tx.WriteTo(ctxWriter{ctx, w})
		if err != nil {
			return err
		}
		if n != info.Size {
			return fmt.Errorf("wrote %d bytes, expected %d", n, info.Size)
		}
		return nil
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// bbolt does not wrap the writer's error.
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return info, fmt.Errorf("boltstore: snapshot: %w", err)
	}
	return info, nil
}

// ctxWriter fails writes once ctx is done, so a cancelled snapshot ends
// its read transaction promptly.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// FileReport describes a verified database file.
type FileReport struct {
	Path          string
	Size          int64
	SchemaVersion int
	TxID          int
	Counts        Counts
}

// VerifyFile opens the database file at path read-only and checks it:
// bbolt's consistency check (every page reachable once, no page both free
// and in use, keys in order), a schema version this code can open, and
// every store bucket present, every run index block readable. It returns
// the record counts per bucket (Counts).
func VerifyFile(ctx context.Context, path string) (FileReport, error) {
	rep := FileReport{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return rep, fmt.Errorf("boltstore: verify: %w", err)
	}
	rep.Size = fi.Size()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: DefaultTimeout})
	if err != nil {
		return rep, fmt.Errorf("boltstore: verify %s: open: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		rep.TxID = tx.ID()
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
			if len(errs) >= 10 {
				break
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("consistency check failed: %w", errors.Join(errs...))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		meta := tx.Bucket(bMeta)
		if meta == nil {
			return errors.New("not an mlflow store: no meta bucket")
		}
		v := meta.Get([]byte("version"))
		if len(v) != 8 || u64be(v) == 0 || u64be(v) > schemaVersion {
			return fmt.Errorf("unsupported schema version %x", v)
		}
		rep.SchemaVersion = int(u64be(v))
		if rep.SchemaVersion == schemaVersion {
			for _, name := range allBucket {
				if tx.Bucket(name) == nil {
					return fmt.Errorf("bucket %s missing", name)
				}
			}
		}
		rep.Counts, err = countKeys(tx)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("boltstore: verify %s: %w", path, err)
	}
	return rep, nil
}

// BackupFile writes a snapshot of db to the file dst: into a temporary
// file next to it (mode 0600), fsynced, verified (VerifyFile), then
// renamed over dst and the directory fsynced. On any failure dst is left
// as it was and the temporary file is removed.
func BackupFile(ctx context.Context, db *bolt.DB, dst string) (FileReport, error) {
	return WriteFileAtomic(ctx, dst, func(w io.Writer) error {
		_, err := Snapshot(ctx, db, w, nil)
		return err
	})
}

// WriteFileAtomic runs write on a temporary file next to dst, fsyncs it,
// verifies it as a database (VerifyFile) and renames it over dst. It is
// BackupFile for snapshots that come from elsewhere (the admin API).
func WriteFileAtomic(ctx context.Context, dst string, write func(io.Writer) error) (FileReport, error) {
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return FileReport{}, fmt.Errorf("boltstore: backup: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return FileReport{}, fmt.Errorf("boltstore: backup: %w", err)
	}
	if err := write(f); err != nil {
		return FileReport{}, err
	}
	if err := f.Sync(); err != nil {
		return FileReport{}, fmt.Errorf("boltstore: backup: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return FileReport{}, fmt.Errorf("boltstore: backup: close %s: %w", tmp, err)
	}
	rep, err := VerifyFile(ctx, tmp)
	if err != nil {
		return rep, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return rep, fmt.Errorf("boltstore: backup: %w", err)
	}
	ok = true
	rep.Path = dst
	return rep, syncDir(dir)
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("boltstore: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("boltstore: fsync directory %s: %w", dir, err)
	}
	return nil
}

// ErrLocked means another process (a running server) holds the database
// file's lock.
var ErrLocked = errors.New("the database file is locked by another process (is the server running?)")

// CompactReport describes a compaction.
type CompactReport struct {
	Before, After int64
	Counts        Counts
}

// CompactFile rewrites the database at path without its free pages
// (bbolt.Compact into a temporary file next to it), verifies the copy
// holds the same keys, and renames it over the original. It waits at
// most lockWait for the file lock and answers ErrLocked when a server
// holds it: compaction is offline only.
func CompactFile(ctx context.Context, path string, lockWait time.Duration) (CompactReport, error) {
	var rep CompactReport
	fi, err := os.Stat(path)
	if err != nil {
		return rep, fmt.Errorf("boltstore: compact: %w", err)
	}
	rep.Before = fi.Size()
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	if errors.Is(err, bolt.ErrTimeout) {
		return rep, fmt.Errorf("boltstore: compact %s: %w", path, ErrLocked)
	}
	if err != nil {
		return rep, fmt.Errorf("boltstore: compact: open %s: %w", path, err)
	}
	defer src.Close()
	var before Counts
	if err := src.View(func(tx *bolt.Tx) error {
		before, err = countKeys(tx)
		return err
	}); err != nil {
		return rep, fmt.Errorf("boltstore: compact: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".compact-tmp")
	_ = os.Remove(tmp) // debris of an interrupted compaction
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	dst, err := bolt.Open(tmp, fi.Mode().Perm(), &bolt.Options{Timeout: lockWait, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return rep, fmt.Errorf("boltstore: compact: create %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, src, 64<<20); err != nil {
		_ = dst.Close()
		return rep, fmt.Errorf("boltstore: compact: %w", err)
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		return rep, fmt.Errorf("boltstore: compact: fsync: %w", err)
	}
	if err := dst.Close(); err != nil {
		return rep, fmt.Errorf("boltstore: compact: close %s: %w", tmp, err)
	}
	vr, err := VerifyFile(ctx, tmp)
	if err != nil {
		return rep, err
	}
	if vr.Counts.String() != before.String() {
		return rep, fmt.Errorf("boltstore: compact: the copy differs from the original (before: %s; copy: %s)", before, vr.Counts)
	}
	// Rename while still holding the original's lock, so no server opens
	// the old file in between.
	if err := os.Rename(tmp, path); err != nil {
		return rep, fmt.Errorf("boltstore: compact: %w", err)
	}
	ok = true
	rep.After, rep.Counts = vr.Size, vr.Counts
	return rep, syncDir(filepath.Dir(path))
}
