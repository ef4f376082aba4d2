package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCommitterIsolatesFailures runs many concurrent writes, some failing,
// and checks each failing write reports its own error and leaves nothing,
// while every other write is committed.
func TestCommitterIsolatesFailures(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.bolt"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := &committer{db: db, maxSize: 16}
	bucket := []byte("b")
	errBad := errors.New("bad write")
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.run(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists(bucket)
				if err != nil {
					return err
				}
				if err := b.Put(fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
					return err
				}
				if i%7 == 3 {
					return errBad // after writing: the write must not survive
				}
				if i%11 == 5 {
					panic("boom")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	_ = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for i := range n {
			got := b.Get(fmt.Appendf(nil, "k%03d", i)) != nil
			switch {
			case i%7 == 3:
				if !errors.Is(errs[i], errBad) || got {
					t.Errorf("write %d: err %v, stored %v; want errBad and nothing stored", i, errs[i], got)
				}
			case i%11 == 5:
				if errs[i] == nil || got {
					t.Errorf("write %d: err %v, stored %v; want the panic as an error and nothing stored", i, errs[i], got)
				}
			default:
				if errs[i] != nil || !got {
					t.Errorf("write %d: err %v, stored %v; want committed", i, errs[i], got)
				}
			}
		}
		return nil
	})
}
