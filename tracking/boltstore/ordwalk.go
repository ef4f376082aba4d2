package boltstore

import (
	"bytes"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Time order indexes (the trace index tord, the logged model index lmord)
// key their entries
//
//	u64(expID) | ^ordInt(timestamp) | id
//
// so that a forward walk of an experiment's range is timestamp DESC, then
// id ASC. The ascending order (timestamp ASC, then id ASC: the tie-break
// stays the same) is a backward walk that serves each group of equal
// timestamps in id order (ascOrdWalk).

// timeOrdKey is the key of entry (ts, id) of experiment expID.
func timeOrdKey(expID uint64, ts int64, id string) []byte {
	k := make([]byte, 0, 16+len(id))
	k = appendU64(k, expID)
	k = appendU64(k, ^ordInt(ts))
	return append(k, id...)
}

// timeOrdTS is the timestamp of a time order key (at least 16 bytes).
func timeOrdTS(k []byte) int64 { return unordInt(^binary.BigEndian.Uint64(k[8:16])) }

// ascOrdWalk walks one experiment's range of a time order index in
// timestamp ASC, id ASC order, from a timestamp up to hi: backwards, one
// group of equal timestamps at a time, each group served in reverse (id
// ascending). Keys and values stay valid for the transaction.
type ascOrdWalk struct {
	c          *bolt.Cursor
	prefix     []byte
	k, v       []byte // the next entry of the backward walk
	hi         int64
	keys, vals [][]byte // the current group, in id order
}

// newAscOrdWalk positions a backward walk of bk at the last entry of exp
// whose timestamp is at least from.
func newAscOrdWalk(bk *bolt.Bucket, exp uint64, from, hi int64) *ascOrdWalk {
	a := &ascOrdWalk{c: bk.Cursor(), prefix: u64(exp), hi: hi}
	var k []byte
	switch {
	case from > -1<<63:
		k, _ = a.c.Seek(timeOrdKey(exp, from-1, ""))
	case exp < 1<<64-1:
		k, _ = a.c.Seek(u64(exp + 1))
	}
	if k == nil {
		a.k, a.v = a.c.Last()
	} else {
		a.k, a.v = a.c.Prev()
	}
	return a
}

// fill reads the next group when the current one is used up.
func (a *ascOrdWalk) fill() {
	if len(a.keys) > 0 {
		return
	}
	a.keys, a.vals = a.keys[:0], a.vals[:0]
	var ts int64
	for a.k != nil && len(a.k) >= 16 && bytes.HasPrefix(a.k, a.prefix) {
		kts := timeOrdTS(a.k)
		if kts > a.hi || (len(a.keys) > 0 && kts != ts) {
			break
		}
		ts = kts
		a.keys, a.vals = append(a.keys, a.k), append(a.vals, a.v)
		a.k, a.v = a.c.Prev()
	}
	slices.Reverse(a.keys)
	slices.Reverse(a.vals)
}

// head is the current entry; k is nil at the end.
func (a *ascOrdWalk) head() (k, v []byte) {
	a.fill()
	if len(a.keys) == 0 {
		return nil, nil
	}
	return a.keys[0], a.vals[0]
}

// next moves past the current entry.
func (a *ascOrdWalk) next() { a.keys, a.vals = a.keys[1:], a.vals[1:] }
