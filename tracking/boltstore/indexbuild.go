package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Background build of the run indexes of a database written before them
// (or whose ridx bucket was dropped). Writers maintain the indexes from
// the moment the store opens, whatever the build's progress; the build
// walks the run bucket in id order, a chunk of runs per transaction,
// writing every entry of each run from its stored data (idempotent), and
// records its position in the same transaction, so an interrupted build
// (Close, crash, kill -9) resumes there on the next Open. Searches use the
// indexes only once meta "ridx" says the build completed; until then they
// scan every run, as before.

var (
	metaIndexReady = []byte("ridx")    // present: every run is indexed
	metaIndexPos   = []byte("ridxpos") // run id the build has indexed up to
)

// autoIndex starts the background build on open (tests switch it off to
// drive the build by hand).
var autoIndex = true

// indexChunk is how many runs one build transaction indexes.
var indexChunk = 1000

// prepareIndex decides, in the opening transaction, whether the indexes
// must be built: a database that had no ridx bucket (older layout, or the
// bucket was dropped) starts a build from scratch.
func prepareIndex(tx *bolt.Tx, hadIndex bool) (bool, error) {
	meta := tx.Bucket(bMeta)
	if !hadIndex {
		if err := meta.Delete(metaIndexReady); err != nil {
			return false, err
		}
		if err := meta.Delete(metaIndexPos); err != nil {
			return false, err
		}
	}
	return meta.Get(metaIndexReady) == nil, nil
}

// indexReady reports whether searches may use the indexes.
func indexReady(tx *bolt.Tx) bool {
	return tx.Bucket(bMeta).Get(metaIndexReady) != nil && tx.Bucket(bRunIdx) != nil
}

// SetLogger makes l the store's logger (the background index build logs
// its progress there); nil means no logging.
func (s *Store) SetLogger(l *zap.Logger) {
	if l == nil {
		l = zap.NewNop()
	}
	s.logger.Store(l)
}

func (s *Store) log() *zap.Logger { return s.logger.Load() }

func (s *Store) startIndexBuild(runs, traces, asmtVals, loggedModels bool) {
	ctx, cancel := context.WithCancel(context.Background())
	s.buildStop = cancel
	s.buildDone = make(chan struct{})
	go func() {
		defer close(s.buildDone)
		if runs {
			if err := s.buildIndex(ctx, -1); err != nil && !errors.Is(err, context.Canceled) {
				s.log().Error("boltstore: building the run indexes failed; searches keep scanning every run",
					zap.Error(err))
			}
		}
		if traces {
			if err := s.buildTraceIndex(ctx, -1); err != nil && !errors.Is(err, context.Canceled) {
				s.log().Error("boltstore: building the trace index failed; trace searches keep scanning",
					zap.Error(err))
			}
		}
		if asmtVals {
			if err := s.buildAsmtValIndex(ctx, -1); err != nil && !errors.Is(err, context.Canceled) {
				s.log().Error("boltstore: building the assessment value index failed; feedback and expectation equality searches keep scanning their name",
					zap.Error(err))
			}
		}
		if loggedModels {
			if err := s.buildLMIndex(ctx, -1); err != nil && !errors.Is(err, context.Canceled) {
				s.log().Error("boltstore: building the logged model index failed; logged model searches keep scanning",
					zap.Error(err))
			}
		}
	}()
}

func (s *Store) stopIndexBuild() {
	if s.buildStop != nil {
		s.buildStop()
		<-s.buildDone
	}
}

// buildIndex indexes the runs after the recorded position, at most
// maxChunks transactions (negative: until done), and marks the indexes
// ready when every run is indexed.
func (s *Store) buildIndex(ctx context.Context, maxChunks int) error {
	var total int
	if err := s.db.View(func(tx *bolt.Tx) error {
		total = tx.Bucket(bRun).Stats().KeyN
		return nil
	}); err != nil {
		return fmt.Errorf("count runs: %w", err)
	}
	s.log().Info("boltstore: indexing runs for search (one-time; searches scan until it completes)",
		zap.Int("runs", total))
	start, lastLog := time.Now(), time.Now()
	done, indexed := 0, 0
	for chunk := 0; maxChunks < 0 || chunk < maxChunks; chunk++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		finished := false
		n := 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bMeta)
			if meta.Get(metaIndexReady) != nil {
				finished = true
				return nil
			}
			pos := bytes.Clone(meta.Get(metaIndexPos))
			c := tx.Bucket(bRun).Cursor()
			k, v := c.First()
			if pos != nil {
				k, v = c.Seek(pos)
				if k != nil && bytes.Equal(k, pos) {
					k, v = c.Next()
				}
			}
			type item struct {
				id  string
				rec runRecord
			}
			var items []item
			for ; k != nil && len(items) < indexChunk; k, v = c.Next() {
				it := item{id: string(k)}
				if err := json.Unmarshal(v, &it.rec); err != nil {
					return fmt.Errorf("decode run %s: %w", k, err)
				}
				items = append(items, it)
			}
			finished = k == nil
			for i := range items {
				if err := indexRun(tx, items[i].id, &items[i].rec); err != nil {
					return err
				}
			}
			n = len(items)
			if finished {
				if err := meta.Delete(metaIndexPos); err != nil {
					return err
				}
				return meta.Put(metaIndexReady, []byte{1})
			}
			return meta.Put(metaIndexPos, []byte(items[len(items)-1].id))
		})
		if err != nil {
			return fmt.Errorf("index runs: %w", err)
		}
		indexed += n
		done += n
		if finished {
			s.log().Info("boltstore: run indexes ready", zap.Int("runs_indexed", indexed),
				zap.Duration("took", time.Since(start)))
			return nil
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			s.log().Info("boltstore: indexing runs for search", zap.Int("done", done), zap.Int("of", total))
		}
	}
	return nil
}

// keyedBuild is the one-time background build of an index over the
// records of one bucket (a database written before the index, or whose
// index bucket was dropped). It walks the records in key order, indexChunk
// records per transaction, writing each record's entries from its stored
// data (idempotent, so writers maintaining the index meanwhile never
// disagree with it), and records the last key done in meta pos in the
// same transaction, so an interrupted build (Close, crash, kill -9)
// resumes there. Meta ready marks it complete.
type keyedBuild struct {
	what       string // what is indexed, for errors and the log
	records    []byte // the bucket walked
	ready, pos []byte // meta keys
	// index writes the index entries of the record at key.
	index func(tx *bolt.Tx, key []byte) error
}

// prepare decides, in the opening transaction, whether the index must be
// built: a database that had no index bucket starts from scratch.
func (b keyedBuild) prepare(tx *bolt.Tx, hadBucket bool) (bool, error) {
	meta := tx.Bucket(bMeta)
	if !hadBucket {
		if err := meta.Delete(b.ready); err != nil {
			return false, err
		}
		if err := meta.Delete(b.pos); err != nil {
			return false, err
		}
	}
	return meta.Get(b.ready) == nil, nil
}

// runKeyedBuild indexes the records after the recorded position, at most
// maxChunks transactions (negative: until done), and marks the index
// ready when every record is indexed.
func (s *Store) runKeyedBuild(ctx context.Context, b keyedBuild, maxChunks int) error {
	start := time.Now()
	indexed := 0
	for chunk := 0; maxChunks < 0 || chunk < maxChunks; chunk++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		finished, n := false, 0
		err := s.db.Update(func(tx *bolt.Tx) error {
			n = 0
			meta := tx.Bucket(bMeta)
			if meta.Get(b.ready) != nil {
				finished = true
				return nil
			}
			pos := bytes.Clone(meta.Get(b.pos))
			c := tx.Bucket(b.records).Cursor()
			k, _ := c.First()
			if pos != nil {
				k, _ = c.Seek(pos)
				if k != nil && bytes.Equal(k, pos) {
					k, _ = c.Next()
				}
			}
			var keys [][]byte
			for ; k != nil && len(keys) < indexChunk; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, key := range keys {
				if err := b.index(tx, key); err != nil {
					return err
				}
			}
			n = len(keys)
			if k == nil {
				finished = true
				if err := meta.Delete(b.pos); err != nil {
					return err
				}
				return meta.Put(b.ready, []byte{1})
			}
			return meta.Put(b.pos, keys[len(keys)-1])
		})
		if err != nil {
			return fmt.Errorf("build the %s index: %w", b.what, err)
		}
		indexed += n
		if finished {
			s.log().Info("boltstore: "+b.what+" index ready", zap.Int("indexed", indexed),
				zap.Duration("took", time.Since(start)))
			return nil
		}
	}
	return nil
}
