package search

import (
	"encoding/base64"
	"math"
)

// testRun is a small in-memory RunView.
type testRun struct {
	id, name, user, status, uri string
	start                       int64
	end                         int64
	hasEnd                      bool
	metrics                     map[string]float64
	params                      map[string]string
	tags                        map[string]string
	datasets                    []Dataset
	deleted                     bool
	experimentID                string
}

func (r *testRun) RunID() string       { return r.id }
func (r *testRun) RunName() string     { return r.name }
func (r *testRun) UserID() string      { return r.user }
func (r *testRun) Status() string      { return r.status }
func (r *testRun) ArtifactURI() string { return r.uri }
func (r *testRun) StartTime() int64    { return r.start }
func (r *testRun) EndTime() (int64, bool) {
	return r.end, r.hasEnd
}
func (r *testRun) LatestMetric(k string) (float64, bool) {
	v, ok := r.metrics[k]
	return v, ok
}
func (r *testRun) Param(k string) (string, bool) {
	v, ok := r.params[k]
	return v, ok
}
func (r *testRun) Tag(k string) (string, bool) {
	v, ok := r.tags[k]
	return v, ok
}
func (r *testRun) Datasets() []Dataset { return r.datasets }

type testExp struct {
	id, name        string
	created, update int64
	tags            map[string]string
}

func (e *testExp) ExperimentID() string  { return e.id }
func (e *testExp) Name() string          { return e.name }
func (e *testExp) CreationTime() int64   { return e.created }
func (e *testExp) LastUpdateTime() int64 { return e.update }
func (e *testExp) Tag(k string) (string, bool) {
	v, ok := e.tags[k]
	return v, ok
}

var nan = math.NaN()

func encodeStd(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
