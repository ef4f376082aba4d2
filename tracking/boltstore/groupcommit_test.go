package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
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
	c := newCommitter(db, 16)
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

// holdCommitter starts a write that blocks the committer until the
// returned release is called, so that the writes started meanwhile queue
// up behind it. waitQueued(n) returns once n writes are queued.
func holdCommitter(t *testing.T, s *Store) (waitQueued func(n int), release func()) {
	t.Helper()
	started, unblock, finished := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		finished <- s.commits.run(func(*bolt.Tx) error {
			once.Do(func() { close(started) })
			<-unblock
			return nil
		})
	}()
	<-started
	waitQueued = func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s.commits.mu.Lock()
			queued := len(s.commits.pending)
			s.commits.mu.Unlock()
			if queued >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d writes queued behind the held commit", queued, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	release = func() {
		t.Helper()
		close(unblock)
		if err := <-finished; err != nil {
			t.Fatal(err)
		}
	}
	return waitQueued, release
}

// TestGroupCommitSharesCommitsAndIsolatesFailures queues concurrent
// create-runs and log-batches behind a commit in progress, some of them
// failing (unknown or deleted experiment, changed param value), and checks
// that all the queued writes that can succeed are committed together in
// one transaction (one commit, one pair of fsyncs, for all of them), that
// each failing write gets its own MLflow error and leaves nothing behind,
// and that the failures neither fail nor lose the other writes.
func TestGroupCommitSharesCommitsAndIsolatesFailures(t *testing.T) {
	s, _ := openTest(t)
	exp := mkExp(t, s, "group")
	gone := mkExp(t, s, "gone")
	ok(t, s.DeleteExperiment(bg, gone))
	logged := mkRun(t, s, exp, "logged", 1)
	ok(t, s.LogBatch(bg, logged, tracking.Batch{Params: []tracking.Param{{Key: "lr", Value: "0.1"}}}))

	obs := &recordingObserver{}
	s.SetCommitObserver(obs)
	waitQueued, release := holdCommitter(t, s)

	const n = 48
	type result struct {
		run *tracking.Run
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 8 {
			case 3: // unknown experiment
				results[i].run, results[i].err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: "999", RunName: "x"})
			case 5: // deleted experiment
				results[i].run, results[i].err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: gone, RunName: "x"})
			case 6: // param conflict
				results[i].err = s.LogBatch(bg, logged, tracking.Batch{
					Metrics: []tracking.Metric{{Key: fmt.Sprint("bad", i), Value: 1, Timestamp: 1}},
					Params:  []tracking.Param{{Key: "lr", Value: "0.2"}}})
			case 7: // a good log-batch
				results[i].err = s.LogBatch(bg, logged, tracking.Batch{
					Metrics: []tracking.Metric{{Key: fmt.Sprint("m", i), Value: float64(i), Timestamp: 1}}})
			default:
				results[i].run, results[i].err = s.CreateRun(bg, tracking.CreateRun{ExperimentID: exp, RunName: fmt.Sprint("r", i),
					StartTime: int64(i), Tags: []tracking.Tag{{Key: "i", Value: fmt.Sprint(i)}}})
			}
		}()
	}
	waitQueued(n)
	release()
	wg.Wait()

	bad := 0
	for i, r := range results {
		switch i % 8 {
		case 3:
			bad++
			if !tracking.IsCode(r.err, tracking.ResourceDoesNotExist) || r.run != nil {
				t.Errorf("write %d (unknown experiment): %v, %v; want RESOURCE_DOES_NOT_EXIST", i, r.run, r.err)
			}
		case 5:
			bad++
			if !tracking.IsCode(r.err, tracking.InvalidParameterValue) || r.run != nil {
				t.Errorf("write %d (deleted experiment): %v, %v; want INVALID_PARAMETER_VALUE", i, r.run, r.err)
			}
		case 6:
			bad++
			if !tracking.IsCode(r.err, tracking.InvalidParameterValue) {
				t.Errorf("write %d (param conflict): %v; want INVALID_PARAMETER_VALUE", i, r.err)
			}
		case 7:
			if r.err != nil {
				t.Errorf("write %d (log-batch): %v", i, r.err)
			}
		default:
			if r.err != nil {
				t.Errorf("write %d (create-run): %v", i, r.err)
				continue
			}
			got, err := s.GetRun(bg, r.run.Info.RunID)
			if err != nil || got.Info.RunName != fmt.Sprint("r", i) || tagMap(got.Data.Tags)["i"] != fmt.Sprint(i) {
				t.Errorf("write %d: run %s not stored as created: %+v, %v", i, r.run.Info.RunID, got, err)
			}
		}
	}
	run, err := s.GetRun(bg, logged)
	ok(t, err)
	metrics := map[string]bool{}
	for _, m := range run.Data.Metrics {
		metrics[m.Key] = true
	}
	for i := 7; i < n; i += 8 {
		if !metrics[fmt.Sprint("m", i)] {
			t.Errorf("log-batch %d: metric m%d lost", i, i)
		}
	}
	for i := 6; i < n; i += 8 {
		if metrics[fmt.Sprint("bad", i)] {
			t.Errorf("log-batch %d failed, yet its metric bad%d was stored", i, i)
		}
	}
	if len(run.Data.Params) != 1 || run.Data.Params[0].Value != "0.1" {
		t.Errorf("params after conflicting batches: %+v, want lr=0.1 only", run.Data.Params)
	}

	// The held write committed alone; everything queued behind it that
	// could succeed shared the next commit; the failures committed nothing.
	obs.mu.Lock()
	groups := append([]int(nil), obs.groups...)
	obs.mu.Unlock()
	if want := []int{1, n - bad}; fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Errorf("commit groups %v, want %v (%d writes queued, %d failing)", groups, want, n, bad)
	}
}

// TestOrderedRunIDs checks create-run ids: 32 lower-case hex characters,
// UUID version 7 with the RFC 4122 variant, the creation time in
// milliseconds in the first 48 bits, and later runs sorting after earlier
// ones (what keeps a group of new runs on a few pages).
func TestOrderedRunIDs(t *testing.T) {
	t0 := time.UnixMilli(1765000000123)
	id, err := newOrderedRunID(t0)
	ok(t, err)
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("id %q: want 32 lower-case hex characters", id)
	}
	if ms, err := strconv.ParseInt(id[:12], 16, 64); err != nil || ms != t0.UnixMilli() {
		t.Errorf("id %q: time field %d, want %d", id, ms, t0.UnixMilli())
	}
	if id[12] != '7' || !strings.ContainsRune("89ab", rune(id[16])) {
		t.Errorf("id %q: want version 7 and variant 10xx", id)
	}
	seen := map[string]bool{}
	prev := ""
	for i := range 1000 {
		id, err := newOrderedRunID(t0.Add(time.Duration(i) * time.Millisecond))
		ok(t, err)
		if id <= prev || seen[id] {
			t.Fatalf("id %q (ms +%d) does not sort after %q", id, i, prev)
		}
		seen[id] = true
		prev = id
	}

	// CreateRun stamps its ids with the creation time.
	s, _ := openTest(t)
	exp := mkExp(t, s, "ordered")
	prev = ""
	for i := range 3 {
		before := time.Now().UnixMilli()
		id := mkRun(t, s, exp, "r", int64(i))
		after := time.Now().UnixMilli()
		ms, err := strconv.ParseInt(id[:12], 16, 64)
		if err != nil || ms < before || ms > after || id <= prev {
			t.Errorf("run %d: id %s (time field %d), created between %d and %d after %s", i, id, ms, before, after, prev)
		}
		prev = id
		time.Sleep(2 * time.Millisecond)
	}
}

// primeCommitter makes c believe its last cycle, which ended ago, had
// expect writers and a commit of lastDur, and lets a gathering wait last up
// to maxWait.
func primeCommitter(c *committer, expect int, lastDur, ago, maxWait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expect, c.lastDur, c.lastEnd, c.maxWait = expect, lastDur, time.Now().Add(-ago), maxWait
}

// putKey is a write of key k into bucket "b".
func putKey(k string) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		return b.Put([]byte(k), []byte("v"))
	}
}

// TestCommitterGathersExpectedWriters checks that after a cycle of three
// writers, a leader waits for the other two to come back and commits the
// three together, ending the wait on their arrival (the cap on the wait
// here is an hour: waiting for the timer would hang the test).
func TestCommitterGathersExpectedWriters(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.bolt"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := newCommitter(db, 16)
	obs := &recordingObserver{}
	var o CommitObserver = obs
	c.observer.Store(&o)
	primeCommitter(c, 3, 2*time.Hour, 0, time.Hour)

	errs := make(chan error, 3)
	go func() { errs <- c.run(putKey("first")) }()
	// The first writer leads and gathers; the others come back later.
	for deadline := time.Now().Add(30 * time.Second); ; {
		c.mu.Lock()
		waiting := c.waiting
		c.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first writer never waited for the writers expected back")
		}
		time.Sleep(time.Millisecond)
	}
	go func() { errs <- c.run(putKey("second")) }()
	go func() { errs <- c.run(putKey("third")) }()
	timeout := time.After(30 * time.Second)
	for range 3 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatal("writes not committed: the leader did not stop gathering when the expected writers arrived")
		}
	}
	if got := fmt.Sprint(obs.groups); got != "[3]" {
		t.Errorf("commit groups %s, want the three writes in one commit [3]", got)
	}
}

// TestCommitterGatherBounds checks when a leader does not wait: a lone
// writer after a cycle of one, a writer after a cycle that ended longer ago
// than a commit takes, and (waiting, but only until the bound) a writer
// whose expected companions never come.
func TestCommitterGatherBounds(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.bolt"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := newCommitter(db, 16)
	run := func(name string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- c.run(putKey(name)) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the write waited for writers that were not expected", name)
		}
	}
	primeCommitter(c, 1, 2*time.Hour, 0, time.Hour)
	run("lone writer")
	primeCommitter(c, 8, time.Minute, 2*time.Minute, time.Hour)
	run("stale cycle")
	// Expected companions that never come: the wait ends at the bound
	// (half the last commit, here 10ms) and the write commits alone.
	primeCommitter(c, 8, 20*time.Millisecond, 0, time.Hour)
	run("bounded wait")
	c.mu.Lock()
	expect := c.expect
	c.mu.Unlock()
	if expect != 1 {
		t.Errorf("after a commit of one write with nothing queued, expecting %d writers, want 1", expect)
	}
}
