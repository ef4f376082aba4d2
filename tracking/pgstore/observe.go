package pgstore

import (
	"strings"
	"time"
)

// TxObserver is told about every transaction a Store runs through inTx
// (every write, and the reads that need a consistent snapshot), for
// operators' metrics. It must be cheap and safe for concurrent use.
type TxObserver interface {
	// ObserveTx reports one transaction: op names it (a fixed set of
	// snake_case names such as "log_batch", "create_run"), attempts is
	// how many times it ran (more than 1 after serialization failures or
	// deadlocks), d the time from the first BEGIN to the final COMMIT or
	// rollback, committed whether it committed.
	ObserveTx(op string, attempts int, d time.Duration, committed bool)
}

// SetTxObserver makes o the observer of the store's transactions,
// replacing any previous one; nil removes it.
func (s *Store) SetTxObserver(o TxObserver) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&o)
}

// observe tells the observer, if any, about a transaction.
func (s *Store) observe(what string, attempts int, start time.Time, err error) {
	if o := s.observer.Load(); o != nil {
		(*o).ObserveTx(strings.ReplaceAll(what, " ", "_"), attempts, time.Since(start), err == nil)
	}
}
