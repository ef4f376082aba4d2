package boltstore

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// oneGroup runs op(i) for every i < n, each from its own goroutine, and
// makes all n calls share one group commit: it holds the committer busy
// until the n calls are queued, then lets the first of them lead.
func oneGroup(tb testing.TB, s *Store, n int, op func(i int)) {
	tb.Helper()
	c := s.commits
	c.mu.Lock()
	if c.busy || len(c.pending) > 0 {
		c.mu.Unlock()
		tb.Fatal("oneGroup: other writes in flight")
	}
	c.busy = true
	c.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); op(i) }()
	}
	for {
		c.mu.Lock()
		if len(c.pending) == n {
			c.expect = 0 // nothing to gather
			close(c.pending[0].promote)
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
	}
	wg.Wait()
}

// Words of generated run names, like the server's for a create-run
// without a name (adjective-noun-number): names land at random places of
// the run-name indexes, as they do in production.
var (
	nameAdjs  = strings.Fields("able bold calm dark eager fast glad huge icy jolly keen lazy mild neat odd pale")
	nameNouns = strings.Fields("ant bee cat dog eel fox gnu hen ibis jay kiwi lynx mole newt owl pig")
)

func randomRunName() string {
	return nameAdjs[rand.IntN(len(nameAdjs))] + "-" + nameNouns[rand.IntN(len(nameNouns))] + "-" + strconv.Itoa(rand.IntN(1000))
}

// createRandomRun is a create-run as the HTTP API makes it for a client
// that sends no name: a generated name, also as the mlflow.runName tag,
// start time now.
func createRandomRun(s *Store, exp string) error {
	name := randomRunName()
	_, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, RunName: name, StartTime: time.Now().UnixMilli(),
		Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: name}}})
	return err
}

// BenchmarkCreateRunGroupPages: one group commit of n create-runs with
// generated names into an experiment of 20,000 runs; reports the pages the
// commit wrote (all, and those of the run index), which is what its fsync
// flushes, and the commit's duration.
func BenchmarkCreateRunGroupPages(b *testing.B) {
	s, _ := openTest(b)
	exp := mkExp(b, s, "runs")
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= 20000 {
				if err := createRandomRun(s, exp); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, n := range []int{1, 8, 20, 64} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			var pages, ridx, runs int
			var busy time.Duration
			var cc commitCounter
			s.SetCommitObserver(&cc)
			defer s.SetCommitObserver(nil)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				before := pageOwners(b, s.db)
				b.StartTimer()
				t0 := time.Now()
				oneGroup(b, s, n, func(int) {
					if err := createRandomRun(s, exp); err != nil {
						b.Error(err)
					}
				})
				busy += time.Since(t0)
				b.StopTimer()
				for id, owner := range pageOwners(b, s.db) {
					if _, ok := before[id]; !ok {
						pages++
						if owner == "ridx" {
							ridx++
						}
					}
				}
				runs += n
				b.StartTimer()
			}
			if got := cc.commits.Load(); got != int64(b.N) {
				b.Fatalf("%d commits for %d groups", got, b.N)
			}
			b.ReportMetric(float64(pages)/float64(b.N), "pages/commit")
			b.ReportMetric(float64(ridx)/float64(b.N), "ridx-pages/commit")
			b.ReportMetric(float64(busy.Microseconds())/1000/float64(b.N), "ms/commit")
			b.ReportMetric(float64(runs)/busy.Seconds(), "runs/s")
		})
	}
}

// BenchmarkCreateRunParallelGenerated: BenchmarkCreateRunParallel with
// generated names (what a client that sends no run name gets), the case
// of cmd/mlflow-bench's create-run, at 1, 8, 20 and 64 writers.
func BenchmarkCreateRunParallelGenerated(b *testing.B) {
	for _, writers := range []int{1, 8, 20, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, _ := openTest(b)
			exp := mkExp(b, s, "runs")
			parallelWrites(b, s, writers, func(int, int64) error { return createRandomRun(s, exp) })
		})
	}
}

// BenchmarkDiskCommitFloor: the I/O of one bbolt commit without bbolt,
// on the file system of the test's temporary directory: pages 4 KiB
// writes at scattered offsets of a 64 MiB file (as bbolt writes the pages
// of a commit, one pwrite each, wherever the freelist put them),
// fdatasync, one meta page write, fdatasync. Compare ms/commit with the
// store benchmarks' to see how much of a commit is the disk.
func BenchmarkDiskCommitFloor(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	for _, pages := range []int{1, 20, 75, 170} {
		b.Run(fmt.Sprintf("pages=%d", pages), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for p := 0; p < pages; p++ {
					if _, err := f.WriteAt(buf, int64(2+rand.IntN(size/4096-2))*4096); err != nil {
						b.Fatal(err)
					}
				}
				if err := fdatasyncFile(f); err != nil {
					b.Fatal(err)
				}
				if _, err := f.WriteAt(buf, 0); err != nil {
					b.Fatal(err)
				}
				if err := fdatasyncFile(f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/commit")
		})
	}
}
