package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Secondary indexes of experiments and of the model registry (bucket
// eidx), for search_experiments, search_registered_models and
// search_model_versions. Every entry is a key with an empty value:
//
//	"xt" str(tag key) ixstr(value) u64(experiment id)     experiment tags
//	"xc" ord(creation_time) u64(experiment id)           experiment creation
//	"xu" ord(last_update_time) u64(experiment id)        experiment update
//	"rt" str(tag key) ixstr(value) name                  registered-model tags
//	"ru" ord(last_updated_timestamp) name                registered-model update
//	"vr" ixstr(run_id) str(name) u64(version)             model-version run id
//	"vt" str(tag key) ixstr(value) str(name) u64(version) model-version tags
//	"vc" ord(creation_timestamp) str(name) u64(version)   model-version creation
//	"vu" ord(last_updated_timestamp) str(name) u64(version) model-version update
//
// ixstr is the order-preserving string encoding of index.go (long values
// are cut and grouped). The name lookups need no entries here: expname,
// regmodel and modelver are keyed by name already (searchnames.go), and
// modelver's key str(name) u64(version) is the (name, version) index.
//
// Writers keep the entries in the same transaction as the data: every
// mutation of an experiment, model or version runs inside withIndex, which
// computes the entity's entries from the stored data before and after and
// applies the difference. A database written before the bucket existed is
// indexed by a background build (buildEntIndex, progress in meta
// "eidxpos"), independent of the run and trace builds; searches use the
// entries only once meta "eidx" marks the build complete and scan until
// then.
var (
	bEntIdx         = []byte("eidx")
	metaEntIdxReady = []byte("eidx")
	metaEntIdxPos   = []byte("eidxpos")
)

// bEntIdx is not in allBucket: a file written before it (a backup of an
// older server at the same schema version) stays valid for VerifyFile;
// newStore creates it.

// Entry kinds (the first two bytes of every eidx key).
var (
	ekExpTag     = []byte("xt")
	ekExpCreated = []byte("xc")
	ekExpUpdated = []byte("xu")
	ekRMTag      = []byte("rt")
	ekRMUpdated  = []byte("ru")
	ekMVRun      = []byte("vr")
	ekMVTag      = []byte("vt")
	ekMVCreated  = []byte("vc")
	ekMVUpdated  = []byte("vu")
)

// tagIxPrefix is the prefix of every entry of one tag key.
func tagIxPrefix(kind []byte, key string) []byte {
	return appendStr(bytes.Clone(kind), key)
}

func tagIxKey(kind []byte, key, value string, ref []byte) []byte {
	k := appendIxStr(tagIxPrefix(kind, key), value)
	return append(k, ref...)
}

func timeIxKey(kind []byte, t int64, ref []byte) []byte {
	k := appendU64(bytes.Clone(kind), ordInt(t))
	return append(k, ref...)
}

// expIxKeys returns the entries of experiment id from its stored data
// (none when it does not exist).
func expIxKeys(tx *bolt.Tx, id uint64) ([][]byte, error) {
	rec, err := getExp(tx, id)
	if err != nil || rec == nil {
		return nil, err
	}
	ref := u64(id)
	keys := [][]byte{timeIxKey(ekExpCreated, rec.CreationTime, ref), timeIxKey(ekExpUpdated, rec.LastUpdateTime, ref)}
	for _, t := range expTags(tx, id) {
		keys = append(keys, tagIxKey(ekExpTag, t.Key, t.Value, ref))
	}
	return keys, nil
}

// rmIxKeys returns the entries of a registered model (not of its
// versions).
func rmIxKeys(tx *bolt.Tx, name string) ([][]byte, error) {
	if tx.Bucket(bRM).Get([]byte(name)) == nil {
		return nil, nil
	}
	rec, err := getModel(tx, name)
	if err != nil {
		return nil, err
	}
	ref := []byte(name)
	keys := [][]byte{timeIxKey(ekRMUpdated, rec.Updated, ref)}
	for _, t := range prefixTags(tx.Bucket(bRMTag), modelPrefix(name)) {
		keys = append(keys, tagIxKey(ekRMTag, t.Key, t.Value, ref))
	}
	return keys, nil
}

// mvIxKeysOf returns the entries of a version given its record.
func mvIxKeysOf(tx *bolt.Tx, vk []byte, rec *mvRecord) [][]byte {
	keys := [][]byte{
		append(appendIxStr(bytes.Clone(ekMVRun), rec.RunID), vk...),
		timeIxKey(ekMVCreated, rec.Created, vk),
		timeIxKey(ekMVUpdated, rec.Updated, vk),
	}
	for _, t := range prefixTags(tx.Bucket(bMVTag), vk) {
		keys = append(keys, tagIxKey(ekMVTag, t.Key, t.Value, vk))
	}
	return keys
}

// modelIxKeys returns the entries of a registered model and of every
// version of it (with version > 0, that version only).
func modelIxKeys(tx *bolt.Tx, name string, version int64) ([][]byte, error) {
	keys, err := rmIxKeys(tx, name)
	if err != nil {
		return nil, err
	}
	if version > 0 {
		if tx.Bucket(bMV).Get(versionKey(name, version)) == nil {
			return keys, nil
		}
		rec, err := getVersion(tx, name, version)
		if err != nil {
			return nil, err
		}
		return append(keys, mvIxKeysOf(tx, versionKey(name, version), rec)...), nil
	}
	err = forEachVersion(tx, name, func(v int64, rec *mvRecord) error {
		keys = append(keys, mvIxKeysOf(tx, versionKey(name, v), rec)...)
		return nil
	})
	return keys, err
}

// withIndex runs fn, a mutation of the entities whose entries keys
// computes, and brings their eidx entries up to date in the same
// transaction.
func withIndex(tx *bolt.Tx, keys func() ([][]byte, error), fn func() error) error {
	before, err := keys()
	if err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	after, err := keys()
	if err != nil {
		return err
	}
	return applyIxDiff(tx.Bucket(bEntIdx), before, after)
}

func applyIxDiff(b *bolt.Bucket, before, after [][]byte) error {
	keep := make(map[string]bool, len(after))
	for _, k := range after {
		keep[string(k)] = true
	}
	for _, k := range before {
		if !keep[string(k)] {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("unindex: %w", err)
			}
		}
	}
	for _, k := range after {
		if err := b.Put(k, nil); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}

// withExpIndex is withIndex for one experiment.
func withExpIndex(tx *bolt.Tx, id uint64, fn func() error) error {
	return withIndex(tx, func() ([][]byte, error) { return expIxKeys(tx, id) }, fn)
}

// withModelIndex is withIndex for registered models and all their
// versions.
func withModelIndex(tx *bolt.Tx, names []string, fn func() error) error {
	return withIndex(tx, func() ([][]byte, error) {
		var all [][]byte
		for _, n := range names {
			keys, err := modelIxKeys(tx, n, 0)
			if err != nil {
				return nil, err
			}
			all = append(all, keys...)
		}
		return all, nil
	}, fn)
}

// withVersionIndex is withIndex for a registered model and one version.
func withVersionIndex(tx *bolt.Tx, name string, version int64, fn func() error) error {
	return withIndex(tx, func() ([][]byte, error) { return modelIxKeys(tx, name, version) }, fn)
}

// prepareEntIndex decides, in the opening transaction, whether the eidx
// entries must be built: a database that had no eidx bucket starts a
// build from scratch.
func prepareEntIndex(tx *bolt.Tx, hadBucket bool) (bool, error) {
	meta := tx.Bucket(bMeta)
	if !hadBucket {
		if err := meta.Delete(metaEntIdxReady); err != nil {
			return false, err
		}
		if err := meta.Delete(metaEntIdxPos); err != nil {
			return false, err
		}
	}
	return meta.Get(metaEntIdxReady) == nil, nil
}

// entIndexReady reports whether searches may use eidx.
func entIndexReady(tx *bolt.Tx) bool {
	return tx.Bucket(bMeta).Get(metaEntIdxReady) != nil && tx.Bucket(bEntIdx) != nil
}

// startEntIndexBuild runs buildEntIndex in the background until done or
// Close.
func (s *Store) startEntIndexBuild() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.entBuildStop, s.entBuildDone = cancel, done
	go func() {
		defer close(done)
		if err := s.buildEntIndex(ctx, -1); err != nil && !errors.Is(err, context.Canceled) {
			s.log().Error("boltstore: building the experiment and registry indexes failed; their searches keep scanning",
				zap.Error(err))
		}
	}()
}

func (s *Store) stopEntIndexBuild() {
	if s.entBuildStop != nil {
		s.entBuildStop()
		<-s.entBuildDone
	}
}

// buildEntIndex writes the eidx entries of the experiments (in id order),
// then of the registered models and their versions (in name order),
// about indexChunk entities per transaction, at most maxChunks
// transactions (negative: until done). The position ("x" u64(id) or "r"
// name) is recorded in the same transaction, so an interrupted build
// resumes there. Writing an entity's entries from its stored data is
// idempotent, and writers maintain the entries meanwhile.
func (s *Store) buildEntIndex(ctx context.Context, maxChunks int) error {
	start := time.Now()
	indexed := 0
	for chunk := 0; maxChunks < 0 || chunk < maxChunks; chunk++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		finished := false
		err := s.db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bMeta)
			if meta.Get(metaEntIdxReady) != nil {
				finished = true
				return nil
			}
			pos := bytes.Clone(meta.Get(metaEntIdxPos))
			b := tx.Bucket(bEntIdx)
			// Experiments.
			if len(pos) == 0 || pos[0] == 'x' {
				c := tx.Bucket(bExp).Cursor()
				k, _ := c.First()
				if len(pos) == 9 {
					if k, _ = c.Seek(pos[1:]); k != nil && bytes.Equal(k, pos[1:]) {
						k, _ = c.Next()
					}
				}
				var ids []uint64
				for ; k != nil && len(ids) < indexChunk; k, _ = c.Next() {
					if len(k) == 8 {
						ids = append(ids, u64be(k))
					}
				}
				for _, id := range ids {
					keys, err := expIxKeys(tx, id)
					if err != nil {
						return err
					}
					if err := applyIxDiff(b, nil, keys); err != nil {
						return err
					}
				}
				indexed += len(ids)
				if k != nil {
					return meta.Put(metaEntIdxPos, append([]byte{'x'}, u64(ids[len(ids)-1])...))
				}
				// The registry starts with the next transaction.
				return meta.Put(metaEntIdxPos, []byte{'r'})
			}
			// Registered models with their versions.
			c := tx.Bucket(bRM).Cursor()
			k, _ := c.First()
			if len(pos) > 1 {
				if k, _ = c.Seek(pos[1:]); k != nil && bytes.Equal(k, pos[1:]) {
					k, _ = c.Next()
				}
			}
			var names []string
			for ; k != nil && len(names) < indexChunk; k, _ = c.Next() {
				names = append(names, string(k))
			}
			for _, name := range names {
				keys, err := modelIxKeys(tx, name, 0)
				if err != nil {
					return err
				}
				if err := applyIxDiff(b, nil, keys); err != nil {
					return err
				}
			}
			indexed += len(names)
			if k != nil {
				return meta.Put(metaEntIdxPos, append([]byte{'r'}, names[len(names)-1]...))
			}
			finished = true
			if err := meta.Delete(metaEntIdxPos); err != nil {
				return err
			}
			return meta.Put(metaEntIdxReady, []byte{1})
		})
		if err != nil {
			return fmt.Errorf("index experiments and registry: %w", err)
		}
		if finished {
			s.log().Info("boltstore: experiment and registry indexes ready", zap.Int("entities_indexed", indexed),
				zap.Duration("took", time.Since(start)))
			return nil
		}
	}
	return nil
}

// indexNewExp writes the entries of an experiment created in tx.
func indexNewExp(tx *bolt.Tx, id uint64) error {
	keys, err := expIxKeys(tx, id)
	if err != nil {
		return err
	}
	return applyIxDiff(tx.Bucket(bEntIdx), nil, keys)
}

// withRMIndex is withIndex for a registered model without its versions.
func withRMIndex(tx *bolt.Tx, name string, fn func() error) error {
	return withIndex(tx, func() ([][]byte, error) { return rmIxKeys(tx, name) }, fn)
}

// withTransitionIndex is withIndex for a stage transition: one version,
// or with archive every version of the model (others may be archived).
func withTransitionIndex(tx *bolt.Tx, name string, version int64, archive bool, fn func() error) error {
	if archive {
		return withModelIndex(tx, []string{name}, fn)
	}
	return withVersionIndex(tx, name, version, fn)
}
