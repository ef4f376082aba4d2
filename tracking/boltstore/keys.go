package boltstore

import (
	"encoding/binary"
	"math"
)

// Bucket names. Every bucket is top-level; composite keys are designed so
// that everything belonging to one run (or one experiment) is a contiguous
// prefix range.
var (
	bMeta     = []byte("meta")    // "version" -> schema version
	bExp      = []byte("exp")     // u64(expID) -> expRecord (JSON)
	bExpName  = []byte("expname") // name -> u64(expID)
	bExpTag   = []byte("exptag")  // u64(expID) | key -> value
	bRun      = []byte("run")     // runID -> runRecord (JSON)
	bExpRun   = []byte("exprun")  // u64(expID) | desc(start) | runID -> lifecycle byte
	bParam    = []byte("param")   // rp(runID) | key -> value
	bTag      = []byte("tag")     // rp(runID) | key -> value
	bLatest   = []byte("latest")  // rp(runID) | key -> latest point (25 bytes)
	bHist     = []byte("mhist")   // rp(runID) | uvarint(len key) | key | ord(ts) | ord(step) | ord(value) | nan -> ""
	bInput    = []byte("input")   // rp(runID) | str(name) | digest -> input tags (JSON)
	bDataset  = []byte("dataset") // str(name) | digest -> tracking.Dataset (JSON), first logging wins
	bModelIn  = []byte("modelin") // rp(runID) | modelID -> ""
	allBucket = [][]byte{bMeta, bExp, bExpName, bExpTag, bRun, bExpRun, bParam, bTag, bLatest, bHist, bInput, bDataset, bModelIn}
)

// schemaVersion is the layout this code reads and writes; Open migrates
// older databases (see migrate.go).
const schemaVersion = 6

// Lifecycle bytes stored as the value of exprun index entries, so that a
// view-type filter needs no record decoding.
const (
	lcActive  byte = 'a'
	lcDeleted byte = 'd'
)

// pointLen is the length of the hist key suffix after the metric key and
// of a latest-metric value.
const pointLen = 8 + 8 + 8 + 1

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// ordInt maps int64 to uint64 preserving order.
func ordInt(v int64) uint64 { return uint64(v) ^ (1 << 63) }

func unordInt(u uint64) int64 { return int64(u ^ (1 << 63)) }

// ordFloat maps a (non-NaN) float64 to uint64 preserving numeric order.
func ordFloat(f float64) uint64 {
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		return ^b
	}
	return b | (1 << 63)
}

func unordFloat(u uint64) float64 {
	if u&(1<<63) != 0 {
		return math.Float64frombits(u &^ (1 << 63))
	}
	return math.Float64frombits(^u)
}

// runPrefix is the prefix of every per-run key: a length byte and the run
// id. The length byte keeps ids that are prefixes of one another apart.
// ok is false for ids that cannot be stored (longer than 255 bytes).
func runPrefix(dst []byte, runID string) ([]byte, bool) {
	if len(runID) > 255 {
		return dst, false
	}
	dst = append(dst, byte(len(runID)))
	return append(dst, runID...), true
}

// appendStr appends a length-prefixed string.
func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// readStr reads a length-prefixed string from b.
func readStr(b []byte) (string, []byte, bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n {
		return "", nil, false
	}
	return string(b[w : w+int(n)]), b[w+int(n):], true
}

// appendPoint appends the order-preserving encoding of (step, timestamp,
// value). NaN is encoded as value 0 plus a flag byte, as MLflow's SQL
// schema stores it, so that NaN points dedupe with each other and sort
// next to 0.
func appendPoint(dst []byte, step, ts int64, v float64) []byte {
	dst = appendU64(dst, ordInt(step))
	dst = appendU64(dst, ordInt(ts))
	nan := byte(0)
	if math.IsNaN(v) {
		v, nan = 0, 1
	}
	dst = appendU64(dst, ordFloat(v))
	return append(dst, nan)
}

// appendHistPoint appends the key suffix of a history point: like
// appendPoint, but ordered (timestamp, step, value), the order in which
// MLflow's get_metric_history answers.
func appendHistPoint(dst []byte, step, ts int64, v float64) []byte {
	return appendPoint(dst, ts, step, v)
}

// readHistPoint decodes a key suffix written by appendHistPoint.
func readHistPoint(b []byte) (step, ts int64, v float64, ok bool) {
	ts, step, v, ok = readPoint(b)
	return step, ts, v, ok
}

// readPoint decodes a point written by appendPoint.
func readPoint(b []byte) (step, ts int64, v float64, ok bool) {
	if len(b) != pointLen {
		return 0, 0, 0, false
	}
	step = unordInt(binary.BigEndian.Uint64(b[0:8]))
	ts = unordInt(binary.BigEndian.Uint64(b[8:16]))
	v = unordFloat(binary.BigEndian.Uint64(b[16:24]))
	if b[24] == 1 {
		v = math.NaN()
	}
	return step, ts, v, true
}

// expRunKey builds the exprun index key: experiment, start time in
// descending order, run id. A forward scan of one experiment's range is
// MLflow's default order (start_time DESC, run_id ASC).
func expRunKey(dst []byte, expID uint64, start int64, runID string) []byte {
	dst = appendU64(dst, expID)
	dst = appendU64(dst, ^ordInt(start))
	return append(dst, runID...)
}

// splitExpRunKey decodes an exprun key.
func splitExpRunKey(k []byte) (expID uint64, start int64, runID string, ok bool) {
	if len(k) < 16 {
		return 0, 0, "", false
	}
	expID = binary.BigEndian.Uint64(k[0:8])
	start = unordInt(^binary.BigEndian.Uint64(k[8:16]))
	return expID, start, string(k[16:]), true
}

// histPrefix is the prefix of all history points of one metric of a run.
func histPrefix(dst []byte, runID, key string) ([]byte, bool) {
	dst, ok := runPrefix(dst, runID)
	if !ok {
		return dst, false
	}
	return appendStr(dst, key), true
}
