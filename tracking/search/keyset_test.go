package search

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

type fakeRun struct {
	id      string
	start   int64
	metrics map[string]float64
}

func (r fakeRun) RunID() string          { return r.id }
func (r fakeRun) RunName() string        { return "n" + r.id }
func (r fakeRun) UserID() string         { return "u" }
func (r fakeRun) Status() string         { return "RUNNING" }
func (r fakeRun) ArtifactURI() string    { return "a" }
func (r fakeRun) StartTime() int64       { return r.start }
func (r fakeRun) EndTime() (int64, bool) { return 0, false }
func (r fakeRun) LatestMetric(k string) (float64, bool) {
	v, ok := r.metrics[k]
	return v, ok
}
func (r fakeRun) Param(string) (string, bool) { return "", false }
func (r fakeRun) Tag(string) (string, bool)   { return "", false }
func (r fakeRun) Datasets() []Dataset         { return nil }

// A keyset cursor answers the comparator exactly as its row did: nothing
// equal to or before the row is after it; everything later is.
func TestRunCursorMatchesComparator(t *testing.T) {
	keys, err := ParseRunOrderBy([]string{"metrics.m DESC"})
	if err != nil {
		t.Fatal(err)
	}
	vals := []float64{math.NaN(), math.Inf(-1), -0.0, 0, 1, math.MaxFloat64}
	var runs []fakeRun
	for i := 0; i < 30; i++ {
		r := fakeRun{id: fmt.Sprintf("%02x", i), start: int64(i % 4), metrics: map[string]float64{}}
		if i%7 != 0 {
			r.metrics["m"] = vals[i%len(vals)]
		}
		runs = append(runs, r)
	}
	fp := NewFingerprint("runs").AddOrderKeys(keys)
	for _, last := range runs {
		tok := RunPageToken(fp, keys, last)
		if strings.ContainsAny(tok, "+/") {
			t.Fatalf("token %q is not URL-safe", tok)
		}
		cur, err := DecodeCursor(tok, fp)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if got, want := cur.AfterRun(keys, r), CompareRuns(keys, last, r) < 0; got != want {
				t.Fatalf("cursor %s vs %s: after=%v, comparator says %v", last.id, r.id, got, want)
			}
		}
		if _, err := DecodeCursor(tok, NewFingerprint("runs")); err == nil || !strings.HasPrefix(err.Error(), "Invalid page token") {
			t.Fatalf("token of another query: %v", err)
		}
	}
}

type fakeModel struct {
	id     string
	ctime  int64
	points []MetricPoint
}

func (m fakeModel) LoggedModelAttr(k string) (string, int64) {
	switch k {
	case "model_id":
		return m.id, 0
	case "creation_timestamp":
		return "", m.ctime
	}
	return "", 0
}
func (m fakeModel) Tag(string) (string, bool)   { return "", false }
func (m fakeModel) Param(string) (string, bool) { return "", false }
func (m fakeModel) MetricPoints(k string) []MetricPoint {
	if k == "acc" {
		return m.points
	}
	return nil
}
func (m fakeModel) HasDatasetMetric([]DatasetRef) bool { return false }

// A logged model's cursor keeps only the points its order keys pick, and
// picks the same ones again (ties on (timestamp, step) included).
func TestLoggedModelCursorPicksSamePoints(t *testing.T) {
	keys, err := ParseLoggedModelOrderBy([]LoggedModelOrder{
		{FieldName: "metrics.acc", DatasetName: "eval"},
		{FieldName: "metrics.acc", Ascending: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var models []fakeModel
	for i := 0; i < 12; i++ {
		m := fakeModel{id: fmt.Sprintf("m-%02d", i), ctime: int64(i % 3)}
		for j := 0; j < 40; j++ {
			ds := "train"
			if (i+j)%3 == 0 {
				ds = "eval"
			}
			m.points = append(m.points, MetricPoint{Value: float64((i*7+j*3)%11) / 10, Timestamp: int64(j % 5), Step: int64(j % 2), DatasetName: ds})
		}
		models = append(models, m)
	}
	fp := NewFingerprint("logged models").AddLoggedModelOrders(keys)
	for _, last := range models {
		tok := LoggedModelPageToken(fp, keys, last)
		cur, err := DecodeCursor(tok, fp)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(cur.after.Points["acc"]); n == 0 || n > 2 {
			t.Fatalf("cursor keeps %d points", n)
		}
		for _, m := range models {
			if got, want := cur.AfterLoggedModel(keys, m), CompareLoggedModels(keys, last, m) < 0; got != want {
				t.Fatalf("cursor %s vs %s: after=%v, comparator says %v", last.id, m.id, got, want)
			}
		}
	}
}
