package boltstore

import "time"

// CommitObserver is told about every write transaction a Store commits,
// for operational metrics. ObserveCommit receives how many write calls
// were committed together in one group commit (see committer) and how long
// the transaction took, fsync included. Transactions that did not commit
// (a call failed and the transaction was rolled back, or the commit itself
// failed) are not reported. ObserveCommit runs on the committing goroutine
// while other writers wait, so it must be quick and must not write to the
// store.
type CommitObserver interface {
	ObserveCommit(calls int, d time.Duration)
}

// SetCommitObserver makes o the observer of the store's commits, replacing
// any previous one; nil stops observing. It may be called at any time,
// also while writes are in flight.
func (s *Store) SetCommitObserver(o CommitObserver) {
	if o == nil {
		s.commits.observer.Store(nil)
		return
	}
	s.commits.observer.Store(&o)
}

// observe reports a transaction of calls write calls that started at start
// to the observer, if there is one and the transaction committed.
func (c *committer) observe(calls int, start time.Time, err error) {
	if err != nil {
		return
	}
	if o := c.observer.Load(); o != nil {
		(*o).ObserveCommit(calls, time.Since(start))
	}
}
