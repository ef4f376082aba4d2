package boltstore

import (
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkIndexWriteCPU: the CPU cost of a group commit of log-batches
// without the fsync (NoSync): one transaction applying a 10-metric batch
// to each of 64 runs of one experiment (the latest values of all 640
// metrics move, so every one moves an index entry), as
// BenchmarkGroupCommit's 64 writers do. ns/op is one such transaction.
func BenchmarkIndexWriteCPU(b *testing.B) {
	s, _ := openTest(b)
	runs := make([]string, 64)
	for i := range runs {
		runs[i] = mkRun(b, s, "0", "r"+strconv.Itoa(i), int64(i))
	}
	s.db.NoSync = true
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for _, r := range runs {
				if err := logMetrics(tx, r, tenMetrics(int64(i))); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}
