package boltstore

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// writeV1Layout rewrites a current database in the version-1 layout:
// history keys ordered (step, timestamp, value) in bucket "hist", logged
// model metrics inside the model records, version 1. With partial set,
// every other history key is left in the new bucket, as a migration
// interrupted half way leaves it.
func writeV1Layout(t *testing.T, path string, partial bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	ok(t, err)
	defer db.Close()
	ok(t, db.Update(func(tx *bolt.Tx) error {
		old, err := tx.CreateBucket(bHistV1)
		if err != nil {
			return err
		}
		var moved [][]byte
		i := 0
		err = tx.Bucket(bHist).ForEach(func(k, _ []byte) error {
			i++
			if partial && i%2 == 0 {
				return nil
			}
			cut := len(k) - pointLen
			step, ts, v, ok := readHistPoint(k[cut:])
			if !ok {
				t.Fatalf("bad key %x", k)
			}
			moved = append(moved, bytes.Clone(k))
			return old.Put(appendPoint(bytes.Clone(k[:cut]), step, ts, v), []byte{})
		})
		if err != nil {
			return err
		}
		for _, k := range moved {
			if err := tx.Bucket(bHist).Delete(k); err != nil {
				return err
			}
		}
		if !partial {
			if err := tx.DeleteBucket(bHist); err != nil {
				return err
			}
		}
		// Metrics back into the records, newest first (the old layout
		// kept them in logging order, which is not key order).
		var ids []string
		ok(t, tx.Bucket(bLoggedModel).ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil }))
		for _, id := range ids {
			m, err := getLoggedModel(tx, id)
			if err != nil {
				return err
			}
			for i, j := 0, len(m.Data.Metrics)-1; i < j; i, j = i+1, j-1 {
				m.Data.Metrics[i], m.Data.Metrics[j] = m.Data.Metrics[j], m.Data.Metrics[i]
			}
			if err := putJSON(tx.Bucket(bLoggedModel), []byte(id), m); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket(bLMMetric); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put([]byte("version"), u64(1))
	}))
}

func TestMigrateV1(t *testing.T) {
	for _, partial := range []bool{false, true} {
		name := "whole"
		if partial {
			name = "interrupted"
		}
		t.Run(name, func(t *testing.T) {
			defer func(n int) { migrateChunk = n }(migrateChunk)
			migrateChunk = 3 // several chunks

			s, path := openTest(t)
			exp := mkExp(t, s, "e")
			run := mkRun(t, s, exp, "r", 1)
			var ms []tracking.Metric
			for i := 0; i < 20; i++ {
				// Timestamps fall as steps rise: the two orders differ.
				ms = append(ms, tracking.Metric{Key: "loss", Value: float64(i % 3), Timestamp: int64(100 - i/2), Step: int64(i)})
			}
			ms = append(ms, tracking.Metric{Key: "loss", Value: math.NaN(), Timestamp: 5, Step: 0})
			var models []string
			var mm []tracking.ModelMetric
			for i := 0; i < 4; i++ {
				m, err := s.CreateLoggedModel(bg, tracking.CreateLoggedModel{ExperimentID: exp, Name: "m", Tags: []tracking.Tag{{Key: "k", Value: "v"}}})
				ok(t, err)
				models = append(models, m.Info.ModelID)
				for j := 0; j < 3; j++ {
					mm = append(mm, tracking.ModelMetric{Key: "acc", Value: float64(j) / 10, Timestamp: int64(10 - j), Step: int64(j),
						ModelID: m.Info.ModelID, DatasetName: "ds", DatasetDigest: "d"})
				}
				mm = append(mm, tracking.ModelMetric{Key: "nan", Value: math.NaN(), Timestamp: 1, ModelID: m.Info.ModelID})
			}
			ok(t, s.LogBatch(bg, run, tracking.Batch{Metrics: ms, ModelMetrics: mm}))
			wantHist := history(t, s, run, "loss")
			wantModels := map[string]*tracking.LoggedModel{}
			for _, id := range models {
				m, err := s.GetLoggedModel(bg, id)
				ok(t, err)
				wantModels[id] = m
			}
			ok(t, s.Close())

			writeV1Layout(t, path, partial)
			s2, err := Open(path, Options{})
			ok(t, err)
			defer s2.Close()

			got := history(t, s2, run, "loss")
			if len(got) != len(wantHist) || len(got) != 21 {
				t.Fatalf("history after migration: %d points, want %d", len(got), len(wantHist))
			}
			for i := range got {
				a, b := got[i], wantHist[i]
				if a.Step != b.Step || a.Timestamp != b.Timestamp || (a.Value != b.Value && !(math.IsNaN(a.Value) && math.IsNaN(b.Value))) {
					t.Fatalf("history[%d] = %+v, want %+v", i, a, b)
				}
				if i > 0 && got[i-1].Timestamp > a.Timestamp {
					t.Fatalf("history not in timestamp order: %+v", got)
				}
			}
			for _, id := range models {
				m, err := s2.GetLoggedModel(bg, id)
				ok(t, err)
				if len(m.Data.Metrics) != 4 || !reflect.DeepEqual(fmtMetrics(m.Data.Metrics), fmtMetrics(wantModels[id].Data.Metrics)) {
					t.Fatalf("model %s metrics %+v, want %+v", id, m.Data.Metrics, wantModels[id].Data.Metrics)
				}
				if len(m.Info.Tags) != 1 {
					t.Fatalf("model %s tags %+v", id, m.Info.Tags)
				}
			}
			ok(t, s2.db.View(func(tx *bolt.Tx) error {
				if tx.Bucket(bHistV1) != nil {
					t.Error("the version-1 history bucket is still there")
				}
				if v := tx.Bucket(bMeta).Get([]byte("version")); u64be(v) != schemaVersion {
					t.Errorf("version %x", v)
				}
				return tx.Bucket(bLoggedModel).ForEach(func(k, v []byte) error {
					var rec map[string]json.RawMessage
					if err := json.Unmarshal(v, &rec); err != nil {
						return err
					}
					if bytes.Contains(rec["data"], []byte("metrics")) {
						t.Errorf("record %s still carries metrics: %s", k, v)
					}
					return nil
				})
			}))
			// Logging continues on the new layout: repeats dedupe.
			ok(t, s2.LogBatch(bg, run, tracking.Batch{Metrics: ms[:2], ModelMetrics: mm[:2]}))
			if got := history(t, s2, run, "loss"); len(got) != 21 {
				t.Fatalf("history after re-logging: %d points", len(got))
			}
			m, err := s2.GetLoggedModel(bg, models[0])
			ok(t, err)
			if len(m.Data.Metrics) != 4 {
				t.Fatalf("model metrics after re-logging: %+v", m.Data.Metrics)
			}
		})
	}
}

// fmtMetrics makes NaN comparable.
func fmtMetrics(ms []tracking.ModelMetric) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		b, _ := json.Marshal(m)
		out[i] = string(b)
	}
	return out
}

// A newer database than this code knows is refused, not rewritten.
func TestOpenRefusesNewerSchema(t *testing.T) {
	s, path := openTest(t)
	ok(t, s.Close())
	db, err := bolt.Open(path, 0o600, nil)
	ok(t, err)
	ok(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte("version"), u64(schemaVersion+1)) }))
	ok(t, db.Close())
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("opened a database of a newer schema")
	}
}
