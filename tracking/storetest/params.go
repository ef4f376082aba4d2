package storetest

import (
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

func testParams(t *testing.T, f Factory) {
	t.Run("Immutable", func(t *testing.T) {
		s := open(t, f)
		id := mkRun(t, s, mkExp(t, s, "p"), "r", 0)
		ok(t, s.LogParam(bg, id, tracking.Param{Key: "alpha", Value: "0.5"}))
		ok(t, s.LogParam(bg, id, tracking.Param{Key: "alpha", Value: "0.5"}))
		ok(t, s.LogParam(bg, id, tracking.Param{Key: "empty", Value: ""}))
		wantErr(t, s.LogParam(bg, id, tracking.Param{Key: "alpha", Value: "0.6"}), tracking.InvalidParameterValue,
			"Changing param values is not allowed. Param with key='alpha' was already logged with value='0.5' for run ID='"+id+"'. Attempted logging new value '0.6'.")
		wantErr(t, s.LogParam(bg, id, tracking.Param{Key: "empty", Value: "x"}), tracking.InvalidParameterValue, "")
		wantErr(t, s.LogParam(bg, missingRun, tracking.Param{Key: "a"}), tracking.ResourceDoesNotExist, "")
		r, err := s.GetRun(bg, id)
		ok(t, err)
		if m := tagMap(paramTags(r.Data.Params)); len(m) != 2 || m["alpha"] != "0.5" || m["empty"] != "" {
			t.Fatalf("params %+v", r.Data.Params)
		}
	})

	t.Run("BatchAllOrNothing", func(t *testing.T) {
		s := open(t, f)
		id := mkRun(t, s, mkExp(t, s, "p"), "r", 0)
		ok(t, s.LogParam(bg, id, tracking.Param{Key: "alpha", Value: "0.5"}))
		ok(t, s.LogParam(bg, id, tracking.Param{Key: "empty", Value: ""}))
		// A batch with a conflicting param writes nothing at all.
		err := s.LogBatch(bg, id, tracking.Batch{
			Params:  []tracking.Param{{Key: "new", Value: "1"}, {Key: "alpha", Value: "it's"}, {Key: "empty", Value: ""}},
			Metrics: []tracking.Metric{{Key: "m", Value: 1, Timestamp: 1}},
			Tags:    []tracking.Tag{{Key: "t", Value: "v"}, {Key: tracking.TagRunName, Value: "nope"}},
		})
		wantErr(t, err, tracking.InvalidParameterValue,
			`Changing param values is not allowed. Params were already logged='[{'key': 'alpha', 'old_value': '0.5', 'new_value': "it's"}]' for run ID='`+id+`'.`)
		r, _ := s.GetRun(bg, id)
		if len(r.Data.Params) != 2 || len(r.Data.Metrics) != 0 || tagMap(r.Data.Tags)["t"] != "" || r.Info.RunName != "r" {
			t.Fatalf("partial batch written: %+v %+v", r.Data, r.Info)
		}
		if h := history(t, s, id, "m"); len(h) != 0 {
			t.Fatalf("partial batch written to the history: %+v", h)
		}
		// Same values again are skipped; new ones are written, a key
		// repeated in one batch with the same value is fine.
		ok(t, s.LogBatch(bg, id, tracking.Batch{Params: []tracking.Param{{Key: "alpha", Value: "0.5"}, {Key: "new", Value: "1"}, {Key: "new", Value: "1"}}}))
		r, _ = s.GetRun(bg, id)
		if len(r.Data.Params) != 3 {
			t.Fatal(r.Data.Params)
		}
	})
}

func paramTags(ps []tracking.Param) []tracking.Tag {
	out := make([]tracking.Tag, len(ps))
	for i, p := range ps {
		out[i] = tracking.Tag(p)
	}
	return out
}
