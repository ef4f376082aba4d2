package boltstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// TestIxBlocks: random inserts, moves and removes into a packed index (blocks
// split on the way) keep exactly the entries of a reference set, in
// order, and its cursor seeks and walks both ways like a bbolt cursor
// over one key per entry.
func TestIxBlocks(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ix.db"), 0o600, nil)
	ok(t, err)
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	ref := map[string]bool{}
	// Entries share prefixes (few "indexes", few values) like ridx's.
	gen := func() []byte {
		e := fmt.Appendf(nil, "ix%d/v%03d/", rng.IntN(3), rng.IntN(200))
		for range rng.IntN(12) {
			e = append(e, byte(rng.IntN(4)))
		}
		return e
	}
	for round := range 30 {
		ok(t, db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("ix"))
			if err != nil {
				return err
			}
			for range 300 {
				e := gen()
				if round > 5 && rng.IntN(4) == 0 {
					// Move an existing entry (a changed latest value):
					// often to a neighbour in the same block.
					var old []byte
					for k := range ref {
						old = []byte(k)
						break
					}
					if old == nil {
						continue
					}
					if rng.IntN(2) == 0 {
						e = append(bytes.Clone(old), byte(rng.IntN(4)))
					}
					delete(ref, string(old))
					ref[string(e)] = true
					if err := ixRemove(bk, old); err != nil {
						return err
					}
					if err := ixInsert(bk, e); err != nil {
						return err
					}
					continue
				}
				if round > 10 && rng.IntN(3) == 0 {
					// Remove an existing entry, or a missing one.
					if rng.IntN(2) == 0 {
						for k := range ref {
							e = []byte(k)
							break
						}
					}
					delete(ref, string(e))
					if err := ixRemove(bk, e); err != nil {
						return err
					}
					continue
				}
				ref[string(e)] = true
				if err := ixInsert(bk, e); err != nil {
					return err
				}
			}
			return nil
		}))
		want := make([]string, 0, len(ref))
		for k := range ref {
			want = append(want, k)
		}
		slices.Sort(want)
		ok(t, db.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte("ix"))
			got, err := ixEntries(bk)
			if err != nil {
				return err
			}
			if len(got) != len(want) {
				t.Fatalf("round %d: %d entries, want %d", round, len(got), len(want))
			}
			for i := range got {
				if string(got[i]) != want[i] {
					t.Fatalf("round %d: entry %d = %q, want %q", round, i, got[i], want[i])
				}
			}
			if n := bk.Stats().KeyN; round == 29 && n*4 > len(want) {
				t.Errorf("%d blocks for %d entries: not packed", n, len(want))
			}
			// Backwards from the end.
			x := newIxCursor(bk)
			i := len(want) - 1
			for k, _ := x.Last(); k != nil; k, _ = x.Prev() {
				if i < 0 || string(k) != want[i] {
					t.Fatalf("round %d: backward entry %d = %q", round, i, k)
				}
				i--
			}
			if i != -1 {
				t.Fatalf("round %d: backward walk stopped at %d", round, i)
			}
			// Seeks: to entries, between them, before and after all.
			for range 200 {
				probe := gen()
				j, _ := slices.BinarySearch(want, string(probe))
				x := newIxCursor(bk)
				k, _ := x.Seek(probe)
				if j == len(want) {
					if k != nil {
						t.Fatalf("seek %q past the end: %q", probe, k)
					}
					continue
				}
				if string(k) != want[j] {
					t.Fatalf("seek %q = %q, want %q", probe, k, want[j])
				}
				if k, _ := x.Next(); j+1 < len(want) && string(k) != want[j+1] || j+1 == len(want) && k != nil {
					t.Fatalf("next after seek %q = %q", probe, k)
				}
				x.Seek(probe)
				if k, _ := x.Prev(); j > 0 && string(k) != want[j-1] || j == 0 && k != nil {
					t.Fatalf("prev after seek %q = %q", probe, k)
				}
			}
			for _, p := range [][]byte{nil, {0}} {
				if k, _ := newIxCursor(bk).Seek(p); string(k) != want[0] {
					t.Fatalf("seek %q = %q, want the first entry", p, k)
				}
			}
			if k, _ := newIxCursor(bk).Seek([]byte("ix\xff")); k != nil {
				t.Fatalf("seek past every entry = %q", k)
			}
			return nil
		}))
	}
}

// TestIxBlockCorrupt: a block whose value does not decode is reported as
// an error by the cursor and by writes, never a panic.
func TestIxBlockCorrupt(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "ix.db"), 0o600, nil)
	ok(t, err)
	defer db.Close()
	ok(t, db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucket([]byte("ix"))
		if err != nil {
			return err
		}
		for _, v := range [][]byte{{0x80}, {0, 5, 'a'}, {9, 1, 'a'}} {
			ok(t, bk.Put([]byte("k"), v))
			x := newIxCursor(bk)
			if k, _ := x.First(); k != nil || x.err == nil {
				t.Errorf("value %x: first = %q, err %v", v, k, x.err)
			}
			if err := ixInsert(bk, []byte("kz")); err == nil {
				t.Errorf("value %x: insert into a corrupt block succeeded", v)
			}
			if err := ixRemove(bk, []byte("kz")); err == nil {
				t.Errorf("value %x: remove from a corrupt block succeeded", v)
			}
		}
		// A schema-3 entry (empty value) is a block of one.
		ok(t, bk.Put([]byte("k"), nil))
		ok(t, ixInsert(bk, []byte("kb")))
		got, err := ixEntries(bk)
		ok(t, err)
		if !bytes.Equal(bytes.Join(got, []byte(",")), []byte("k,kb")) {
			t.Errorf("entries %q", got)
		}
		return nil
	}))
}

// TestIndexMigrateUnpacked: a version-3 or version-4 file (one ridx key
// per entry) is migrated on Open: its index is dropped, searches scan (and
// answer the same) until the background build has indexed every run
// again, and the rebuilt index holds the same entries, packed into blocks.
func TestIndexMigrateUnpacked(t *testing.T) {
	for _, v := range []uint64{3, 4} {
		t.Run(fmt.Sprint("version", v), func(t *testing.T) { testIndexMigrateUnpacked(t, v) })
	}
}

func testIndexMigrateUnpacked(t *testing.T, version uint64) {
	s, path := openTest(t)
	rng := rand.New(rand.NewPCG(9, 9))
	exps, _ := seedRandom(t, s, rng, 60)
	want := ridxKeys(t, s)
	queries := []struct{ filter, order string }{
		{"metrics.m0 >= 0", "metrics.m0 DESC"},
		{"params.p0 = 'a'", "start_time ASC"},
		{"", "tags.t0 ASC"},
	}
	wantPages := make([]string, len(queries))
	qs := make([]tracking.RunQuery, len(queries))
	for i, qq := range queries {
		f, err := search.ParseRunFilter(qq.filter)
		ok(t, err)
		ob, err := search.ParseRunOrderBy([]string{qq.order})
		ok(t, err)
		qs[i] = tracking.RunQuery{ExperimentIDs: exps, Filter: f, OrderBy: ob, MaxResults: 7, ViewType: tracking.AllViews}
		p, _ := pages(t, s, qs[i])
		wantPages[i] = fmt.Sprint(p)
	}
	ok(t, s.Close())

	// Write the index back in the old layout: one key per entry.
	db, err := bolt.Open(path, 0o600, nil)
	ok(t, err)
	ok(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bRunIdx); err != nil {
			return err
		}
		bk, err := tx.CreateBucket(bRunIdx)
		if err != nil {
			return err
		}
		for _, k := range want {
			if err := bk.Put([]byte(k), nil); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put([]byte("version"), u64(version))
	}))
	ok(t, db.Close())

	autoIndex = false
	t.Cleanup(func() { autoIndex = true })
	s, err = Open(path, Options{})
	ok(t, err)
	defer s.Close()
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get([]byte("version")); u64be(v) != schemaVersion {
			t.Errorf("version %x after open", v)
		}
		if indexReady(tx) {
			t.Error("unpacked index still marked ready")
		}
		if n := tx.Bucket(bRunIdx).Stats().KeyN; n != 0 {
			t.Errorf("unpacked index kept: %d keys", n)
		}
		return nil
	}))
	for i, q := range qs {
		if got, _ := pages(t, s, q); fmt.Sprint(got) != wantPages[i] {
			t.Errorf("query %v during the migration: %v, want %v", queries[i], got, wantPages[i])
		}
	}
	ok(t, s.buildIndex(bg, -1))
	if got := ridxKeys(t, s); !slices.Equal(got, want) {
		t.Fatalf("rebuilt index has %d entries, the unpacked one had %d", len(got), len(want))
	}
	ok(t, s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bRunIdx).Stats().KeyN; n*4 > len(want) {
			t.Errorf("rebuilt index not packed: %d blocks for %d entries", n, len(want))
		}
		return nil
	}))
	for i, q := range qs {
		if got, _ := pages(t, s, q); fmt.Sprint(got) != wantPages[i] {
			t.Errorf("query %v after the build: %v, want %v", queries[i], got, wantPages[i])
		}
	}
}
