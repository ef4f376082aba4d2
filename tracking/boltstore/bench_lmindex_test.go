package boltstore

import (
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// seedLoggedModels writes n logged models into exp straight through the
// store's record and index functions, 1000 per transaction, each with a
// tag, two params and a status like a finished training run's model.
func seedLoggedModels(b *testing.B, s *Store, exp string, n int) {
	b.Helper()
	expID, _ := parseExpID(exp)
	base := int64(1_700_000_000_000)
	for done := 0; done < n; {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for end := min(done+1000, n); done < end; done++ {
				i := done
				m := &tracking.LoggedModel{Info: tracking.LoggedModelInfo{
					ModelID: fmt.Sprintf("m-%032x", 0x100000+i), ExperimentID: exp, Name: fmt.Sprintf("model-%d", i),
					CreationTimestampMs: base + int64(i)*1000, LastUpdatedTimestampMs: base + int64(i)*1000 + 500,
					ArtifactURI: "mlflow-artifacts:/" + exp + "/models/x/artifacts", Status: tracking.LoggedModelStatusReady,
					SourceRunID: fmt.Sprintf("%032x", i), Tags: []tracking.Tag{{Key: "mlflow.user", Value: "bench"}},
				}, Data: tracking.LoggedModelData{Params: []tracking.Param{{Key: "lr", Value: "0.01"}, {Key: "epochs", Value: fmt.Sprint(i % 20)}}}}
				if err := putLoggedModel(tx, m); err != nil {
					return err
				}
				if err := tx.Bucket(bExpLoggedModel).Put(append(u64(expID), m.Info.ModelID...), nil); err != nil {
					return err
				}
				if err := indexLoggedModel(tx, nil, m); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// BenchmarkSearchLoggedModelsScale measures the first page (50 models,
// MLflow's default max_results) of search_logged_models in the default
// order (desc) and in creation_timestamp ASC (asc) over an experiment of
// n models, with the index and with the full scan (the store before the
// index).
func BenchmarkSearchLoggedModelsScale(b *testing.B) {
	asc, err := search.ParseLoggedModelOrderBy([]search.LoggedModelOrder{{FieldName: "creation_timestamp", Ascending: true}})
	ok(b, err)
	for _, n := range []int{10_000, 100_000} {
		s, err := Open(filepath.Join(b.TempDir(), "mlflow.db"), Options{})
		ok(b, err)
		exp := mkExp(b, s, "bench")
		seedLoggedModels(b, s, exp, n)
		for _, run := range []struct {
			order string
			keys  []search.LoggedModelOrder
		}{{"desc", nil}, {"asc", asc}} {
			for _, mode := range []string{"index", "scan"} {
				b.Run(fmt.Sprintf("n=%d/%s/%s", n, run.order, mode), func(b *testing.B) {
					useLMIndex = mode == "index"
					defer func() { useLMIndex = true }()
					q := tracking.LoggedModelQuery{ExperimentIDs: []string{exp}, MaxResults: 50, OrderBy: run.keys}
					for b.Loop() {
						page, err := s.SearchLoggedModels(bg, q)
						ok(b, err)
						if len(page.Models) != 50 || !page.More {
							b.Fatalf("page of %d", len(page.Models))
						}
					}
				})
			}
		}
		ok(b, s.Close())
	}
}
