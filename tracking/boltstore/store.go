package boltstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Defaults of Options.
const (
	DefaultTimeout       = 5 * time.Second
	DefaultMaxBatchDelay = time.Millisecond
	DefaultMaxBatchSize  = 128
)

// Options configure OpenBolt and Open.
type Options struct {
	// Timeout bounds the wait for the file lock when opening (another
	// process holding the database). Zero means DefaultTimeout; it is
	// never infinite.
	Timeout time.Duration
	// MaxBatchDelay is set on the bbolt database for DB.Batch. The
	// store's own group commit does not use it (it never waits for a
	// fixed delay; see committer). Zero means DefaultMaxBatchDelay.
	MaxBatchDelay time.Duration
	// MaxBatchSize is the most writes committed together. Zero means
	// DefaultMaxBatchSize.
	MaxBatchSize int
	// InitialMmapSize is passed to bbolt (0: bbolt's default).
	InitialMmapSize int
	// Logger receives the store's operational log lines (the progress of
	// a background index build); nil means none.
	Logger *zap.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBatchDelay <= 0 {
		o.MaxBatchDelay = DefaultMaxBatchDelay
	}
	if o.MaxBatchSize <= 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	return o
}

// Store implements tracking.Store on a bbolt database.
type Store struct {
	db      *bolt.DB
	ownsDB  bool
	now     func() int64 // current time in ms; replaceable in tests
	commits *committer   // group commits of write transactions

	closeOnce sync.Once
	closeErr  error

	logger    atomic.Pointer[zap.Logger]
	buildStop context.CancelFunc // stops the background index build
	buildDone chan struct{}      // closed when the build goroutine ends
	// The experiment and registry index build (entindex.go).
	entBuildStop context.CancelFunc
	entBuildDone chan struct{}
	scanSearch   bool // tests: never use the indexes
}

var _ tracking.Store = (*Store)(nil)

// OpenBolt opens (creating if needed, mode 0600) the bbolt file at path
// with the store's settings: a bounded lock timeout, fsync on every commit
// (NoSync is never set) and group-commit parameters for DB.Batch. It is
// what a caller that shares one *bolt.DB between stores (the Caddy module,
// across config reloads) uses before OpenDB.
func OpenBolt(path string, opts Options) (*bolt.DB, error) {
	opts = opts.withDefaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.Timeout,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	db.NoSync = false
	db.MaxBatchDelay = opts.MaxBatchDelay
	db.MaxBatchSize = opts.MaxBatchSize
	return db, nil
}

// Open opens the database at path and returns a Store that owns it: Close
// closes the database.
func Open(path string, opts Options) (*Store, error) {
	db, err := OpenBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s, err := newStore(db, true, WithLogger(opts.Logger))
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// OpenDB returns a Store on an already open database, creating the
// store's buckets if needed. The Store does not own db: Close leaves it
// open. Batch settings of db are left as the caller configured them (see
// OpenBolt).
func OpenDB(db *bolt.DB, opts ...DBOption) (*Store, error) {
	if db == nil {
		return nil, errors.New("boltstore: nil database")
	}
	return newStore(db, false, opts...)
}

// DBOption configures a Store made by OpenDB.
type DBOption func(*Store)

// WithLogger makes l the store's logger (nil: none), from the start: the
// background index build an Open may begin logs its progress there.
func WithLogger(l *zap.Logger) DBOption { return func(s *Store) { s.SetLogger(l) } }

func newStore(db *bolt.DB, owns bool, opts ...DBOption) (*Store, error) {
	if db.IsReadOnly() {
		return nil, errors.New("boltstore: database is read-only")
	}
	version := schemaVersion
	needIndex, needTraceIndex, needEntIndex, needLMIndex, needAsmtVal := false, false, false, false, false
	err := db.Update(func(tx *bolt.Tx) error {
		hadIndex := tx.Bucket(bRunIdx) != nil
		hadEntIndex := tx.Bucket(bEntIdx) != nil
		hadTraceIndex := hasTraceIndexBuckets(tx)
		hadAsmtVal := tx.Bucket(bTraceAsmtVal) != nil
		hadLMIndex := tx.Bucket(bLMOrd) != nil
		for _, name := range allBucket {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if _, err := tx.CreateBucketIfNotExists(bEntIdx); err != nil {
			return fmt.Errorf("create bucket %s: %w", bEntIdx, err)
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get([]byte("version")); v != nil {
			if len(v) != 8 || u64be(v) == 0 || u64be(v) > schemaVersion {
				return fmt.Errorf("unsupported schema version %x", v)
			}
			version = int(u64be(v))
			var err error
			if needIndex, err = prepareIndex(tx, hadIndex); err != nil {
				return err
			}
			if needEntIndex, err = prepareEntIndex(tx, hadEntIndex); err != nil {
				return err
			}
			if needTraceIndex, err = traceBuild.prepare(tx, hadTraceIndex); err != nil {
				return err
			}
			if needAsmtVal, err = prepareAsmtValIndex(tx, hadTraceIndex, hadAsmtVal); err != nil {
				return err
			}
			needLMIndex, err = lmBuild.prepare(tx, hadLMIndex)
			return err
		}
		if err := meta.Put(metaTraceIdx, []byte{1}); err != nil {
			return err
		}
		if err := meta.Put(metaAsmtValIdx, []byte{1}); err != nil {
			return err
		}
		if err := meta.Put(metaLMIdx, []byte{1}); err != nil {
			return err
		}
		if err := meta.Put(metaEntIdxReady, []byte{1}); err != nil {
			return err
		}
		if err := meta.Put([]byte("version"), u64(schemaVersion)); err != nil {
			return err
		}
		return meta.Put(metaIndexReady, []byte{1}) // a new database: nothing to index
	})
	if err == nil && version < schemaVersion {
		err = migrate(db, version)
		if err == nil {
			// A migration may have dropped the run index (see migrate.go).
			err = db.View(func(tx *bolt.Tx) error {
				needIndex = needIndex || !indexReady(tx)
				return nil
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: initialise: %w", err)
	}
	s := &Store{
		db:      db,
		ownsDB:  owns,
		now:     func() int64 { return time.Now().UnixMilli() },
		commits: newCommitter(db, max(db.MaxBatchSize, 1)),
	}
	s.logger.Store(zap.NewNop())
	for _, o := range opts {
		o(s)
	}
	if (needIndex || needTraceIndex || needAsmtVal || needLMIndex) && autoIndex {
		s.startIndexBuild(needIndex, needTraceIndex, needAsmtVal, needLMIndex)
	}
	if needEntIndex && autoIndex {
		s.startEntIndexBuild()
	}
	return s, nil
}

// DB returns the underlying database.
func (s *Store) DB() *bolt.DB { return s.db }

// Close releases the store. It closes the database only if the store owns
// it (made by Open). Calling Close more than once is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopIndexBuild()
		s.stopEntIndexBuild()
		if s.ownsDB {
			if err := s.db.Close(); err != nil {
				s.closeErr = fmt.Errorf("boltstore: close: %w", err)
			}
		}
	})
	return s.closeErr
}

// update runs fn in a group commit (see committer). fn may run more than
// once (a group is re-run when another call in it fails, and a failing call
// is re-run alone), so it must derive everything from tx and from values
// computed before the call, and assign its results afresh on every run. A
// nil return means the transaction is committed and fsynced.
func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrapErr(op, s.commits.run(fn))
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return wrapErr(op, s.db.View(safe(fn)))
}

// safe turns a panic inside fn into an error (bbolt recovers panics in
// batched calls but not in the solo re-run or in View).
func safe(fn func(tx *bolt.Tx) error) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("internal panic: %v", r)
			}
		}()
		return fn(tx)
	}
}

// wrapErr returns client errors (*tracking.Error) unchanged and adds
// context to internal ones.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := tracking.AsError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("boltstore: %s: %w", op, err)
}

// newRunID returns a uuid4-style id: 32 lower-case hex characters.
func newRunID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate run id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:]), nil
}

// newOrderedRunID returns an id in the same 32-hex form whose leading 48
// bits are the creation time in Unix milliseconds (the UUID version 7
// layout; the remaining 74 bits are random). Runs created close together
// get adjacent keys, so a group commit of many create-runs dirties a few
// pages at the right edge of the run-keyed buckets instead of one random
// page per run in each of them (fewer pages written and fsynced per
// commit). MLflow treats run ids as opaque strings.
func newOrderedRunID(now time.Time) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("generate run id: %w", err)
	}
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:]), nil
}

func u64be(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// ---------------------------------------------------------------------------
// Records.

// expRecord is the stored form of an experiment (tags live in exptag).
type expRecord struct {
	Name             string `json:"n"`
	ArtifactLocation string `json:"a"`
	Lifecycle        string `json:"l"`
	CreationTime     int64  `json:"c"`
	LastUpdateTime   int64  `json:"u"`
}

// runRecord is the stored form of a run's info.
type runRecord struct {
	ExperimentID uint64 `json:"e"`
	Name         string `json:"n"`
	UserID       string `json:"u"`
	Status       string `json:"s"`
	StartTime    int64  `json:"st"`
	EndTime      *int64 `json:"et,omitempty"`
	ArtifactURI  string `json:"a"`
	Lifecycle    string `json:"l"`
	DeletedTime  int64  `json:"dt,omitempty"`
}

func (r *runRecord) info(runID string) tracking.RunInfo {
	ri := tracking.RunInfo{
		RunUUID:        runID,
		RunID:          runID,
		ExperimentID:   fmtExpID(r.ExperimentID),
		RunName:        r.Name,
		UserID:         r.UserID,
		Status:         r.Status,
		StartTime:      r.StartTime,
		ArtifactURI:    r.ArtifactURI,
		LifecycleStage: r.Lifecycle,
		DeletedTime:    r.DeletedTime,
	}
	if r.EndTime != nil {
		ri.EndTime = *r.EndTime
	}
	return ri
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

func lcByte(lifecycle string) byte {
	if lifecycle == tracking.LifecycleDeleted {
		return lcDeleted
	}
	return lcActive
}
