package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// Secondary run indexes (bucket ridx).
//
// Every entry is a byte string (stored packed into front-coded blocks,
// see ixblock.go):
//
//	uvarint(expID) kind str(name) value runref
//
// kind is 'm' (latest metric value), 'p' (param), 't' (tag) or one of the
// run attributes 'E' (end_time, only when set), 'S' (status), 'N' (the run
// record's name, the run_name sort key) and 'U' (user_id); attributes have
// an empty name. value is order-preserving:
//
//   - metrics: a class byte (0 a number, 1 NaN) and ord(value), with -0
//     folded into 0 and NaN stored as class 1 and ord(0), so numbers sort
//     by value and NaN after them (the order of search.CompareRuns);
//   - strings: the bytes with 0x00 escaped as 0x00 0xFF, then 0x00 0x01,
//     so keys compare as the strings do (byte-wise, like strings.Compare);
//   - end_time: ord(int64).
//
// runref is 'h' and the 16 bytes of a 32-digit lower-case hex run id
// (every id this server issues) or 'r' and the id's bytes. Lifecycle is
// not indexed: the exprun entry already carries it, and run deletion and
// restoration never touch ridx. start_time is served by exprun itself.
//
// The entries are written in the same transaction as the data they index
// (see the index* functions, called from every write path). A database
// from before the indexes is indexed by a background build (indexbuild.go);
// until it completes, searches scan as before.
var bRunIdx = []byte("ridx")

func init() { allBucket = append(allBucket, bRunIdx) }

// Index kinds.
const (
	ixMetric  byte = 'm'
	ixParam   byte = 'p'
	ixTag     byte = 't'
	ixEnd     byte = 'E'
	ixStatus  byte = 'S'
	ixName    byte = 'N'
	ixUser    byte = 'U'
	ixStarted byte = 0 // start_time: served by exprun, never stored in ridx
)

// ixPrefix appends the prefix shared by every entry of one index of one
// experiment.
func ixPrefix(dst []byte, expID uint64, kind byte, name string) []byte {
	dst = binary.AppendUvarint(dst, expID)
	dst = append(dst, kind)
	return appendStr(dst, name)
}

// ixStrMax is how many bytes of a string an entry holds. Longer strings
// (tag values may be long, mlflow.log-model.history grows without bound)
// are cut there and end in 0x00 0x02 instead of 0x00 0x01: all strings
// sharing those first bytes form one group that sorts right after the
// string of exactly those bytes, which is where each of them belongs, and
// the search orders and filters inside the group on the full values.
const ixStrMax = 256

// appendIxStr appends the order-preserving encoding of s.
func appendIxStr(dst []byte, s string) []byte {
	end := byte(1)
	if len(s) > ixStrMax {
		s, end = s[:ixStrMax], 2
	}
	dst = appendIxEsc(dst, s)
	return append(dst, 0, end)
}

func appendIxEsc(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xFF)
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

// appendIxStrPrefix appends the encoding of s without a terminator: every
// string starting with s encodes to keys starting with it.
func appendIxStrPrefix(dst []byte, s string) []byte {
	if len(s) > ixStrMax {
		s = s[:ixStrMax]
	}
	return appendIxEsc(dst, s)
}

// ixStrLen returns the length of the encoded string at the start of b, or
// -1 when it is not terminated.
func ixStrLen(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == 0 {
			if b[i+1] == 1 || b[i+1] == 2 {
				return i + 2
			}
			i++ // escaped 0x00
		}
	}
	return -1
}

// unescapeIxStr decodes an encoded string (as cut by ixStrLen); ok is
// false for a cut one (longer than ixStrMax).
func unescapeIxStr(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-2] != 0 || b[len(b)-1] != 1 {
		return "", false
	}
	b = b[:len(b)-2]
	if bytes.IndexByte(b, 0) < 0 {
		return string(b), true
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == 0 {
			i++ // skip the 0xFF of the escape
		}
	}
	return string(out), true
}

// appendIxNum appends the encoding of a metric value.
func appendIxNum(dst []byte, v float64) []byte {
	if math.IsNaN(v) {
		return appendU64(append(dst, 1), ordFloat(0))
	}
	if v == 0 {
		v = 0 // fold -0
	}
	return appendU64(append(dst, 0), ordFloat(v))
}

const ixNumLen = 9

// appendIxRun appends a run reference.
func appendIxRun(dst []byte, runID string) []byte {
	if len(runID) == 32 && isLowerHex(runID) {
		dst = append(dst, 'h')
		var b [16]byte
		_, _ = hex.Decode(b[:], []byte(runID))
		return append(dst, b[:]...)
	}
	return append(append(dst, 'r'), runID...)
}

// readIxRun decodes a run reference.
func readIxRun(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	switch b[0] {
	case 'h':
		if len(b) != 17 {
			return "", false
		}
		return hex.EncodeToString(b[1:]), true
	case 'r':
		return string(b[1:]), true
	}
	return "", false
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ixValueLen returns the length of the value part of an entry of kind
// (after the prefix), or -1 when it is malformed.
func ixValueLen(kind byte, rest []byte) int {
	switch kind {
	case ixMetric:
		if len(rest) < ixNumLen {
			return -1
		}
		return ixNumLen
	case ixEnd, ixStarted:
		if len(rest) < 8 {
			return -1
		}
		return 8
	}
	return ixStrLen(rest)
}

// ixEntry builds the key of one entry; value is the encoded value.
func ixEntry(expID uint64, kind byte, name string, value []byte, runID string) []byte {
	k := make([]byte, 0, 10+len(name)+len(value)+17)
	k = ixPrefix(k, expID, kind, name)
	k = append(k, value...)
	return appendIxRun(k, runID)
}

func ixPut(tx *bolt.Tx, expID uint64, kind byte, name string, value []byte, runID string) error {
	return ixInsert(tx.Bucket(bRunIdx), ixEntry(expID, kind, name, value, runID))
}

func ixDel(tx *bolt.Tx, expID uint64, kind byte, name string, value []byte, runID string) error {
	return ixRemove(tx.Bucket(bRunIdx), ixEntry(expID, kind, name, value, runID))
}

// unindexedTags are the system tags MLflow's clients set on every run
// that nobody searches runs by (or, for the model history, that grow with
// every logged model): indexing them would add an index page to every
// create-run commit for nothing. Searches that filter or order by them
// scan (or are driven by another clause), exactly as before the indexes.
var unindexedTags = map[string]bool{
	"mlflow.user":              true,
	"mlflow.source.name":       true,
	"mlflow.source.type":       true,
	"mlflow.source.git.commit": true,
	"mlflow.log-model.history": true,
}

// tagIndexed reports whether tag key has index entries.
func tagIndexed(key string) bool { return !unindexedTags[key] }

// indexString replaces the entry of a param or tag: old is the previous
// value (nil: none), new the new one (nil: removed).
func indexString(tx *bolt.Tx, expID uint64, kind byte, runID, key string, old, new []byte) error {
	if old != nil && new != nil && bytes.Equal(old, new) {
		return nil
	}
	if kind == ixTag && !tagIndexed(key) {
		return nil
	}
	if old != nil {
		if err := ixDel(tx, expID, kind, key, appendIxStr(nil, string(old)), runID); err != nil {
			return err
		}
	}
	if new != nil {
		return ixPut(tx, expID, kind, key, appendIxStr(nil, string(new)), runID)
	}
	return nil
}

// indexLatest moves a metric's entry from its old latest value (had
// false: none) to its new one.
func indexLatest(tx *bolt.Tx, expID uint64, runID, key string, old float64, had bool, new float64) error {
	nv := appendIxNum(nil, new)
	if had {
		ov := appendIxNum(nil, old)
		if bytes.Equal(ov, nv) {
			return nil
		}
		if err := ixDel(tx, expID, ixMetric, key, ov, runID); err != nil {
			return err
		}
	}
	return ixPut(tx, expID, ixMetric, key, nv, runID)
}

// attrEntries lists the attribute index values of a run record.
func attrEntries(rec *runRecord) [4]struct {
	kind byte
	val  []byte
} {
	var out [4]struct {
		kind byte
		val  []byte
	}
	out[0].kind, out[0].val = ixStatus, appendIxStr(nil, rec.Status)
	out[1].kind, out[1].val = ixName, appendIxStr(nil, rec.Name)
	out[2].kind, out[2].val = ixUser, appendIxStr(nil, rec.UserID)
	out[3].kind = ixEnd
	if rec.EndTime != nil {
		out[3].val = appendU64(nil, ordInt(*rec.EndTime))
	}
	return out
}

// indexRunAttrs moves a run's attribute entries from old (nil: a new run)
// to new (nil: the run is gone). The experiment and run id do not change.
func indexRunAttrs(tx *bolt.Tx, runID string, old, new *runRecord) error {
	var oe, ne [4]struct {
		kind byte
		val  []byte
	}
	if old != nil {
		oe = attrEntries(old)
	}
	if new != nil {
		ne = attrEntries(new)
	}
	for i := range oe {
		if old != nil && oe[i].val != nil && (new == nil || !bytes.Equal(oe[i].val, ne[i].val)) {
			if err := ixDel(tx, old.ExperimentID, oe[i].kind, "", oe[i].val, runID); err != nil {
				return err
			}
		}
		if new != nil && ne[i].val != nil && (old == nil || !bytes.Equal(oe[i].val, ne[i].val)) {
			if err := ixPut(tx, new.ExperimentID, ne[i].kind, "", ne[i].val, runID); err != nil {
				return err
			}
		}
	}
	return nil
}

// forRunData calls fn for every param, tag and latest metric of a run.
func forRunData(tx *bolt.Tx, runID string, fn func(kind byte, key string, val []byte) error) error {
	prefix, ok := runPrefix(nil, runID)
	if !ok {
		return fmt.Errorf("run id %q too long", runID)
	}
	for _, kb := range []struct {
		kind byte
		b    []byte
	}{{ixParam, bParam}, {ixTag, bTag}, {ixMetric, bLatest}} {
		c := tx.Bucket(kb.b).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := fn(kb.kind, string(k[len(prefix):]), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// runIndexEntries calls fn with the value of every index entry of a run
// (as stored now).
func runIndexEntries(tx *bolt.Tx, runID string, fn func(kind byte, key string, val []byte) error) error {
	return forRunData(tx, runID, func(kind byte, key string, v []byte) error {
		if kind == ixTag && !tagIndexed(key) {
			return nil
		}
		if kind == ixMetric {
			_, _, val, ok := readPoint(v)
			if !ok {
				return fmt.Errorf("corrupt latest metric %q of run %s", key, runID)
			}
			return fn(kind, key, appendIxNum(nil, val))
		}
		return fn(kind, key, appendIxStr(nil, string(v)))
	})
}

// indexRun writes every index entry of a run from its stored data (a new
// or imported run, and the background build). Entries already there are
// rewritten unchanged.
func indexRun(tx *bolt.Tx, runID string, rec *runRecord) error {
	if err := indexRunAttrs(tx, runID, nil, rec); err != nil {
		return err
	}
	return runIndexEntries(tx, runID, func(kind byte, key string, val []byte) error {
		return ixPut(tx, rec.ExperimentID, kind, key, val, runID)
	})
}

// unindexRun removes every index entry of a run; call it before the run's
// data is deleted.
func unindexRun(tx *bolt.Tx, runID string, rec *runRecord) error {
	if err := indexRunAttrs(tx, runID, rec, nil); err != nil {
		return err
	}
	return runIndexEntries(tx, runID, func(kind byte, key string, val []byte) error {
		return ixDel(tx, rec.ExperimentID, kind, key, val, runID)
	})
}

// runExpID returns the experiment of a stored run, for write paths that
// only hold the run id.
func runExpID(tx *bolt.Tx, runID string) (uint64, error) {
	data := tx.Bucket(bRun).Get([]byte(runID))
	if data == nil {
		return 0, errRunNotFound(runID)
	}
	var r struct {
		E uint64 `json:"e"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, fmt.Errorf("decode run %s: %w", runID, err)
	}
	return r.E, nil
}

// expOf resolves a run's experiment once, on first need.
type expOf struct {
	tx    *bolt.Tx
	runID string
	id    uint64
	done  bool
}

func (e *expOf) get() (uint64, error) {
	if !e.done {
		id, err := runExpID(e.tx, e.runID)
		if err != nil {
			return 0, err
		}
		e.id, e.done = id, true
	}
	return e.id, nil
}
