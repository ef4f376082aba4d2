// Package boltstore implements tracking.Store on an embedded bbolt
// database.
//
// # Durability and group commit
//
// Every write goes through DB.Batch: concurrent writers are coalesced into
// one read-write transaction and one fsync (bbolt's NoSync is never set), so
// a nil error from a write means it is on stable storage. Batch may run a
// write function more than once (when another call of the batch fails, and
// once more alone when the function itself fails), so write functions only
// read their transaction and values prepared before the call, and the
// transaction of a failing call is always rolled back: a rejected log-batch
// (changed param) leaves nothing behind.
//
// # Key layout
//
// All buckets are top-level; u64 is big-endian, rp(id) is a length byte
// followed by the run id, str(s) is a uvarint length followed by s, ord(x)
// is an order-preserving 8-byte encoding of an int64 or float64.
//
//	exp      u64(expID)                         -> experiment record (JSON)
//	expname  name                               -> u64(expID)   (active and deleted)
//	exptag   u64(expID) key                     -> value
//	run      runID                              -> run record (JSON; holds the experiment id)
//	exprun   u64(expID) ^ord(start) runID       -> lifecycle byte ('a'/'d')
//	param    rp(runID) key                      -> value
//	tag      rp(runID) key                      -> value
//	latest   rp(runID) key                      -> ord(step) ord(ts) ord(value) nan
//	mhist    rp(runID) str(key) ord(ts) ord(step) ord(value) nan -> ""
//	input    rp(runID) str(name) digest         -> input tags (JSON)
//	dataset  str(name) digest                   -> dataset (JSON; first logging wins)
//	modelin  rp(runID) modelID                  -> ""
//	ridx     entries uvarint(expID) kind str(name) value runref, packed into
//	         blocks: first entry -> the others, front-coded (index.go, ixblock.go)
//	meta     "version"                          -> schema version
//	eidx     kind ... ref                       -> "" (experiment and registry indexes, entindex.go)
//	meta     "ridx", "ridxpos"                  -> index build done / position
//	meta     "eidx", "eidxpos"                  -> eidx build done / position
//
// A scan of one experiment's exprun range is MLflow's default run order
// (start_time DESC, run_id ASC), and its value answers run_view_type without
// decoding the run. A metric's history is the prefix range of mhist ordered
// by (timestamp, step, value), the order of MLflow's get_metric_history;
// the point is the key, so exact duplicates dedupe by themselves. NaN is stored as 0 plus a flag byte, as in MLflow's
// SQL schema. runs/search plans over ridx, the secondary indexes of latest
// metric values, params, tags and run attributes (plan.go);
// experiments/search, registered-models/search and model-versions/search
// plan over eidx and the buckets keyed by name (entplan.go).
package boltstore
