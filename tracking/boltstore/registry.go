package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Registry buckets. Keys of everything that belongs to one registered model
// start with appendStr(name), so that a model's tags, aliases, versions and
// version tags are contiguous prefix ranges.
var (
	bRM      = []byte("regmodel")    // name -> rmRecord (JSON)
	bRMTag   = []byte("regmodeltag") // str(name) | key -> value
	bRMAlias = []byte("regalias")    // str(name) | alias -> u64(version)
	bMV      = []byte("modelver")    // str(name) | u64(version) -> mvRecord (JSON)
	bMVTag   = []byte("modelvertag") // str(name) | u64(version) | key -> value
)

// registryBuckets are created with the store's other buckets.
var registryBuckets = [][]byte{bRM, bRMTag, bRMAlias, bMV, bMVTag}

func init() { allBucket = append(allBucket, registryBuckets...) }

// rmRecord is the stored form of a registered model. MaxVersion is the
// highest version number ever created, so that numbers are never reused
// after deletes.
type rmRecord struct {
	Created    int64  `json:"c"`
	Updated    int64  `json:"u"`
	Desc       string `json:"d,omitempty"`
	MaxVersion int64  `json:"mx"`
}

// mvRecord is the stored form of a model version.
type mvRecord struct {
	Created int64  `json:"c"`
	Updated int64  `json:"u"`
	Stage   string `json:"s"`
	Desc    string `json:"d,omitempty"`
	Source  string `json:"src"`
	Storage string `json:"loc,omitempty"`
	RunID   string `json:"r,omitempty"`
	RunLink string `json:"rl,omitempty"`
	Status  string `json:"st"`
	UserID  string `json:"uid,omitempty"`
	ModelID string `json:"mid,omitempty"`
}

func errNoModel(name string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Registered Model with name=%s not found", name)
}

func errNoVersion(name string, version int64) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Model Version (name=%s, version=%d) not found", name, version)
}

func modelPrefix(name string) []byte { return appendStr(nil, name) }

func versionKey(name string, version int64) []byte {
	return appendU64(appendStr(nil, name), uint64(version))
}

func getModel(tx *bolt.Tx, name string) (*rmRecord, error) {
	v := tx.Bucket(bRM).Get([]byte(name))
	if v == nil {
		return nil, errNoModel(name)
	}
	var rec rmRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode registered model %q: %w", name, err)
	}
	return &rec, nil
}

func getVersion(tx *bolt.Tx, name string, version int64) (*mvRecord, error) {
	v := tx.Bucket(bMV).Get(versionKey(name, version))
	if v == nil {
		return nil, errNoVersion(name, version)
	}
	var rec mvRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("decode model version %q/%d: %w", name, version, err)
	}
	return &rec, nil
}

// prefixTags reads key/value pairs stored under prefix.
func prefixTags(b *bolt.Bucket, prefix []byte) []tracking.Tag {
	var tags []tracking.Tag
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		tags = append(tags, tracking.Tag{Key: string(k[len(prefix):]), Value: string(v)})
	}
	return tags
}

// deletePrefix removes every key of b starting with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// movePrefix re-keys every entry of b from prefix from to prefix to.
func movePrefix(b *bolt.Bucket, from, to []byte) error {
	type kv struct{ k, v []byte }
	var moved []kv
	c := b.Cursor()
	for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, from); k, v = c.Next() {
		moved = append(moved, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
	}
	for _, e := range moved {
		if err := b.Delete(e.k); err != nil {
			return err
		}
		nk := append(append([]byte(nil), to...), e.k[len(from):]...)
		if err := b.Put(nk, e.v); err != nil {
			return err
		}
	}
	return nil
}

// modelAliases returns a model's aliases in alias order.
func modelAliases(tx *bolt.Tx, name string) []tracking.RegisteredModelAlias {
	var out []tracking.RegisteredModelAlias
	prefix := modelPrefix(name)
	c := tx.Bucket(bRMAlias).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		out = append(out, tracking.RegisteredModelAlias{
			Alias: string(k[len(prefix):]), Version: strconv.FormatUint(u64be(v), 10),
		})
	}
	return out
}

// versionEntity builds the wire form of a version; aliases are added only
// when withAliases (MLflow lists them on get and get-by-alias, not in
// searches or latest_versions).
func versionEntity(tx *bolt.Tx, name string, version int64, rec *mvRecord, withAliases bool) *tracking.ModelVersion {
	mv := &tracking.ModelVersion{
		Name:                 name,
		Version:              strconv.FormatInt(version, 10),
		CreationTimestamp:    rec.Created,
		LastUpdatedTimestamp: rec.Updated,
		UserID:               rec.UserID,
		CurrentStage:         rec.Stage,
		Description:          rec.Desc,
		Source:               rec.Source,
		RunID:                rec.RunID,
		Status:               rec.Status,
		RunLink:              rec.RunLink,
		Tags:                 prefixTags(tx.Bucket(bMVTag), versionKey(name, version)),
		StorageLocation:      rec.Storage,
		ModelID:              rec.ModelID,
	}
	if mv.StorageLocation == "" {
		mv.StorageLocation = rec.Source
	}
	if withAliases {
		want := mv.Version
		for _, a := range modelAliases(tx, name) {
			if a.Version == want {
				mv.Aliases = append(mv.Aliases, a.Alias)
			}
		}
	}
	return mv
}

// forEachVersion calls fn for every version of a model in ascending
// version order.
func forEachVersion(tx *bolt.Tx, name string, fn func(version int64, rec *mvRecord) error) error {
	prefix := modelPrefix(name)
	c := tx.Bucket(bMV).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		var rec mvRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode model version %q: %w", name, err)
		}
		if err := fn(int64(u64be(k[len(prefix):])), &rec); err != nil {
			return err
		}
	}
	return nil
}

// lastVersion returns the highest version of a model (0: none), from
// the last key of its range (versions are big-endian in the key).
func lastVersion(tx *bolt.Tx, name string) int64 {
	prefix := modelPrefix(name)
	c := tx.Bucket(bMV).Cursor()
	var k []byte
	if end := prefixEnd(prefix); end == nil {
		k, _ = c.Last()
	} else if k, _ = c.Seek(end); k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
		if len(k) == len(prefix)+8 {
			return int64(u64be(k[len(prefix):]))
		}
	}
	return 0
}

// latestVersions returns the highest version per stage, in the order in
// which the stages first occur among the versions in ascending version
// order (MLflow builds a dict that way).
func latestVersions(tx *bolt.Tx, name string) ([]*tracking.ModelVersion, error) {
	var order []string
	type latest struct {
		version int64
		rec     *mvRecord
	}
	by := make(map[string]latest)
	err := forEachVersion(tx, name, func(version int64, rec *mvRecord) error {
		if _, ok := by[rec.Stage]; !ok {
			order = append(order, rec.Stage)
		}
		by[rec.Stage] = latest{version, rec}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]*tracking.ModelVersion, 0, len(order))
	for _, st := range order {
		l := by[st]
		out = append(out, versionEntity(tx, name, l.version, l.rec, false))
	}
	return out, nil
}

func modelEntity(tx *bolt.Tx, name string, rec *rmRecord) (*tracking.RegisteredModel, error) {
	latest, err := latestVersions(tx, name)
	if err != nil {
		return nil, err
	}
	return &tracking.RegisteredModel{
		Name:                 name,
		CreationTimestamp:    rec.Created,
		LastUpdatedTimestamp: rec.Updated,
		Description:          rec.Desc,
		LatestVersions:       latest,
		Tags:                 prefixTags(tx.Bucket(bRMTag), modelPrefix(name)),
		Aliases:              modelAliases(tx, name),
	}, nil
}

func (s *Store) readModel(ctx context.Context, op, name string) (*tracking.RegisteredModel, error) {
	var out *tracking.RegisteredModel
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		rec, err := getModel(tx, name)
		if err != nil {
			return err
		}
		out, err = modelEntity(tx, name, rec)
		return err
	})
	return out, err
}

func (s *Store) readVersion(ctx context.Context, op, name string, version int64) (*tracking.ModelVersion, error) {
	var out *tracking.ModelVersion
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		rec, err := getVersion(tx, name, version)
		if err != nil {
			return err
		}
		out = versionEntity(tx, name, version, rec, true)
		return nil
	})
	return out, err
}

// CreateRegisteredModel implements tracking.RegistryStore.
func (s *Store) CreateRegisteredModel(ctx context.Context, req tracking.CreateRegisteredModel) (*tracking.RegisteredModel, error) {
	now := s.now()
	err := s.update(ctx, "create registered model", func(tx *bolt.Tx) error {
		return withModelIndex(tx, []string{req.Name}, func() error {
			b := tx.Bucket(bRM)
			if b.Get([]byte(req.Name)) != nil {
				return tracking.Errorf(tracking.ResourceAlreadyExists, "Registered Model (name=%s) already exists.", req.Name)
			}
			if err := putJSON(b, []byte(req.Name), rmRecord{Created: now, Updated: now, Desc: req.Description}); err != nil {
				return err
			}
			prefix := modelPrefix(req.Name)
			// Clear leftovers (none are expected: deletes cascade).
			for _, bk := range [][]byte{bRMTag, bRMAlias, bMV, bMVTag} {
				if err := deletePrefix(tx.Bucket(bk), prefix); err != nil {
					return err
				}
			}
			tb := tx.Bucket(bRMTag)
			for _, t := range req.Tags {
				if err := tb.Put(append(modelPrefix(req.Name), t.Key...), []byte(t.Value)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return s.readModel(ctx, "create registered model", req.Name)
}

// GetRegisteredModel implements tracking.RegistryStore.
func (s *Store) GetRegisteredModel(ctx context.Context, name string) (*tracking.RegisteredModel, error) {
	return s.readModel(ctx, "get registered model", name)
}

// RenameRegisteredModel implements tracking.RegistryStore.
func (s *Store) RenameRegisteredModel(ctx context.Context, name, newName string) (*tracking.RegisteredModel, error) {
	now := s.now()
	err := s.update(ctx, "rename registered model", func(tx *bolt.Tx) error {
		return withModelIndex(tx, []string{name, newName}, func() error {
			rec, err := getModel(tx, name)
			if err != nil {
				return err
			}
			if name == newName {
				return nil
			}
			b := tx.Bucket(bRM)
			if b.Get([]byte(newName)) != nil {
				return tracking.Errorf(tracking.ResourceAlreadyExists, "Registered Model (name=%s) already exists.", newName)
			}
			rec.Updated = now
			if err := b.Delete([]byte(name)); err != nil {
				return err
			}
			if err := putJSON(b, []byte(newName), rec); err != nil {
				return err
			}
			from, to := modelPrefix(name), modelPrefix(newName)
			for _, bk := range [][]byte{bRMTag, bRMAlias, bMV, bMVTag} {
				if err := deletePrefix(tx.Bucket(bk), to); err != nil {
					return err
				}
				if err := movePrefix(tx.Bucket(bk), from, to); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return s.readModel(ctx, "rename registered model", newName)
}

// UpdateRegisteredModel implements tracking.RegistryStore.
func (s *Store) UpdateRegisteredModel(ctx context.Context, name, description string) (*tracking.RegisteredModel, error) {
	now := s.now()
	err := s.update(ctx, "update registered model", func(tx *bolt.Tx) error {
		return withRMIndex(tx, name, func() error {
			rec, err := getModel(tx, name)
			if err != nil {
				return err
			}
			rec.Desc, rec.Updated = description, now
			return putJSON(tx.Bucket(bRM), []byte(name), rec)
		})
	})
	if err != nil {
		return nil, err
	}
	return s.readModel(ctx, "update registered model", name)
}

// DeleteRegisteredModel implements tracking.RegistryStore.
func (s *Store) DeleteRegisteredModel(ctx context.Context, name string) error {
	return s.update(ctx, "delete registered model", func(tx *bolt.Tx) error {
		return withModelIndex(tx, []string{name}, func() error {
			if _, err := getModel(tx, name); err != nil {
				return err
			}
			if err := tx.Bucket(bRM).Delete([]byte(name)); err != nil {
				return err
			}
			prefix := modelPrefix(name)
			for _, bk := range [][]byte{bRMTag, bRMAlias, bMV, bMVTag} {
				if err := deletePrefix(tx.Bucket(bk), prefix); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// rmView adapts a stored model to search.RegisteredModelView.
type rmView struct {
	name string
	rec  rmRecord
	tags map[string]string
}

func (v *rmView) Name() string                { return v.name }
func (v *rmView) LastUpdatedTimestamp() int64 { return v.rec.Updated }
func (v *rmView) Tag(k string) (string, bool) {
	t, ok := v.tags[k]
	return t, ok
}

func regTagMap(tags []tracking.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// registryCursor decodes a registry search's page token (errors are the
// search package's, which the handlers report as INVALID_PARAMETER_VALUE).
func registryCursor(kind, token string, filter []search.Clause, keys []search.OrderKey) (*search.Cursor, *search.Fingerprint, error) {
	fp := search.NewFingerprint(kind).AddClauses(filter).AddOrderKeys(keys)
	cur, err := search.DecodeCursor(token, fp)
	return cur, fp, err
}

// registryPage bounds the page of n sorted rows that follow the cursor
// and reports whether rows follow it.
func registryPage(cur *search.Cursor, max, n int) (start, end int, more bool) {
	start = min(cur.Offset(), n)
	end = n
	if max > 0 && start+max < n {
		end = start + max
		more = true
	}
	return start, end, more
}

// SearchRegisteredModels implements tracking.RegistryStore.
func (s *Store) SearchRegisteredModels(ctx context.Context, q tracking.RegisteredModelQuery) (tracking.RegisteredModelPage, error) {
	var page tracking.RegisteredModelPage
	cur, fp, err := registryCursor("registered models", q.PageToken, q.Filter, q.OrderBy)
	if err != nil {
		return page, err
	}
	err = s.view(ctx, "search registered models", func(tx *bolt.Tx) error {
		var matched []*rmView
		rms := tx.Bucket(bRM)
		consider := func(k, v []byte) (bool, error) {
			mv := &rmView{name: string(k)}
			if err := json.Unmarshal(v, &mv.rec); err != nil {
				return false, fmt.Errorf("decode registered model %q: %w", k, err)
			}
			mv.tags = regTagMap(prefixTags(tx.Bucket(bRMTag), modelPrefix(mv.name)))
			if search.MatchRegisteredModel(q.Filter, mv) && cur.AfterRegisteredModel(q.OrderBy, mv) {
				matched = append(matched, mv)
				return true, nil
			}
			return false, nil
		}
		pl := &entPlan{ctx: ctx, need: rowsWanted(cur.Offset(), q.MaxResults)}
		pl.consider = func(ref []byte) (bool, error) {
			if v := rms.Get(ref); v != nil {
				return consider(ref, v)
			}
			return false, nil
		}
		pl.scan = func() error {
			return forRange(rms, nil, nil, false, func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				_, err := consider(k, v)
				return err
			})
		}
		pl.reset = func() { matched = matched[:0] }
		if !s.scanSearch {
			pl.clauses, pl.order, pl.rev = rmPlan(tx, q.Filter, q.OrderBy, cur)
		}
		if err := pl.run(); err != nil {
			return err
		}
		sort.SliceStable(matched, func(i, j int) bool {
			return search.CompareRegisteredModels(q.OrderBy, matched[i], matched[j]) < 0
		})
		start, end, more := registryPage(cur, q.MaxResults, len(matched))
		if more {
			page.NextPageToken = search.RegisteredModelPageToken(fp, q.OrderBy, matched[end-1])
		}
		for _, mv := range matched[start:end] {
			m, err := modelEntity(tx, mv.name, &mv.rec)
			if err != nil {
				return err
			}
			page.Models = append(page.Models, m)
		}
		return nil
	})
	return page, err
}

// GetLatestVersions implements tracking.RegistryStore.
func (s *Store) GetLatestVersions(ctx context.Context, name string, stages []string) ([]*tracking.ModelVersion, error) {
	var out []*tracking.ModelVersion
	err := s.view(ctx, "get latest versions", func(tx *bolt.Tx) error {
		if _, err := getModel(tx, name); err != nil {
			return err
		}
		latest, err := latestVersions(tx, name)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, mv := range latest {
			if len(stages) == 0 || containsStr(stages, mv.CurrentStage) {
				out = append(out, mv)
			}
		}
		return nil
	})
	return out, err
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// SetRegisteredModelTag implements tracking.RegistryStore.
func (s *Store) SetRegisteredModelTag(ctx context.Context, name string, tag tracking.Tag) error {
	return s.update(ctx, "set registered model tag", func(tx *bolt.Tx) error {
		return withRMIndex(tx, name, func() error {
			if _, err := getModel(tx, name); err != nil {
				return err
			}
			return tx.Bucket(bRMTag).Put(append(modelPrefix(name), tag.Key...), []byte(tag.Value))
		})
	})
}

// DeleteRegisteredModelTag implements tracking.RegistryStore.
func (s *Store) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	return s.update(ctx, "delete registered model tag", func(tx *bolt.Tx) error {
		return withRMIndex(tx, name, func() error {
			if _, err := getModel(tx, name); err != nil {
				return err
			}
			return tx.Bucket(bRMTag).Delete(append(modelPrefix(name), key...))
		})
	})
}

// SetRegisteredModelAlias implements tracking.RegistryStore.
func (s *Store) SetRegisteredModelAlias(ctx context.Context, name, alias string, version int64) error {
	return s.update(ctx, "set registered model alias", func(tx *bolt.Tx) error {
		if _, err := getModel(tx, name); err != nil {
			return err
		}
		if _, err := getVersion(tx, name, version); err != nil {
			return err
		}
		return tx.Bucket(bRMAlias).Put(append(modelPrefix(name), alias...), u64(uint64(version)))
	})
}

// DeleteRegisteredModelAlias implements tracking.RegistryStore.
func (s *Store) DeleteRegisteredModelAlias(ctx context.Context, name, alias string) error {
	return s.update(ctx, "delete registered model alias", func(tx *bolt.Tx) error {
		if _, err := getModel(tx, name); err != nil {
			return err
		}
		return tx.Bucket(bRMAlias).Delete(append(modelPrefix(name), alias...))
	})
}

// GetModelVersionByAlias implements tracking.RegistryStore. An alias whose
// version was deleted (MLflow 2.22.1 keeps such aliases) is not found.
func (s *Store) GetModelVersionByAlias(ctx context.Context, name, alias string) (*tracking.ModelVersion, error) {
	var out *tracking.ModelVersion
	err := s.view(ctx, "get model version by alias", func(tx *bolt.Tx) error {
		if _, err := getModel(tx, name); err != nil {
			return err
		}
		notFound := tracking.Errorf(tracking.InvalidParameterValue, "Registered model alias %s not found.", alias)
		var version int64
		if strings.EqualFold(alias, "latest") {
			version = lastVersion(tx, name) // the last key, not a decode of every version
		} else if v := tx.Bucket(bRMAlias).Get(append(modelPrefix(name), alias...)); v != nil {
			version = int64(u64be(v))
		}
		if version == 0 {
			return notFound
		}
		rec, err := getVersion(tx, name, version)
		if err != nil {
			if tracking.IsCode(err, tracking.ResourceDoesNotExist) {
				return notFound
			}
			return err
		}
		out = versionEntity(tx, name, version, rec, true)
		return nil
	})
	return out, err
}

// CreateModelVersion implements tracking.RegistryStore.
func (s *Store) CreateModelVersion(ctx context.Context, req tracking.CreateModelVersion) (*tracking.ModelVersion, error) {
	now := s.now()
	var version int64
	err := s.update(ctx, "create model version", func(tx *bolt.Tx) error {
		rec, err := getModel(tx, req.Name)
		if err != nil {
			return err
		}
		version = max(rec.MaxVersion, lastVersion(tx, req.Name)) + 1
		return withVersionIndex(tx, req.Name, version, func() error {
			rec.MaxVersion, rec.Updated = version, now
			if err := putJSON(tx.Bucket(bRM), []byte(req.Name), rec); err != nil {
				return err
			}
			storage := req.StorageLocation
			if storage == req.Source {
				storage = ""
			}
			mv := mvRecord{
				Created: now, Updated: now, Stage: tracking.StageNone, Desc: req.Description,
				Source: req.Source, Storage: storage, RunID: req.RunID, RunLink: req.RunLink,
				Status: tracking.ModelVersionStatusReady, UserID: req.UserID, ModelID: req.ModelID,
			}
			if req.ModelID != "" && !isPromptVersion(req.Tags) {
				if err := addModelVersionTag(tx, req.ModelID, req.Name, version, now); err != nil {
					return err
				}
			}
			key := versionKey(req.Name, version)
			if err := putJSON(tx.Bucket(bMV), key, mv); err != nil {
				return err
			}
			tb := tx.Bucket(bMVTag)
			if err := deletePrefix(tb, key); err != nil {
				return err
			}
			for _, t := range req.Tags {
				if err := tb.Put(append(versionKey(req.Name, version), t.Key...), []byte(t.Value)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return s.readVersion(ctx, "create model version", req.Name, version)
}

// GetModelVersion implements tracking.RegistryStore.
func (s *Store) GetModelVersion(ctx context.Context, name string, version int64) (*tracking.ModelVersion, error) {
	return s.readVersion(ctx, "get model version", name, version)
}

// UpdateModelVersion implements tracking.RegistryStore.
func (s *Store) UpdateModelVersion(ctx context.Context, name string, version int64, description string) (*tracking.ModelVersion, error) {
	now := s.now()
	err := s.update(ctx, "update model version", func(tx *bolt.Tx) error {
		return withVersionIndex(tx, name, version, func() error {
			rec, err := getVersion(tx, name, version)
			if err != nil {
				return err
			}
			rec.Desc, rec.Updated = description, now
			return putJSON(tx.Bucket(bMV), versionKey(name, version), rec)
		})
	})
	if err != nil {
		return nil, err
	}
	return s.readVersion(ctx, "update model version", name, version)
}

// TransitionModelVersionStage implements tracking.RegistryStore.
func (s *Store) TransitionModelVersionStage(ctx context.Context, name string, version int64, stage string, archive bool) (*tracking.ModelVersion, error) {
	if archive && stage != tracking.StageStaging && stage != tracking.StageProduction {
		// MLflow answers 500 here; it is a client mistake.
		return nil, tracking.Errorf(tracking.InvalidParameterValue,
			"Model version transition cannot archive existing model versions because '%s' is not an Active stage. "+
				"Valid stages are %s, %s", stage, tracking.StageStaging, tracking.StageProduction)
	}
	now := s.now()
	err := s.update(ctx, "transition model version stage", func(tx *bolt.Tx) error {
		return withTransitionIndex(tx, name, version, archive, func() error {
			model, err := getModel(tx, name)
			if err != nil {
				return err
			}
			rec, err := getVersion(tx, name, version)
			if err != nil {
				return err
			}
			b := tx.Bucket(bMV)
			if archive {
				type upd struct {
					v   int64
					rec mvRecord
				}
				var others []upd
				if err := forEachVersion(tx, name, func(v int64, r *mvRecord) error {
					if v != version && r.Stage == stage {
						r.Stage, r.Updated = tracking.StageArchived, now
						others = append(others, upd{v, *r})
					}
					return nil
				}); err != nil {
					return err
				}
				for _, o := range others {
					if err := putJSON(b, versionKey(name, o.v), o.rec); err != nil {
						return err
					}
				}
			}
			rec.Stage, rec.Updated = stage, now
			if err := putJSON(b, versionKey(name, version), rec); err != nil {
				return err
			}
			model.Updated = now
			return putJSON(tx.Bucket(bRM), []byte(name), model)
		})
	})
	if err != nil {
		return nil, err
	}
	return s.readVersion(ctx, "transition model version stage", name, version)
}

// DeleteModelVersion implements tracking.RegistryStore. Aliases that
// point at the version are kept, as MLflow 2.22.1 keeps them (they no
// longer resolve).
func (s *Store) DeleteModelVersion(ctx context.Context, name string, version int64) error {
	now := s.now()
	return s.update(ctx, "delete model version", func(tx *bolt.Tx) error {
		return withVersionIndex(tx, name, version, func() error {
			model, err := getModel(tx, name)
			if err != nil {
				return err
			}
			if _, err := getVersion(tx, name, version); err != nil {
				return err
			}
			key := versionKey(name, version)
			if err := tx.Bucket(bMV).Delete(key); err != nil {
				return err
			}
			if err := deletePrefix(tx.Bucket(bMVTag), key); err != nil {
				return err
			}
			model.MaxVersion = max(model.MaxVersion, version)
			model.Updated = now
			return putJSON(tx.Bucket(bRM), []byte(name), model)
		})
	})
}

// mvView adapts a stored version to search.ModelVersionView.
type mvView struct {
	name    string
	version int64
	rec     mvRecord
	tags    map[string]string
}

func (v *mvView) Name() string                { return v.name }
func (v *mvView) Version() int64              { return v.version }
func (v *mvView) RunID() string               { return v.rec.RunID }
func (v *mvView) Source() string              { return v.rec.Source }
func (v *mvView) CreationTimestamp() int64    { return v.rec.Created }
func (v *mvView) LastUpdatedTimestamp() int64 { return v.rec.Updated }
func (v *mvView) Tag(k string) (string, bool) {
	t, ok := v.tags[k]
	return t, ok
}

// SearchModelVersions implements tracking.RegistryStore.
func (s *Store) SearchModelVersions(ctx context.Context, q tracking.ModelVersionQuery) (tracking.ModelVersionPage, error) {
	var page tracking.ModelVersionPage
	cur, fp, err := registryCursor("model versions", q.PageToken, q.Filter, q.OrderBy)
	if err != nil {
		return page, err
	}
	err = s.view(ctx, "search model versions", func(tx *bolt.Tx) error {
		var matched []*mvView
		tb, mvs := tx.Bucket(bMVTag), tx.Bucket(bMV)
		consider := func(k, v []byte) (bool, error) {
			name, rest, ok := readStr(k)
			if !ok || len(rest) != 8 {
				return false, nil
			}
			mv := &mvView{name: name, version: int64(u64be(rest))}
			if err := json.Unmarshal(v, &mv.rec); err != nil {
				return false, fmt.Errorf("decode model version %q: %w", name, err)
			}
			mv.tags = regTagMap(prefixTags(tb, k))
			if search.MatchModelVersion(q.Filter, mv) && cur.AfterModelVersion(q.OrderBy, mv) {
				matched = append(matched, mv)
				return true, nil
			}
			return false, nil
		}
		pl := &entPlan{ctx: ctx, need: rowsWanted(cur.Offset(), q.MaxResults)}
		pl.consider = func(ref []byte) (bool, error) {
			if v := mvs.Get(ref); v != nil {
				return consider(ref, v)
			}
			return false, nil
		}
		pl.scan = func() error {
			return forRange(mvs, nil, nil, false, func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				_, err := consider(k, v)
				return err
			})
		}
		pl.reset = func() { matched = matched[:0] }
		if !s.scanSearch {
			pl.clauses, pl.order, pl.rev = mvPlan(tx, q.Filter, q.OrderBy, cur)
		}
		if err := pl.run(); err != nil {
			return err
		}
		sort.SliceStable(matched, func(i, j int) bool {
			return search.CompareModelVersions(q.OrderBy, matched[i], matched[j]) < 0
		})
		start, end, more := registryPage(cur, q.MaxResults, len(matched))
		if more {
			page.NextPageToken = search.ModelVersionPageToken(fp, q.OrderBy, matched[end-1])
		}
		for _, mv := range matched[start:end] {
			page.Versions = append(page.Versions, versionEntity(tx, mv.name, mv.version, &mv.rec, false))
		}
		return nil
	})
	return page, err
}

// SetModelVersionTag implements tracking.RegistryStore.
func (s *Store) SetModelVersionTag(ctx context.Context, name string, version int64, tag tracking.Tag) error {
	return s.update(ctx, "set model version tag", func(tx *bolt.Tx) error {
		return withVersionIndex(tx, name, version, func() error {
			if _, err := getVersion(tx, name, version); err != nil {
				return err
			}
			return tx.Bucket(bMVTag).Put(append(versionKey(name, version), tag.Key...), []byte(tag.Value))
		})
	})
}

// DeleteModelVersionTag implements tracking.RegistryStore.
func (s *Store) DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error {
	return s.update(ctx, "delete model version tag", func(tx *bolt.Tx) error {
		return withVersionIndex(tx, name, version, func() error {
			if _, err := getVersion(tx, name, version); err != nil {
				return err
			}
			return tx.Bucket(bMVTag).Delete(append(versionKey(name, version), key...))
		})
	})
}

func isPromptVersion(tags []tracking.Tag) bool {
	for _, t := range tags {
		if t.Key == tracking.TagIsPrompt && strings.EqualFold(t.Value, "true") {
			return true
		}
	}
	return false
}

// addModelVersionTag appends {"name", "version"} to the logged model's
// mlflow.modelVersions tag (JSON written as Python's json.dumps does). A
// missing logged model is RESOURCE_DOES_NOT_EXIST.
func addModelVersionTag(tx *bolt.Tx, modelID, name string, version, now int64) error {
	lm, err := getLoggedModel(tx, modelID)
	if err != nil {
		return err
	}
	type entry struct {
		Name    string `json:"name"`
		Version int64  `json:"version"`
	}
	var list []entry
	if v, ok := lm.Tag(tracking.TagModelVersions); ok && v != "" {
		var raw []struct {
			Name    string          `json:"name"`
			Version json.RawMessage `json:"version"`
		}
		if json.Unmarshal([]byte(v), &raw) == nil {
			for _, e := range raw {
				n, err := strconv.ParseInt(strings.Trim(string(e.Version), `"`), 10, 64)
				if err == nil {
					list = append(list, entry{e.Name, n})
				}
			}
		}
	}
	if !slices.Contains(list, entry{name, version}) {
		list = append(list, entry{name, version})
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		nameJSON, _ := json.Marshal(e.Name)
		fmt.Fprintf(&b, `{"name": %s, "version": %d}`, nameJSON, e.Version)
	}
	b.WriteByte(']')
	lm.Info.Tags = upsertTags(lm.Info.Tags, []tracking.Tag{{Key: tracking.TagModelVersions, Value: b.String()}})
	lm.Info.LastUpdatedTimestampMs = now
	return putJSON(tx.Bucket(bLoggedModel), []byte(modelID), lm)
}
