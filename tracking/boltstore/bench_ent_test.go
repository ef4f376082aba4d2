package boltstore

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// seedExperiments writes n experiments (1000 per transaction, entries of
// eidx included) with tags team (100 values) and uid (unique).
func seedExperiments(b *testing.B, s *Store, n int) {
	b.Helper()
	for done := 0; done < n; {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for end := min(done+1000, n); done < end; done++ {
				id := uint64(done + 1)
				rec := &expRecord{Name: "exp-" + strconv.Itoa(done), ArtifactLocation: "mlflow-artifacts:/" + strconv.Itoa(done),
					Lifecycle: tracking.LifecycleActive, CreationTime: int64(done), LastUpdateTime: int64(done)}
				if err := putJSON(tx.Bucket(bExp), u64(id), rec); err != nil {
					return err
				}
				if err := tx.Bucket(bExpName).Put([]byte(rec.Name), u64(id)); err != nil {
					return err
				}
				for k, v := range map[string]string{"team": "team-" + strconv.Itoa(done%100), "uid": "u-" + strconv.Itoa(done)} {
					if err := tx.Bucket(bExpTag).Put(append(u64(id), k...), []byte(v)); err != nil {
						return err
					}
				}
				if err := indexNewExp(tx, id); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// seedVersions writes n model versions, 100 per registered model, each
// from its own run, with a tag env (100 values).
func seedVersions(b *testing.B, s *Store, n int) {
	b.Helper()
	for done := 0; done < n; {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for end := min(done+1000, n); done < end; {
				name := "model-" + strconv.Itoa(done/100)
				if err := putJSON(tx.Bucket(bRM), []byte(name), rmRecord{Created: int64(done), Updated: int64(done), MaxVersion: 100}); err != nil {
					return err
				}
				for v := int64(1); v <= 100 && done < end; v++ {
					vk := versionKey(name, v)
					rec := mvRecord{Created: int64(done), Updated: int64(done), Stage: tracking.StageNone, Source: "s3://b/" + name,
						RunID: fmt.Sprintf("%032x", done), Status: tracking.ModelVersionStatusReady}
					if err := putJSON(tx.Bucket(bMV), vk, rec); err != nil {
						return err
					}
					if err := tx.Bucket(bMVTag).Put(append(bytesClone(vk), "env"...), []byte("env-"+strconv.Itoa(done%100))); err != nil {
						return err
					}
					done++
				}
				keys, err := modelIxKeys(tx, name, 0)
				if err != nil {
					return err
				}
				if err := applyIxDiff(tx.Bucket(bEntIdx), nil, keys); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }

// benchPlans times fn planned over the indexes and as the scan every
// search did before them (p50-ms: median of the timed calls).
func benchPlans(b *testing.B, s *Store, name string, fn func() int) {
	for _, plan := range []string{"indexed", "scan"} {
		b.Run(name+"/"+plan, func(b *testing.B) {
			s.scanSearch = plan == "scan"
			defer func() { s.scanSearch = false }()
			times := make([]time.Duration, 0, b.N)
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				n := fn()
				times = append(times, time.Since(t0))
				if n == 0 {
					b.Fatal("no rows")
				}
			}
			cpu := cpuTime() - cpu0
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkSearchExperimentsScale: search_experiments by tag (1% and one
// experiment) and the default first page, at 10k and 100k experiments.
func BenchmarkSearchExperimentsScale(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("experiments=%dk", n/1000), func(b *testing.B) {
			s, _ := openTest(b)
			seedExperiments(b, s, n)
			for _, qq := range []struct{ name, filter string }{
				{"tag_1pct", "tags.team = 'team-42'"},
				{"tag_unique", "tags.uid = 'u-4242'"},
				{"default_page", ""},
			} {
				f, err := search.ParseExperimentFilter(qq.filter)
				ok(b, err)
				benchPlans(b, s, qq.name, func() int {
					p, err := s.SearchExperiments(bg, tracking.ExperimentQuery{Filter: f, MaxResults: 100})
					ok(b, err)
					return len(p.Experiments)
				})
			}
		})
	}
}

// BenchmarkSearchModelVersionsScale: search_model_versions by run_id, by
// tag (1%) and the default first page, at 100k versions.
func BenchmarkSearchModelVersionsScale(b *testing.B) {
	s, _ := openTest(b)
	seedVersions(b, s, 100000)
	for _, qq := range []struct{ name, filter string }{
		{"run_id", fmt.Sprintf("run_id = '%032x'", 4242)},
		{"tag_1pct", "tags.env = 'env-42'"},
		{"default_page", ""},
	} {
		f, err := search.ParseModelVersionFilter(qq.filter)
		ok(b, err)
		benchPlans(b, s, qq.name, func() int {
			p, err := s.SearchModelVersions(bg, tracking.ModelVersionQuery{Filter: f, MaxResults: 100})
			ok(b, err)
			return len(p.Versions)
		})
	}
}
