package boltstore

import (
	"slices"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// lastTxID is the id of the last committed write transaction (it grows by
// one per commit, through the committer or not).
func lastTxID(t testing.TB, db *bolt.DB) int {
	t.Helper()
	var id int
	ok(t, db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }))
	return id
}

func owners(m map[string]int) []string {
	var out []string
	for k := range m {
		if k[0] != '(' {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestCreateRunWritePath: a create-run is one commit that rewrites only
// the run, its tags, its experiment's run list and the run index (plus
// bbolt's root and freelist pages), and a group of concurrent create-runs
// shares one commit; a log-batch of metrics rewrites only the metric
// buckets and the index. A write that adds a commit or touches another
// bucket (a counter, the experiment record) costs every create-run more
// pages to fsync, and fails here.
func TestCreateRunWritePath(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "runs")
	for i := 0; i < 300; i++ {
		ok(t, createRandomRun(s, exp))
	}
	for i := 0; i < 20; i++ { // the metric buckets outgrow a page
		ok(t, s.LogBatch(bg, mkRun(t, s, exp, "m", 0), tracking.Batch{Metrics: tenMetrics(int64(i))}))
	}
	var cc commitCounter
	s.SetCommitObserver(&cc)
	defer s.SetCommitObserver(nil)

	tx0 := lastTxID(t, s.db)
	var runID string
	pages := pagesWritten(t, s.db, func() {
		r, err := s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, UserID: "u", RunName: "one", StartTime: 5,
			Tags: []tracking.Tag{{Key: tracking.TagRunName, Value: "one"}, {Key: "mlflow.user", Value: "u"}, {Key: "team", Value: "a"}}})
		ok(t, err)
		runID = r.Info.RunID
	})
	if got := lastTxID(t, s.db) - tx0; got != 1 || cc.commits.Load() != 1 {
		t.Fatalf("create-run: %d commits (%d observed), want 1", got, cc.commits.Load())
	}
	want := []string{"exprun", "freelist", "ridx", "root", "run", "tag"}
	if got := owners(pages); !slices.Equal(got, want) {
		t.Errorf("create-run rewrote pages of %v, want %v (%s)", got, want, fmtPages(pages))
	}

	tx0 = lastTxID(t, s.db)
	pages = pagesWritten(t, s.db, func() {
		oneGroup(t, s, 20, func(int) { ok(t, createRandomRun(s, exp)) })
	})
	if got := lastTxID(t, s.db) - tx0; got != 1 {
		t.Fatalf("20 concurrent create-runs: %d commits, want 1", got)
	}
	if got := owners(pages); !slices.Equal(got, want) {
		t.Errorf("20 create-runs rewrote pages of %v, want %v (%s)", got, want, fmtPages(pages))
	}

	tx0 = lastTxID(t, s.db)
	pages = pagesWritten(t, s.db, func() {
		ok(t, s.LogBatch(bg, runID, tracking.Batch{Metrics: tenMetrics(1)}))
	})
	if got := lastTxID(t, s.db) - tx0; got != 1 {
		t.Fatalf("log-batch: %d commits, want 1", got)
	}
	want = []string{"freelist", "latest", "mhist", "ridx", "root"}
	if got := owners(pages); !slices.Equal(got, want) {
		t.Errorf("log-batch rewrote pages of %v, want %v (%s)", got, want, fmtPages(pages))
	}

	// Concurrent writers: every commit is one the committer made (no
	// write bypasses the group commit).
	tx0, c0 := lastTxID(t, s.db), cc.commits.Load()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				if err := createRandomRun(s, exp); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	commits := int64(lastTxID(t, s.db) - tx0)
	if observed := cc.commits.Load() - c0; commits != observed {
		t.Fatalf("160 create-runs from 16 writers: %d commits, %d observed by the committer", commits, observed)
	}
	t.Logf("160 create-runs from 16 writers: %d commits", commits)
}
