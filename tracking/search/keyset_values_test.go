package search

import (
	"math"
	"testing"
)

type kvModel struct {
	name string
	upd  int64
}

func (m kvModel) Name() string                { return m.name }
func (m kvModel) LastUpdatedTimestamp() int64 { return m.upd }
func (m kvModel) Tag(string) (string, bool)   { return "", false }

type kvLogged struct{ points []MetricPoint }

func (m kvLogged) LoggedModelAttr(key string) (string, int64) {
	switch key {
	case "model_id":
		return "m-1", 0
	case "name":
		return "n", 0
	}
	return "", 42
}
func (m kvLogged) Tag(string) (string, bool)          { return "", false }
func (m kvLogged) Param(string) (string, bool)        { return "", false }
func (m kvLogged) MetricPoints(string) []MetricPoint  { return m.points }
func (m kvLogged) HasDatasetMetric([]DatasetRef) bool { return false }

func TestKeysetValues(t *testing.T) {
	var empty Cursor
	if _, ok := empty.Value("name"); ok {
		t.Fatal("value of a cursor without a keyset position")
	}
	keys, err := ParseRegisteredModelOrderBy([]string{"timestamp DESC"})
	if err != nil {
		t.Fatal(err)
	}
	fp := func() *Fingerprint { return NewFingerprint("registered models").AddOrderKeys(keys) }
	tok := RegisteredModelPageToken(fp(), keys, kvModel{"m7", 1234})
	cur, err := DecodeCursor(tok, fp())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := cur.Value("name"); !ok || v.Str != "m7" {
		t.Fatalf("name %+v %v", v, ok)
	}
	if v, _ := cur.Value("last_updated_timestamp"); v.Int != 1234 {
		t.Fatalf("last update %+v", v)
	}

	orders, err := ParseLoggedModelOrderBy([]LoggedModelOrder{{FieldName: "metrics.acc", DatasetName: "eval"}, {FieldName: "status"}})
	if err != nil {
		t.Fatal(err)
	}
	if orders[0].Metric() != "acc" || orders[0].Attr() != "" || orders[1].Attr() != "status_number" || orders[1].Metric() != "" {
		t.Fatalf("parts %q %q %q %q", orders[0].Metric(), orders[0].Attr(), orders[1].Attr(), orders[1].Metric())
	}
	raw := LoggedModelOrder{FieldName: "metrics.loss"}
	if raw.Metric() != "loss" {
		t.Fatalf("unparsed metric %q", raw.Metric())
	}
	lfp := func() *Fingerprint { return NewFingerprint("logged models").AddLoggedModelOrders(orders) }
	m := kvLogged{points: []MetricPoint{{Value: 1, Timestamp: 5, DatasetName: "eval"}, {Value: math.NaN(), Timestamp: 9, DatasetName: "eval"},
		{Value: 7, Timestamp: 99, DatasetName: "train"}}}
	cur, err = DecodeCursor(LoggedModelPageToken(lfp(), orders, m), lfp())
	if err != nil {
		t.Fatal(err)
	}
	v, present, ok := cur.LatestLoggedModelMetric(&orders[0])
	if !ok || !present || !math.IsNaN(v) {
		t.Fatalf("latest metric %v %v %v", v, present, ok)
	}
	if a, _ := cur.Value("a.model_id"); a.Str != "m-1" {
		t.Fatalf("model id %+v", a)
	}
	if a, _ := cur.Value("a.creation_timestamp"); a.Int != 42 {
		t.Fatalf("creation %+v", a)
	}
	if _, _, ok := empty.LatestLoggedModelMetric(&orders[0]); ok {
		t.Fatal("latest metric of a cursor without a keyset position")
	}
}
