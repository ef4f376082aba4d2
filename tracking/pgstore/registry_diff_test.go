package pgstore

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// Differential tests: the same random data in the bbolt store (the
// reference semantics, evaluated in Go) and in this store (compiled to
// SQL); many filters and orders must give the same rows in the same
// order, whole and page by page.

// regBackend is what both stores implement for these tests.
type regBackend interface {
	tracking.RegistryStore
	tracking.LoggedModelStore
	tracking.TraceStore
}

func regBolt(t *testing.T) *boltstore.Store {
	t.Helper()
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "ref.db"), boltstore.Options{})
	regOK(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// regSame fails when the two stores' results differ.
func regSame[T comparable](t *testing.T, what string, pg, ref []T) {
	t.Helper()
	if !slices.Equal(pg, ref) {
		t.Errorf("%s:\n  pg   %v\n  bolt %v", what, pg, ref)
	}
}

var (
	regDiffNames  = []string{"alpha", "Alpha", "beta", "b_c", "b%c", "Ärger", "ärger", "zeta", "MODEL", "m1", "m10", "m2", "x y", "émile", "Zulu"}
	regDiffValues = []string{"a", "A", "b", "true", "TRUE", "prod", "Prod", "x%y", "x_y", "é", ""}
	regDiffPats   = []string{"a%", "A%", "%a", "%_%", "b_c", "b%c", "%ä%", "ä%", "%", "_", "m1%", "%e%", "x_y", "TRUE", "%R%"}
)

func regPick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func TestRegistryMatchesBoltPG(t *testing.T) {
	s, b := openTest(t), regBolt(t)
	r := rand.New(rand.NewPCG(1, 2))
	backends := []regBackend{s, b}
	for _, name := range regDiffNames {
		var tags []tracking.Tag
		for _, k := range []string{"k", "env", tracking.TagIsPrompt} {
			if r.IntN(3) == 0 {
				tags = append(tags, tracking.Tag{Key: k, Value: regPick(r, regDiffValues)})
			}
		}
		nv := r.IntN(4)
		for _, be := range backends {
			_, err := be.CreateRegisteredModel(regCtx, tracking.CreateRegisteredModel{Name: name, Tags: tags})
			regOK(t, err)
		}
		for v := 0; v < nv; v++ {
			var vt []tracking.Tag
			if r.IntN(2) == 0 {
				vt = append(vt, tracking.Tag{Key: "k", Value: regPick(r, regDiffValues)})
			}
			if r.IntN(4) == 0 {
				vt = append(vt, tracking.Tag{Key: tracking.TagIsPrompt, Value: regPick(r, []string{"true", "false", "True"})})
			}
			req := tracking.CreateModelVersion{Name: name, Source: "s3://b/" + regPick(r, regDiffValues), RunID: regPick(r, []string{"r1", "r2", "R1", ""}), Tags: vt}
			for _, be := range backends {
				_, err := be.CreateModelVersion(regCtx, req)
				regOK(t, err)
			}
		}
		time.Sleep(2 * time.Millisecond) // distinct update times, the same order in both
	}

	// Registered models.
	var filters []string
	for _, p := range regDiffPats {
		filters = append(filters, "name LIKE '"+p+"'", "name ILIKE '"+p+"'", "tags.k LIKE '"+p+"'", "tags.env ILIKE '"+p+"'")
	}
	for _, v := range regDiffValues {
		filters = append(filters, "name = '"+v+"'", "name != '"+v+"'", "tags.k = '"+v+"'", "tags.k != '"+v+"'",
			"tags.`"+tracking.TagIsPrompt+"` = '"+v+"'", "tags.`"+tracking.TagIsPrompt+"` != '"+v+"'")
	}
	filters = append(filters, "", "name LIKE '%a%' AND tags.env != 'prod'", "tags.k = 'a' AND name ILIKE 'A%'")
	orders := [][]string{nil, {"name DESC"}, {"timestamp ASC"}, {"last_updated_timestamp DESC", "name ASC"}}
	for _, filter := range filters {
		f, err := search.ParseRegisteredModelFilter(filter)
		regOK(t, err)
		for _, order := range orders {
			o, err := search.ParseRegisteredModelOrderBy(order)
			regOK(t, err)
			var res [2][]string
			for i, be := range backends {
				for tok, n := "", 0; ; n++ {
					p, err := be.SearchRegisteredModels(regCtx, tracking.RegisteredModelQuery{Filter: f, OrderBy: o, MaxResults: 4, PageToken: tok})
					regOK(t, err)
					for _, m := range p.Models {
						res[i] = append(res[i], fmt.Sprintf("%s%v%v", m.Name, m.Tags, regVersionsOf(m.LatestVersions)))
					}
					if tok = p.NextPageToken; tok == "" || n > 50 {
						break
					}
				}
			}
			regSame(t, fmt.Sprintf("models %q %v", filter, order), res[0], res[1])
		}
	}

	// Model versions.
	filters = filters[:0]
	for _, p := range regDiffPats {
		filters = append(filters, "name LIKE '"+p+"'", "name ILIKE '"+p+"'", "source_path LIKE 's3://b/"+p+"'", "run_id ILIKE '"+p+"'",
			"tags.k LIKE '"+p+"'")
	}
	for _, v := range regDiffValues {
		filters = append(filters, "name = '"+v+"'", "tags.k != '"+v+"'", "tags.`"+tracking.TagIsPrompt+"` = '"+v+"'",
			"tags.`"+tracking.TagIsPrompt+"` != '"+v+"'")
	}
	for _, op := range []string{"=", "!=", ">", ">=", "<", "<="} {
		filters = append(filters, "version_number "+op+" 2", "version_number "+op+" 1.5")
	}
	filters = append(filters, "", "run_id IN ('r1', 'R1')", "run_id = 'r2' AND version_number > 1")
	orders = [][]string{nil, {"name DESC"}, {"version_number ASC"}, {"creation_timestamp ASC", "name DESC"}, {"last_updated_timestamp ASC"}}
	for _, filter := range filters {
		f, err := search.ParseModelVersionFilter(filter)
		regOK(t, err)
		for _, order := range orders {
			o, err := search.ParseModelVersionOrderBy(order)
			regOK(t, err)
			var res [2][]string
			for i, be := range backends {
				for tok, n := "", 0; ; n++ {
					p, err := be.SearchModelVersions(regCtx, tracking.ModelVersionQuery{Filter: f, OrderBy: o, MaxResults: 5, PageToken: tok})
					regOK(t, err)
					for _, mv := range p.Versions {
						res[i] = append(res[i], fmt.Sprintf("%s/%s%v%s", mv.Name, mv.Version, mv.Tags, mv.RunID))
					}
					if tok = p.NextPageToken; tok == "" || n > 50 {
						break
					}
				}
			}
			regSame(t, fmt.Sprintf("versions %q %v", filter, order), res[0], res[1])
		}
	}
}

func TestTracesMatchBoltPG(t *testing.T) {
	s, b := openTest(t), regBolt(t)
	r := rand.New(rand.NewPCG(3, 4))
	pgExp := regExp(t, s, "e")
	boltExp, err := b.CreateExperiment(regCtx, tracking.CreateExperiment{Name: "e", DefaultArtifactRoot: "mlflow-artifacts:/"})
	regOK(t, err)
	statuses := []string{tracking.TraceStatusOK, tracking.TraceStatusError, tracking.TraceStatusInProgress, tracking.TraceStatusUnspecified}
	for i := 0; i < 40; i++ {
		var tags, md []tracking.Tag
		if r.IntN(3) > 0 {
			tags = append(tags, tracking.Tag{Key: "env", Value: regPick(r, regDiffValues)})
		}
		if r.IntN(2) == 0 {
			tags = append(tags, tracking.Tag{Key: tracking.TraceTagName, Value: regPick(r, regDiffNames)})
		}
		if r.IntN(2) == 0 {
			md = append(md, tracking.Tag{Key: "user", Value: regPick(r, regDiffValues)})
		}
		if r.IntN(3) == 0 {
			md = append(md, tracking.Tag{Key: tracking.TraceMetadataSourceRun, Value: regPick(r, []string{"r1", "r2"})})
		}
		in := tracking.TraceInfo{RequestID: fmt.Sprintf("tr-%02d", r.IntN(1000)), TimestampMs: int64(r.IntN(6)),
			ExecutionTimeMs: int64(r.IntN(4)), Status: regPick(r, statuses), ClientRequestID: regPick(r, regDiffValues),
			Tags: tags, RequestMetadata: md}
		for _, x := range []struct {
			be  regBackend
			exp string
		}{{s, pgExp}, {b, boltExp}} {
			cp := in
			cp.ExperimentID = x.exp
			_, err := x.be.StartTraceV3(regCtx, &cp)
			regOK(t, err)
		}
	}
	var filters []string
	for _, p := range regDiffPats {
		filters = append(filters, "tags.env LIKE '"+p+"'", "metadata.user ILIKE '"+p+"'", "name LIKE '"+p+"'",
			"client_request_id ILIKE '"+p+"'", "request_id LIKE '"+p+"'")
	}
	for _, v := range regDiffValues {
		filters = append(filters, "tags.env = '"+v+"'", "tags.env != '"+v+"'", "metadata.user != '"+v+"'", "client_request_id = '"+v+"'")
	}
	for _, op := range []string{"=", "!=", ">", ">=", "<", "<="} {
		filters = append(filters, "timestamp_ms "+op+" 3", "execution_time_ms "+op+" 1", "end_time_ms "+op+" 4")
	}
	filters = append(filters, "", "tags.env IS NULL", "tags.env IS NOT NULL", "metadata.user IS NULL", "run_id = 'r1'",
		"status IN ('OK', 'ERROR')", "status NOT IN ('OK')", "status = 'STATE_UNSPECIFIED'", "tags.env RLIKE '^[a-z]+$'",
		"status RLIKE 'O'", "tags.env = 'a' AND timestamp_ms > 1")
	orders := [][]string{nil, {"timestamp_ms ASC"}, {"tags.env ASC"}, {"tags.env DESC", "execution_time DESC"}, {"name ASC"},
		{"run_id DESC"}, {"metadata.user ASC", "request_id DESC"}, {"status ASC"}, {"end_time_ms DESC"}, {"experiment_id ASC"}}
	for _, filter := range filters {
		f, err := search.ParseTraceFilter(filter)
		regOK(t, err)
		for _, order := range orders {
			o, err := search.ParseTraceOrderBy(order)
			regOK(t, err)
			var res [2][]string
			for i, x := range []struct {
				be  regBackend
				exp string
			}{{s, pgExp}, {b, boltExp}} {
				for tok, n := "", 0; ; n++ {
					p, err := x.be.SearchTraces(regCtx, tracking.TraceQuery{ExperimentIDs: []string{x.exp}, Filter: f, OrderBy: o, MaxResults: 7, PageToken: tok})
					regOK(t, err)
					for _, tr := range p.Traces {
						res[i] = append(res[i], tr.RequestID)
					}
					if tok = p.NextPageToken; tok == "" || n > 50 {
						break
					}
				}
			}
			regSame(t, fmt.Sprintf("traces %q %v", filter, order), res[0], res[1])
		}
	}
}

func TestLoggedModelsMatchBoltPG(t *testing.T) {
	s, b := openTest(t), regBolt(t)
	r := rand.New(rand.NewPCG(5, 6))
	pgExp := regExp(t, s, "e")
	pgRun := regRun(t, s, pgExp)
	boltExp, err := b.CreateExperiment(regCtx, tracking.CreateExperiment{Name: "e", DefaultArtifactRoot: "mlflow-artifacts:/"})
	regOK(t, err)
	boltRun, err := b.CreateRun(regCtx, tracking.CreateRun{ExperimentID: boltExp, StartTime: 1})
	regOK(t, err)
	values := []float64{0, 1, 1, 2, -1, math.NaN(), math.Inf(1), 0.5}
	for i := 0; i < 25; i++ {
		name := fmt.Sprintf("lm%02d-%s", i, regPick(r, regDiffNames))
		var params []tracking.Param
		var tags []tracking.Tag
		if r.IntN(2) == 0 {
			params = append(params, tracking.Param{Key: "p", Value: regPick(r, regDiffValues)})
		}
		if r.IntN(2) == 0 {
			tags = append(tags, tracking.Tag{Key: "t", Value: regPick(r, regDiffValues)})
		}
		var mm []tracking.ModelMetric
		for j := r.IntN(5); j > 0; j-- {
			ds := regPick(r, []string{"", "eval", "train"})
			mm = append(mm, tracking.ModelMetric{Key: regPick(r, []string{"acc", "loss"}), Value: regPick(r, values),
				Timestamp: int64(r.IntN(3)), Step: int64(r.IntN(2)), DatasetName: ds, DatasetDigest: ds + regPick(r, []string{"", "-d"})})
		}
		finalize := r.IntN(2) == 0
		pm, err := s.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: pgExp, Name: name, Params: params, Tags: tags,
			ModelType: regPick(r, []string{"", "agent", "Agent"})})
		regOK(t, err)
		bm, err := b.CreateLoggedModel(regCtx, tracking.CreateLoggedModel{ExperimentID: boltExp, Name: name, Params: params, Tags: tags,
			ModelType: pm.Info.ModelType})
		regOK(t, err)
		if len(mm) > 0 {
			pmm, bmm := slices.Clone(mm), slices.Clone(mm)
			for k := range mm {
				pmm[k].ModelID, bmm[k].ModelID = pm.Info.ModelID, bm.Info.ModelID
			}
			regOK(t, regLogModelMetrics(s, pgRun, pmm))
			regOK(t, b.LogBatch(regCtx, boltRun.Info.RunID, tracking.Batch{ModelMetrics: bmm}))
		}
		if finalize {
			_, err = s.FinalizeLoggedModel(regCtx, pm.Info.ModelID, tracking.LoggedModelStatusReady)
			regOK(t, err)
			_, err = b.FinalizeLoggedModel(regCtx, bm.Info.ModelID, tracking.LoggedModelStatusReady)
			regOK(t, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	var filters []string
	for _, op := range []string{"=", "!=", ">", ">=", "<", "<="} {
		filters = append(filters, "metrics.acc "+op+" 1", "metrics.loss "+op+" 0", "creation_timestamp "+op+" 0")
	}
	for _, p := range regDiffPats {
		filters = append(filters, "name LIKE '%"+p+"'", "params.p ILIKE '"+p+"'", "tags.t LIKE '"+p+"'", "model_type ILIKE '"+p+"'")
	}
	filters = append(filters, "", "status = 'LOGGED_MODEL_READY'", "model_type IN ('agent', '')", "model_type NOT IN ('agent')",
		"params.p = 'a' AND metrics.acc > 0")
	datasets := [][]search.DatasetRef{nil, {{Name: "eval"}}, {{Name: "train", Digest: "train-d"}, {Name: ""}}}
	orders := [][]search.LoggedModelOrder{nil,
		{{FieldName: "metrics.acc", Ascending: true}},
		{{FieldName: "metrics.acc", Ascending: false}},
		{{FieldName: "metrics.loss", Ascending: true, DatasetName: "eval"}, {FieldName: "name", Ascending: false}},
		{{FieldName: "metrics.acc", Ascending: false, DatasetName: "train", DatasetDigest: "train-d"}},
		{{FieldName: "model_type", Ascending: true}},
		{{FieldName: "model_type", Ascending: false}, {FieldName: "status", Ascending: true}},
		{{FieldName: "creation_timestamp", Ascending: true}},
		{{FieldName: "name", Ascending: true}},
	}
	for _, filter := range filters {
		f, err := search.ParseLoggedModelFilter(filter)
		regOK(t, err)
		for _, ds := range datasets {
			for _, order := range orders {
				o, err := search.ParseLoggedModelOrderBy(order)
				regOK(t, err)
				var res [2][]string
				for i, x := range []struct {
					be  regBackend
					exp string
				}{{s, pgExp}, {b, boltExp}} {
					for after, n := "", 0; ; n++ {
						p, err := x.be.SearchLoggedModels(regCtx, tracking.LoggedModelQuery{ExperimentIDs: []string{x.exp}, Filter: f,
							Datasets: ds, OrderBy: o, MaxResults: 4, After: after})
						regOK(t, err)
						for _, m := range p.Models {
							res[i] = append(res[i], fmt.Sprintf("%s%v%d", m.Info.Name, m.Data.Params, len(m.Data.Metrics)))
						}
						if !p.More || n > 50 {
							break
						}
						after = p.Next
					}
				}
				regSame(t, fmt.Sprintf("logged models %q %v %v", filter, ds, order), res[0], res[1])
			}
		}
	}
}
