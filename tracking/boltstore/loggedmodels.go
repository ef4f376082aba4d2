package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Logged model buckets. A model's record holds its tags and params (small,
// read and written together); each metric point has its own key, like run
// metric history, so logging a point costs the same however many the
// model has.
var (
	bLoggedModel    = []byte("loggedmodel")    // model_id -> tracking.LoggedModel without metrics (JSON)
	bExpLoggedModel = []byte("exploggedmodel") // u64(expID) | model_id -> empty
	bRunOutput      = []byte("runoutput")      // str(run_id) | model_id -> u64(step)
	// str(model_id) | str(key) | ord(ts) | ord(step) | str(run_id) |
	// str(dataset_name) | str(dataset_digest) | ord(value) | nan -> ""
	bLMMetric = []byte("lmmetric")
)

func init() { allBucket = append(allBucket, bLoggedModel, bExpLoggedModel, bRunOutput, bLMMetric) }

// lmMetricKey is the key of one logged-model metric point. The point is
// the key, so exact repeats dedupe by themselves; -0 is stored as 0 and
// NaN as 0 plus a flag, as for run metrics.
func lmMetricKey(dst []byte, m *tracking.ModelMetric) []byte {
	dst = appendStr(dst, m.ModelID)
	dst = appendStr(dst, m.Key)
	dst = appendU64(dst, ordInt(m.Timestamp))
	dst = appendU64(dst, ordInt(m.Step))
	dst = appendStr(dst, m.RunID)
	dst = appendStr(dst, m.DatasetName)
	dst = appendStr(dst, m.DatasetDigest)
	v, nan := m.Value, byte(0)
	switch {
	case math.IsNaN(v):
		v, nan = 0, 1
	case v == 0:
		v = 0
	}
	dst = appendU64(dst, ordFloat(v))
	return append(dst, nan)
}

// readLMMetric decodes a key written by lmMetricKey.
func readLMMetric(k []byte) (tracking.ModelMetric, bool) {
	var m tracking.ModelMetric
	var ok bool
	if m.ModelID, k, ok = readStr(k); !ok {
		return m, false
	}
	if m.Key, k, ok = readStr(k); !ok || len(k) < 16 {
		return m, false
	}
	m.Timestamp = unordInt(binary.BigEndian.Uint64(k[0:8]))
	m.Step = unordInt(binary.BigEndian.Uint64(k[8:16]))
	k = k[16:]
	for _, dst := range []*string{&m.RunID, &m.DatasetName, &m.DatasetDigest} {
		if *dst, k, ok = readStr(k); !ok {
			return m, false
		}
	}
	if len(k) != 9 {
		return m, false
	}
	m.Value = unordFloat(binary.BigEndian.Uint64(k[0:8]))
	if k[8] == 1 {
		m.Value = math.NaN()
	}
	return m, true
}

// loadLoggedModelMetrics reads every metric point of a model, in key
// order (metric key, timestamp, step, run).
func loadLoggedModelMetrics(tx *bolt.Tx, id string) ([]tracking.ModelMetric, error) {
	var out []tracking.ModelMetric
	prefix := appendStr(nil, id)
	c := tx.Bucket(bLMMetric).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		m, ok := readLMMetric(k)
		if !ok || m.ModelID != id {
			return nil, fmt.Errorf("corrupt logged model metric key %x", k)
		}
		out = append(out, m)
	}
	return out, nil
}

// putLoggedModel writes a model's record; its metrics live in bLMMetric
// and are left out.
func putLoggedModel(tx *bolt.Tx, m *tracking.LoggedModel) error {
	rec := *m
	rec.Data.Metrics = nil
	return putJSON(tx.Bucket(bLoggedModel), []byte(m.Info.ModelID), &rec)
}

var _ tracking.LoggedModelStore = (*Store)(nil)

func errNoLoggedModel(id string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "Logged model with ID '%s' not found.", id)
}

func getLoggedModel(tx *bolt.Tx, id string) (*tracking.LoggedModel, error) {
	m, err := getLoggedModelRecord(tx, id)
	if err != nil {
		return nil, err
	}
	if m.Data.Metrics, err = loadLoggedModelMetrics(tx, id); err != nil {
		return nil, err
	}
	return m, nil
}

// getLoggedModelRecord reads a model without its metrics.
func getLoggedModelRecord(tx *bolt.Tx, id string) (*tracking.LoggedModel, error) {
	v := tx.Bucket(bLoggedModel).Get([]byte(id))
	if v == nil {
		return nil, errNoLoggedModel(id)
	}
	var m tracking.LoggedModel
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, fmt.Errorf("decode logged model %q: %w", id, err)
	}
	return &m, nil
}

// loggedModelQueryNeedsMetrics reports whether matching or ordering q
// reads metric points (otherwise only the page's models load them).
func loggedModelQueryNeedsMetrics(q *tracking.LoggedModelQuery) bool {
	if len(q.Datasets) > 0 {
		return true
	}
	for _, c := range q.Filter {
		if c.Entity == search.EntityMetric {
			return true
		}
	}
	for _, o := range q.OrderBy {
		if strings.HasPrefix(o.FieldName, "metrics.") {
			return true
		}
	}
	return false
}

// CreateLoggedModel implements tracking.LoggedModelStore.
func (s *Store) CreateLoggedModel(ctx context.Context, req tracking.CreateLoggedModel) (*tracking.LoggedModel, error) {
	hex, err := newRunID()
	if err != nil {
		return nil, err
	}
	id := "m-" + hex
	now := s.now()
	var out *tracking.LoggedModel
	err = s.update(ctx, "create logged model", func(tx *bolt.Tx) error {
		out = nil
		expID, exp, err := mustExp(tx, req.ExperimentID)
		if err != nil {
			return err
		}
		if exp.Lifecycle != tracking.LifecycleActive {
			return errExperimentNotActive(expID, exp.Lifecycle)
		}
		// The source run is not looked up: MLflow's create_logged_model
		// stores source_run_id as given (the column has no foreign key).
		m := &tracking.LoggedModel{Info: tracking.LoggedModelInfo{
			ModelID:                id,
			ExperimentID:           fmtExpID(expID),
			Name:                   req.Name,
			CreationTimestampMs:    now,
			LastUpdatedTimestampMs: now,
			ArtifactURI:            joinURI(exp.ArtifactLocation, "models", id, "artifacts"),
			Status:                 tracking.LoggedModelStatusPending,
			ModelType:              req.ModelType,
			SourceRunID:            req.SourceRunID,
			Tags:                   upsertTags(nil, req.Tags),
		}}
		if err := mergeParams(m, req.Params); err != nil {
			return err
		}
		if err := putLoggedModel(tx, m); err != nil {
			return err
		}
		if err := tx.Bucket(bExpLoggedModel).Put(append(u64(expID), id...), nil); err != nil {
			return err
		}
		if err := indexLoggedModel(tx, nil, m); err != nil {
			return err
		}
		out = m
		return nil
	})
	return out, err
}

// mergeParams adds params to m; a key logged with another value is refused.
func mergeParams(m *tracking.LoggedModel, params []tracking.Param) error {
	for _, p := range params {
		i := slices.IndexFunc(m.Data.Params, func(q tracking.Param) bool { return q.Key == p.Key })
		switch {
		case i < 0:
			m.Data.Params = append(m.Data.Params, p)
		case m.Data.Params[i].Value != p.Value:
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Changing param values is not allowed. Param with key='%s' was already logged with value='%s' "+
					"for logged model ID='%s'. Attempted logging new value '%s'.",
				p.Key, m.Data.Params[i].Value, m.Info.ModelID, p.Value)
		}
	}
	return nil
}

func (s *Store) modifyLoggedModel(ctx context.Context, op, id string, fn func(m *tracking.LoggedModel) error) (*tracking.LoggedModel, error) {
	now := s.now()
	var out *tracking.LoggedModel
	err := s.update(ctx, op, func(tx *bolt.Tx) error {
		out = nil
		m, err := getLoggedModel(tx, id)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		m.Info.LastUpdatedTimestampMs = now
		if err := putLoggedModel(tx, m); err != nil {
			return err
		}
		out = m
		return nil
	})
	return out, err
}

// GetLoggedModel implements tracking.LoggedModelStore.
func (s *Store) GetLoggedModel(ctx context.Context, id string) (*tracking.LoggedModel, error) {
	var out *tracking.LoggedModel
	err := s.view(ctx, "get logged model", func(tx *bolt.Tx) error {
		m, err := getLoggedModel(tx, id)
		out = m
		return err
	})
	return out, err
}

// FinalizeLoggedModel implements tracking.LoggedModelStore.
func (s *Store) FinalizeLoggedModel(ctx context.Context, id, status string) (*tracking.LoggedModel, error) {
	return s.modifyLoggedModel(ctx, "finalize logged model", id, func(m *tracking.LoggedModel) error {
		m.Info.Status = status
		return nil
	})
}

// DeleteLoggedModel implements tracking.LoggedModelStore.
func (s *Store) DeleteLoggedModel(ctx context.Context, id string) error {
	return s.update(ctx, "delete logged model", func(tx *bolt.Tx) error {
		m, err := getLoggedModel(tx, id)
		if err != nil {
			return err
		}
		exp, ok := parseExpID(m.Info.ExperimentID)
		if ok {
			if err := tx.Bucket(bExpLoggedModel).Delete(append(u64(exp), id...)); err != nil {
				return err
			}
		}
		if err := deletePrefix(tx.Bucket(bLMMetric), appendStr(nil, id)); err != nil {
			return err
		}
		if err := indexLoggedModel(tx, m, nil); err != nil {
			return err
		}
		return tx.Bucket(bLoggedModel).Delete([]byte(id))
	})
}

// SetLoggedModelTags implements tracking.LoggedModelStore.
func (s *Store) SetLoggedModelTags(ctx context.Context, id string, tags []tracking.Tag) error {
	_, err := s.modifyLoggedModel(ctx, "set logged model tags", id, func(m *tracking.LoggedModel) error {
		m.Info.Tags = upsertTags(m.Info.Tags, tags)
		return nil
	})
	return err
}

// DeleteLoggedModelTag implements tracking.LoggedModelStore.
func (s *Store) DeleteLoggedModelTag(ctx context.Context, id, key string) error {
	_, err := s.modifyLoggedModel(ctx, "delete logged model tag", id, func(m *tracking.LoggedModel) error {
		i := slices.IndexFunc(m.Info.Tags, func(t tracking.Tag) bool { return t.Key == key })
		if i < 0 {
			return tracking.Errorf(tracking.ResourceDoesNotExist, "No tag with key %q found for model with ID %q.", key, id)
		}
		m.Info.Tags = slices.Delete(m.Info.Tags, i, i+1)
		return nil
	})
	return err
}

// LogLoggedModelParams implements tracking.LoggedModelStore.
func (s *Store) LogLoggedModelParams(ctx context.Context, id string, params []tracking.Param) error {
	_, err := s.modifyLoggedModel(ctx, "log logged model params", id, func(m *tracking.LoggedModel) error {
		return mergeParams(m, params)
	})
	return err
}

// SearchLoggedModels implements tracking.LoggedModelStore.
func (s *Store) SearchLoggedModels(ctx context.Context, q tracking.LoggedModelQuery) (tracking.LoggedModelPage, error) {
	var expIDs []uint64
	for _, idStr := range q.ExperimentIDs {
		exp, ok := parseExpID(idStr)
		if ok && idStr != "" && !slices.Contains(expIDs, exp) {
			expIDs = append(expIDs, exp)
		}
	}
	fp := expIDsFingerprint(search.NewFingerprint("logged models"), expIDs).AddClauses(q.Filter).
		AddDatasetRefs(q.Datasets).AddLoggedModelOrders(q.OrderBy)
	cur, err := decodeCursor(q.After, fp)
	if err != nil {
		return tracking.LoggedModelPage{}, err
	}
	needMetrics := loggedModelQueryNeedsMetrics(&q)
	var page tracking.LoggedModelPage
	err = s.view(ctx, "search logged models", func(tx *bolt.Tx) error {
		page = tracking.LoggedModelPage{}
		offset := max(q.Offset, 0)
		if ok, asc := indexLMOrder(q.OrderBy); ok && cur.Offset() == 0 && lmIndexReady(tx) {
			models, more, err := searchLoggedModelsIndexed(tx, expIDs, &q, cur, offset, max(q.MaxResults, 0), asc, needMetrics)
			if err != nil {
				return err
			}
			page.Models, page.More = models, more
			return finishLoggedModelPage(tx, &page, fp, q.OrderBy, needMetrics)
		}
		var all []*tracking.LoggedModel
		for _, exp := range expIDs {
			prefix := u64(exp)
			c := tx.Bucket(bExpLoggedModel).Cursor()
			for k, _ := c.Seek(prefix); k != nil && len(k) > 8 && string(k[:8]) == string(prefix); k, _ = c.Next() {
				get := getLoggedModelRecord
				if needMetrics {
					get = getLoggedModel
				}
				m, err := get(tx, string(k[8:]))
				if err != nil {
					return err
				}
				if search.MatchLoggedModel(q.Filter, q.Datasets, m) && cur.AfterLoggedModel(q.OrderBy, m) {
					all = append(all, m)
				}
			}
		}
		sort.SliceStable(all, func(i, j int) bool { return search.CompareLoggedModels(q.OrderBy, all[i], all[j]) < 0 })
		if offset < len(all) {
			page.Models = all[offset:min(offset+q.MaxResults, len(all))]
		}
		page.More = offset+len(page.Models) < len(all)
		return finishLoggedModelPage(tx, &page, fp, q.OrderBy, needMetrics)
	})
	if err != nil {
		return tracking.LoggedModelPage{}, err
	}
	return page, nil
}

// finishLoggedModelPage sets the page's token and loads its models'
// metrics when the search did not.
func finishLoggedModelPage(tx *bolt.Tx, page *tracking.LoggedModelPage, fp *search.Fingerprint,
	keys []search.LoggedModelOrder, haveMetrics bool) error {
	if page.More && len(page.Models) > 0 {
		page.Next = search.LoggedModelPageToken(fp, keys, page.Models[len(page.Models)-1])
	}
	if haveMetrics {
		return nil
	}
	for _, m := range page.Models {
		var err error
		if m.Data.Metrics, err = loadLoggedModelMetrics(tx, m.Info.ModelID); err != nil {
			return err
		}
	}
	return nil
}

// logModelMetrics records metric values of logged models, one key per
// point (exact repeats are no-ops). The values are already clamped.
func logModelMetrics(tx *bolt.Tx, metrics []tracking.ModelMetric) error {
	models, b := tx.Bucket(bLoggedModel), tx.Bucket(bLMMetric)
	k := make([]byte, 0, 128)
	for i := range metrics {
		m := &metrics[i]
		if models.Get([]byte(m.ModelID)) == nil {
			return errNoLoggedModel(m.ModelID)
		}
		k = lmMetricKey(k[:0], m)
		if b.Get(k) != nil {
			continue
		}
		if err := b.Put(bytes.Clone(k), []byte{}); err != nil {
			return err
		}
	}
	return nil
}

// LogOutputs implements tracking.LoggedModelStore.
func (s *Store) LogOutputs(ctx context.Context, runID string, outputs []tracking.ModelOutput) error {
	return s.update(ctx, "log outputs", func(tx *bolt.Tx) error {
		if _, err := mustActiveRun(tx, runID); err != nil {
			return err
		}
		for _, o := range outputs {
			if _, err := getLoggedModel(tx, o.ModelID); err != nil {
				return err
			}
			if err := tx.Bucket(bRunOutput).Put(append(appendStr(nil, runID), o.ModelID...), u64(uint64(o.Step))); err != nil {
				return err
			}
		}
		return nil
	})
}
