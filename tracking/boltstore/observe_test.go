package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// recordingObserver keeps every ObserveCommit call.
type recordingObserver struct {
	mu     sync.Mutex
	groups []int
	durs   []time.Duration
}

func (o *recordingObserver) ObserveCommit(calls int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.groups = append(o.groups, calls)
	o.durs = append(o.durs, d)
}

func (o *recordingObserver) total() (commits, calls int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.groups {
		calls += n
	}
	return len(o.groups), calls
}

// TestCommitObserverCountsCommittedCalls runs concurrent writes, some
// failing, and checks the observer was told about exactly the committed
// ones, in groups no larger than the batch limit.
func TestCommitObserverCountsCommittedCalls(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.bolt"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const maxSize = 8
	c := newCommitter(db, maxSize)
	obs := &recordingObserver{}
	var o CommitObserver = obs
	c.observer.Store(&o)
	errBad := errors.New("bad write")
	const n = 120
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.run(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				if err := b.Put(fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
					return err
				}
				if i%5 == 0 {
					return errBad
				}
				return nil
			})
		}()
	}
	wg.Wait()
	commits, calls := obs.total()
	if want := n - n/5; calls != want {
		t.Errorf("observer saw %d committed calls in %d commits, want %d calls", calls, commits, want)
	}
	for i, g := range obs.groups {
		if g < 1 || g > maxSize {
			t.Errorf("commit %d: group of %d calls, want 1..%d", i, g, maxSize)
		}
		if obs.durs[i] <= 0 {
			t.Errorf("commit %d: duration %v, want > 0", i, obs.durs[i])
		}
	}
}

// TestStoreSetCommitObserver checks a Store reports its writes once an
// observer is set, and stops after SetCommitObserver(nil).
func TestStoreSetCommitObserver(t *testing.T) {
	s, _ := openTest(t)
	obs := &recordingObserver{}
	s.SetCommitObserver(obs)
	if _, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "observed"}); err != nil {
		t.Fatal(err)
	}
	commits, calls := obs.total()
	if commits < 1 || calls < 1 {
		t.Fatalf("after CreateExperiment: %d commits, %d calls observed; want at least 1", commits, calls)
	}
	s.SetCommitObserver(nil)
	if _, err := s.CreateExperiment(bg, tracking.CreateExperiment{Name: "unobserved"}); err != nil {
		t.Fatal(err)
	}
	if c2, _ := obs.total(); c2 != commits {
		t.Errorf("observer removed, yet %d more commits were reported", c2-commits)
	}
}
