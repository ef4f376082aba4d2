package boltstore

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// committer coalesces concurrent write transactions into group commits: a
// writer that finds no commit in progress leads one; writers that arrive
// while a commit is in flight queue up, and the first of them leads the
// next commit with everything queued by then. One commit (and its fsyncs)
// is thus shared by all writers that arrived during the previous one. A
// leader may also wait briefly for the writers of the last cycle to come
// back (gather), but never for a fixed delay: a lone writer commits at once
// (bbolt's db.Batch, unused here, waits MaxBatchDelay before every commit).
//
// A function that fails is taken out of its group, the group is committed
// without it, and the function is then run alone so that its error reflects
// only its own effects; functions must therefore be safe to run more than
// once (derive everything from the transaction and from inputs computed
// beforehand).
type committer struct {
	db      *bolt.DB
	maxSize int

	mu      sync.Mutex
	pending []*commitCall
	busy    bool // a leader is committing

	// Gathering (see gather), guarded by mu.
	expect  int           // writers in the last cycle: its group and those queued behind it
	lastDur time.Duration // how long the last group commit took
	lastEnd time.Time     // when it ended
	waiting bool          // a leader is gathering: arrivals signal arrived
	arrived chan struct{} // capacity 1
	maxWait time.Duration // cap on a gathering wait (maxGather)

	observer atomic.Pointer[CommitObserver] // nil: nobody is told (observe.go)
}

type commitCall struct {
	fn      func(*bolt.Tx) error
	err     error
	done    chan struct{} // closed when fn's outcome is known
	promote chan struct{} // closed when this call must lead the next commit
}

// errRetryGroup aborts a group transaction after one of its functions failed.
var errRetryGroup = errors.New("boltstore: retry group without failed function")

// run executes fn in a write transaction and returns once that transaction
// is committed (and fsynced) or fn has failed.
func (c *committer) run(fn func(*bolt.Tx) error) error {
	call := &commitCall{fn: fn, done: make(chan struct{}), promote: make(chan struct{})}
	c.mu.Lock()
	if c.waiting {
		select {
		case c.arrived <- struct{}{}:
		default:
		}
	}
	if c.busy {
		c.pending = append(c.pending, call)
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.err
		case <-call.promote:
			// Lead the next group, which starts with this call.
		}
	} else {
		c.busy = true
		c.pending = append(c.pending, call)
		c.mu.Unlock()
	}
	c.lead()
	<-call.done
	return call.err
}

// lead commits one group of queued calls, then hands leadership to the
// first call still queued (or releases it).
func (c *committer) lead() {
	c.mu.Lock()
	c.gather()
	n := min(len(c.pending), c.maxSize)
	group := make([]*commitCall, n)
	copy(group, c.pending[:n])
	c.pending = append(c.pending[:0], c.pending[n:]...)
	c.mu.Unlock()

	start := time.Now()
	c.commit(group)
	end := time.Now()

	c.mu.Lock()
	c.expect = n + len(c.pending)
	c.lastDur = end.Sub(start)
	c.lastEnd = end
	if len(c.pending) > 0 {
		close(c.pending[0].promote)
	} else {
		c.busy = false
	}
	c.mu.Unlock()
}

// maxGather bounds how long a leader waits for the writers of the last
// cycle (see gather).
const maxGather = 5 * time.Millisecond

// gather lets a leader wait, before it takes its group, for the writers
// that took part in the last cycle and are expected back: with N writers
// that each send their next write as soon as the last one is answered,
// commits otherwise settle into two alternating groups of about N/2 (the
// writers of one group come back while the other group commits), and a
// commit costs nearly the same (two fsyncs) whatever its size. The wait
// ends as soon as that many writes are queued, and after at most half the
// last commit's duration (capped at maxGather), so it is bounded by the
// measured cost it saves; it is skipped when the last cycle had a single
// writer (a lone writer never waits) or ended longer ago than a commit
// takes. Called with mu held; returns with mu held.
func (c *committer) gather() {
	want := min(c.expect, c.maxSize)
	if len(c.pending) >= want || time.Since(c.lastEnd) > c.lastDur {
		return
	}
	timer := time.NewTimer(min(c.lastDur/2, c.maxWait))
	defer timer.Stop()
	c.waiting = true
	for len(c.pending) < want {
		c.mu.Unlock()
		select {
		case <-c.arrived:
			c.mu.Lock()
		case <-timer.C:
			c.mu.Lock()
			want = 0
		}
	}
	c.waiting = false
	select {
	case <-c.arrived:
	default:
	}
}

// commit runs group in one transaction, removing and soloing functions that
// fail, and settles every call of the group.
func (c *committer) commit(group []*commitCall) {
	for len(group) > 0 {
		failed := -1
		start := time.Now()
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, call := range group {
				if err := safe(call.fn)(tx); err != nil {
					failed = i
					return errRetryGroup
				}
			}
			return nil
		})
		if failed < 0 {
			c.observe(len(group), start, err)
			for _, call := range group {
				call.err = err
				close(call.done)
			}
			return
		}
		bad := group[failed]
		start = time.Now()
		bad.err = c.db.Update(safe(bad.fn))
		c.observe(1, start, bad.err)
		close(bad.done)
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// newCommitter returns a committer on db committing at most maxSize calls
// together.
func newCommitter(db *bolt.DB, maxSize int) *committer {
	return &committer{db: db, maxSize: maxSize, arrived: make(chan struct{}, 1), maxWait: maxGather}
}
