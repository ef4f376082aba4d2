package boltstore

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// realisticParams are the params of a run of seedRealistic: the shape of a
// typical training script's log_params (names and the values each takes).
var realisticParams = []struct {
	key    string
	values []string
}{
	{"learning_rate", []string{"0.1", "0.03", "0.01", "0.003", "0.001", "0.0003", "0.0001"}},
	{"batch_size", []string{"16", "32", "64", "128", "256"}},
	{"optimizer", []string{"adam", "adamw", "sgd", "rmsprop"}},
	{"epochs", []string{"10", "20", "50", "100"}},
	{"dropout", []string{"0.0", "0.1", "0.2", "0.3", "0.5"}},
	{"weight_decay", []string{"0", "1e-05", "0.0001", "0.001"}},
	{"model_name", []string{"resnet18", "resnet50", "vit_b_16", "efficientnet_b0"}},
	{"num_layers", []string{"2", "4", "8", "12"}},
	{"hidden_size", []string{"128", "256", "512", "768"}},
	{"seed", nil}, // unique per run
}

// realisticMetrics are the metrics of a run of seedRealistic.
var realisticMetrics = []string{"loss", "accuracy", "val_loss", "val_accuracy"}

// seedRealistic writes n runs shaped like MLflow client runs into exp,
// straight through the store's write functions (indexes included), 500
// runs per transaction: the client's system tags (user, source name, type
// and git commit, run name) and two user tags, the 10 params of
// realisticParams and the 4 metrics of realisticMetrics with points
// points of history each; runs are FINISHED with an end time.
func seedRealistic(b *testing.B, s *Store, exp string, n, points int) {
	b.Helper()
	expID, _ := parseExpID(exp)
	rng := rand.New(rand.NewPCG(2, uint64(n)))
	adjectives := []string{"bright", "calm", "eager", "gentle", "brave", "clever", "rare", "shy"}
	animals := []string{"fox", "owl", "whale", "lynx", "hare", "crane", "moth", "seal"}
	for done := 0; done < n; {
		ok(b, s.db.Update(func(tx *bolt.Tx) error {
			for end := min(done+500, n); done < end; done++ {
				start := int64(1700000000000 + done*1000)
				id, err := newOrderedRunID(time.UnixMilli(start))
				if err != nil {
					return err
				}
				et := start + 600000
				name := adjectives[rng.IntN(len(adjectives))] + "-" + animals[rng.IntN(len(animals))] + "-" + strconv.Itoa(rng.IntN(1000))
				rec := &runRecord{ExperimentID: expID, Name: name, UserID: "alice",
					Status: tracking.StatusFinished, StartTime: start, EndTime: &et,
					ArtifactURI: "mlflow-artifacts:/" + exp + "/" + id + "/artifacts", Lifecycle: tracking.LifecycleActive}
				if err := putRun(tx, id, rec); err != nil {
					return err
				}
				commit := fmt.Sprintf("%040x", rng.Uint64())
				if err := setTags(tx, id, rec, []tracking.Tag{{Key: tracking.TagRunName, Value: name},
					{Key: "mlflow.user", Value: "alice"}, {Key: "mlflow.source.name", Value: "/home/alice/projects/vision/train.py"},
					{Key: "mlflow.source.type", Value: "LOCAL"}, {Key: "mlflow.source.git.commit", Value: commit},
					{Key: "team", Value: "vision"}, {Key: "dataset", Value: "imagenet-" + strconv.Itoa(rng.IntN(3))}}); err != nil {
					return err
				}
				if err := indexRun(tx, id, rec); err != nil {
					return err
				}
				ps := make([]tracking.Param, 0, len(realisticParams))
				for _, p := range realisticParams {
					v := strconv.Itoa(done)
					if p.values != nil {
						v = p.values[rng.IntN(len(p.values))]
					}
					ps = append(ps, tracking.Param{Key: p.key, Value: v})
				}
				if err := logParams(tx, id, ps); err != nil {
					return err
				}
				ms := make([]tracking.Metric, 0, len(realisticMetrics)*points)
				for p := 0; p < points; p++ {
					for _, k := range realisticMetrics {
						ms = append(ms, tracking.Metric{Key: k, Value: rng.Float64(), Timestamp: start + int64(p)*1000, Step: int64(p)})
					}
				}
				if err := logMetrics(tx, id, ms); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// bucketSpace is the space one bucket takes: keys, bytes of keys and
// values, bbolt's in-use bytes of its pages (element headers included) and
// the bytes of the pages allocated to it.
type bucketSpace struct {
	keys, keyBytes, valBytes, inuse, alloc int
}

func spaceOf(tx *bolt.Tx, name []byte) bucketSpace {
	bk := tx.Bucket(name)
	st := bk.Stats()
	sp := bucketSpace{keys: st.KeyN, inuse: st.LeafInuse + st.BranchInuse + st.InlineBucketInuse,
		alloc: st.LeafAlloc + st.BranchAlloc}
	_ = bk.ForEach(func(k, v []byte) error {
		sp.keyBytes += len(k)
		sp.valBytes += len(v)
		return nil
	})
	return sp
}

// BenchmarkIndexSpace reports the space of the run data and of the run
// indexes (bucket ridx) that index it, for runs of seedRealistic (10,000;
// MLFLOW_BENCH_SPACE_RUNS sets another count) with 10 history points per
// metric, and for the smaller runs of seedRuns. "Data it indexes" is what
// the indexes hold values of: the run records (attributes), params, tags
// and latest metric values; exprun (the experiment's run list, which also
// serves start_time) and the metric history are reported apart. index-%
// is ridx in-use bytes over that data's in-use bytes; alloc-% the same
// over the bytes of allocated pages. Every bucket's figures are logged
// (run with -v).
func BenchmarkIndexSpace(b *testing.B) {
	runs := 10000
	if v, err := strconv.Atoi(os.Getenv("MLFLOW_BENCH_SPACE_RUNS")); err == nil && v > 0 {
		runs = v
	}
	const points = 10
	shapes := []struct {
		name    string
		metrics int
		seed    func(b *testing.B, s *Store, exp string, n, points int)
	}{
		{"realistic", len(realisticMetrics), seedRealistic},
		{"small", 2, seedRuns},
	}
	for _, sh := range shapes {
		b.Run(sh.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s, _ := openTest(b)
				exp := mkExp(b, s, "space")
				sh.seed(b, s, exp, runs, points)
				sp := map[string]bucketSpace{}
				names := [][]byte{bRun, bExpRun, bParam, bTag, bLatest, bHist, bRunIdx}
				ok(b, s.db.View(func(tx *bolt.Tx) error {
					for _, name := range names {
						sp[string(name)] = spaceOf(tx, name)
					}
					return nil
				}))
				for _, name := range names {
					x := sp[string(name)]
					b.Logf("%-7s keys=%8d key-B/key=%6.1f val-B/key=%6.1f inuse-B/run=%7.1f alloc-B/run=%7.1f",
						name, x.keys, float64(x.keyBytes)/float64(max(x.keys, 1)), float64(x.valBytes)/float64(max(x.keys, 1)),
						float64(x.inuse)/float64(runs), float64(x.alloc)/float64(runs))
				}
				var data, dataAlloc int
				for _, name := range [][]byte{bRun, bParam, bTag, bLatest} {
					data += sp[string(name)].inuse
					dataAlloc += sp[string(name)].alloc
				}
				ix, hist, er := sp[string(bRunIdx)], sp[string(bHist)], sp[string(bExpRun)]
				var entries int // ridx keys are blocks of entries
				ok(b, s.db.View(func(tx *bolt.Tx) error {
					all, err := ixEntries(tx.Bucket(bRunIdx))
					entries = len(all)
					return err
				}))
				b.ReportMetric(float64(data)/float64(runs), "data-B/run")
				b.ReportMetric(float64(ix.inuse)/float64(runs), "index-B/run")
				b.ReportMetric(float64(ix.inuse)/float64(max(entries, 1)), "index-B/entry")
				b.ReportMetric(float64(hist.inuse)/float64(runs*sh.metrics*points), "hist-B/point")
				b.ReportMetric(float64(data+er.inuse+hist.inuse+ix.inuse)/float64(runs), "all-B/run")
				b.ReportMetric(100*float64(ix.inuse)/float64(data), "index-%")
				b.ReportMetric(100*float64(ix.alloc)/float64(dataAlloc), "alloc-%")
				b.ReportMetric(100*float64(ix.inuse)/float64(data+er.inuse+hist.inuse), "index-%-of-all")
				ok(b, s.Close())
			}
		})
	}
}
