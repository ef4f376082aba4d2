package api

import (
	"net/http"
	"slices"
	"sort"
	"strconv"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pyjson"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

const (
	// historyChunk is how many points get-history asks the store for at a
	// time; historyFlushBytes is how much it buffers before flushing.
	historyChunk      = 2000
	historyFlushBytes = 256 << 10

	// Limits of get-history-bulk-interval and the UI's get-history-bulk.
	maxBulkRunIDs          = 100
	maxBulkIntervalResults = 2500
	maxResultsPerRunSteps  = 25000 // MLflow's MAX_RESULTS_GET_METRIC_HISTORY
	maxHistoryBulkResults  = 25000
)

// appendMetric appends {"key","value","timestamp","step"} (and "run_id"
// when runID is not empty).
func appendMetric(b []byte, m *tracking.Metric, runID string) []byte {
	b = append(b, `{"key":`...)
	b = pyjson.AppendString(b, m.Key)
	b = append(b, `,"value":`...)
	b = tracking.AppendFloat(b, m.Value)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, m.Timestamp, 10)
	b = append(b, `,"step":`...)
	b = strconv.AppendInt(b, m.Step, 10)
	if runID != "" {
		b = append(b, `,"run_id":`...)
		b = pyjson.AppendString(b, runID)
	}
	return append(b, '}')
}

// getMetricHistory streams every value of a metric: the JSON array is
// written chunk by chunk as the store reads it, never held in memory whole.
// MLflow's max_results and page_token are accepted and ignored (the OSS
// server returns everything in one page).
// metricHistoryRequest is GetMetricHistory.
type metricHistoryRequest struct{ ID, Key, PageToken string }

func (q *metricHistoryRequest) decl() []spec {
	return []spec{runIDField(&q.ID), str("metric_key", &q.Key).req(), str("page_token", &q.PageToken)}
}

func (s *Server) getMetricHistory(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *metricHistoryRequest) error {
		id, key := q.ID, q.Key
		started := false
		buf := make([]byte, 0, historyFlushBytes+4096)
		flusher, _ := w.(http.Flusher)
		err := s.store.MetricHistory(r.Context(), id, key, historyChunk, func(ms []tracking.Metric) error {
			for i := range ms {
				if !started {
					started = true
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusOK)
					buf = append(buf, `{"metrics":[`...)
				} else {
					buf = append(buf, ',')
				}
				buf = appendMetric(buf, &ms[i], "")
			}
			if len(buf) >= historyFlushBytes {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
				if flusher != nil {
					flusher.Flush()
				}
			}
			return nil
		})
		if err != nil {
			if !started {
				return err
			}
			s.log.Warn("metric history stream aborted", zap.String("run_id", id), zap.String("metric_key", key), zap.Error(err))
			panic(http.ErrAbortHandler)
		}
		if !started {
			return writeEmpty(w)
		}
		buf = append(buf, "]}"...)
		_, _ = w.Write(buf)
		return nil
	})
}

// runSteps are the min and max step a run has for the metric.
type runSteps struct {
	min, max int64
	any      bool
}

// bulkIntervalRequest is GetMetricHistoryBulkInterval.
type bulkIntervalRequest struct {
	RunIDs             []string
	Key                string
	StartStep, EndStep *int64
	MaxResults         int64
}

func (q *bulkIntervalRequest) decl() []spec {
	return []spec{
		strList("run_ids", &q.RunIDs).req().check(func(value, string) error {
			if len(q.RunIDs) > maxBulkRunIDs {
				return invalidParam("GetMetricHistoryBulkInterval request must specify at most %d run_ids. Received %d run_ids."+apiDocsHint,
					maxBulkRunIDs, len(q.RunIDs))
			}
			return nil
		}),
		str("metric_key", &q.Key).req(),
		optInt64("start_step", &q.StartStep),
		optInt64("end_step", &q.EndStep),
		int64Field("max_results", &q.MaxResults, maxBulkIntervalResults).check(func(value, string) error {
			if q.MaxResults < 1 || q.MaxResults > maxBulkIntervalResults {
				return invalidParam("max_results must be between 1 and %d."+apiDocsHint, maxBulkIntervalResults)
			}
			return nil
		}),
	}
}

func (q *bulkIntervalRequest) validate() error {
	if (q.StartStep == nil) != (q.EndStep == nil) {
		return invalidParam("If either start step or end step are specified, both must be specified.")
	}
	if q.StartStep != nil && *q.StartStep > *q.EndStep {
		return invalidParam("end_step must be greater than start_step. Found start_step=%d and end_step=%d.", *q.StartStep, *q.EndStep)
	}
	return nil
}

// getMetricHistoryBulkInterval samples a metric's history across runs as
// MLflow does: gather the distinct steps of all runs, keep those within
// [start_step, end_step] (default [0, max step]), thin them to max_results
// (every ⌊i·n/max⌋-th plus the last), add back each run's min and max step
// within the range, and return each run's values at those steps, ordered
// by step then timestamp.
func (s *Server) getMetricHistoryBulkInterval(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *bulkIntervalRequest) error {
		runIDs, key, maxResults := q.RunIDs, q.Key, q.MaxResults
		hasStart := q.StartStep != nil
		var start, end int64
		if hasStart {
			start, end = *q.StartStep, *q.EndStep
		}

		ctx := r.Context()
		stepSet := make(map[int64]struct{})
		perRun := make([]runSteps, len(runIDs))
		for i, id := range runIDs {
			rs := &perRun[i]
			err := s.store.MetricHistory(ctx, id, key, historyChunk, func(ms []tracking.Metric) error {
				for j := range ms {
					st := ms[j].Step
					stepSet[st] = struct{}{}
					if !rs.any || st < rs.min {
						rs.min = st
					}
					if !rs.any || st > rs.max {
						rs.max = st
					}
					rs.any = true
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		allSteps := make([]int64, 0, len(stepSet))
		for st := range stepSet {
			allSteps = append(allSteps, st)
		}
		slices.Sort(allSteps)
		if !hasStart {
			start = 0
			end = 0
			if len(allSteps) > 0 {
				end = allSteps[len(allSteps)-1]
			}
		}
		sampled := make(map[int64]struct{})
		lo := sort.Search(len(allSteps), func(i int) bool { return allSteps[i] >= start })
		hi := sort.Search(len(allSteps), func(i int) bool { return allSteps[i] > end })
		if n := hi - lo; n <= int(maxResults) {
			for _, st := range allSteps[lo:hi] {
				sampled[st] = struct{}{}
			}
		} else {
			// MLflow 2.22.1 compares the absolute index with the number of
			// steps in the range (not with its end), which drops samples
			// when the range does not start at the first step; the
			// transcripts record that, so it is kept.
			interval := float64(n) / float64(maxResults)
			for i := 0; i < int(maxResults); i++ {
				idx := lo + int(float64(i)*interval)
				if idx < n {
					sampled[allSteps[idx]] = struct{}{}
				}
			}
			sampled[allSteps[hi-1]] = struct{}{}
		}
		for _, rs := range perRun {
			if !rs.any {
				continue
			}
			for _, st := range []int64{rs.min, rs.max} {
				if start <= st && st <= end {
					sampled[st] = struct{}{}
				}
			}
		}

		buf := make([]byte, 0, 4096)
		count := 0
		var points []tracking.Metric
		for _, id := range runIDs {
			points = points[:0]
			err := s.store.MetricHistory(ctx, id, key, historyChunk, func(ms []tracking.Metric) error {
				for j := range ms {
					if _, ok := sampled[ms[j].Step]; ok {
						points = append(points, ms[j])
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			// History comes in (timestamp, step, value) order; MLflow answers
			// each run's sampled points ordered by step, timestamp, value.
			slices.SortStableFunc(points, func(a, b tracking.Metric) int {
				if a.Step != b.Step {
					return cmpInt(a.Step, b.Step)
				}
				return cmpInt(a.Timestamp, b.Timestamp)
			})
			for j := range points[:min(len(points), maxResultsPerRunSteps)] {
				if count == 0 {
					buf = append(buf, `{"metrics":[`...)
				} else {
					buf = append(buf, ',')
				}
				buf = appendMetric(buf, &points[j], id)
				count++
			}
		}
		if count == 0 {
			return writeEmpty(w)
		}
		buf = append(buf, "]}"...)
		writeRawJSON(w, http.StatusOK, buf)
		return nil
	})
}

// historyBulkRequest is the UI's get-history-bulk, which MLflow reads from
// the query string alone (request.args, no message) with its own messages.
type historyBulkRequest struct {
	RunIDs          []string
	Key, MaxResults *string
	max             int64
}

func (q *historyBulkRequest) decl() []spec {
	return []spec{strList("run_id", &q.RunIDs), optStr("metric_key", &q.Key), optStr("max_results", &q.MaxResults)}
}

func (q *historyBulkRequest) validate() error {
	if len(q.RunIDs) == 0 {
		return invalidParam("GetMetricHistoryBulk request must specify at least one run_id.")
	}
	if len(q.RunIDs) > maxBulkRunIDs {
		return invalidParam("GetMetricHistoryBulk request cannot specify more than %d run_ids. Received %d run_ids.",
			maxBulkRunIDs, len(q.RunIDs))
	}
	if q.Key == nil {
		return invalidParam("GetMetricHistoryBulk request must specify a metric_key.")
	}
	q.max = maxHistoryBulkResults
	if q.MaxResults != nil {
		n, err := strconv.ParseInt(*q.MaxResults, 10, 64)
		if err != nil || n < 0 {
			return invalidParam("Invalid value %q for parameter 'max_results' supplied: it must be a non-negative integer.", *q.MaxResults)
		}
		q.max = min(n, maxHistoryBulkResults)
	}
	return nil
}

// getMetricHistoryBulk is the UI's ajax-only get-history-bulk: the full
// history of a metric for up to 100 runs, ordered by run id, then
// timestamp, step and value, at most max_results (≤ 25000) points in all.
// MLflow writes NaN there as a bare NaN token (Flask's jsonify); we write
// the string "NaN", which every JSON parser accepts.
func (s *Server) getMetricHistoryBulk(w http.ResponseWriter, r *http.Request) error {
	var q historyBulkRequest
	if err := decodeFields(&fields{query: r.URL.Query()}, &q); err != nil {
		return err
	}
	runIDs, key, maxResults := q.RunIDs, *q.Key, q.max
	ids := slices.Clone(runIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	buf := make([]byte, 0, 4096)
	count := int64(0)
	var points []tracking.Metric
	for _, id := range ids {
		if count >= maxResults {
			break
		}
		points = points[:0]
		err := s.store.MetricHistory(r.Context(), id, key, historyChunk, func(ms []tracking.Metric) error {
			points = append(points, ms...)
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortStableFunc(points, func(a, b tracking.Metric) int {
			switch {
			case a.Timestamp != b.Timestamp:
				return cmpInt(a.Timestamp, b.Timestamp)
			case a.Step != b.Step:
				return cmpInt(a.Step, b.Step)
			}
			return 0
		})
		for i := range points {
			if count >= maxResults {
				break
			}
			if count == 0 {
				buf = append(buf, `{"metrics":[`...)
			} else {
				buf = append(buf, ',')
			}
			buf = appendMetric(buf, &points[i], id)
			count++
		}
	}
	if count == 0 {
		writeRawJSON(w, http.StatusOK, []byte(`{"metrics":[]}`))
		return nil
	}
	buf = append(buf, "]}"...)
	writeRawJSON(w, http.StatusOK, buf)
	return nil
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}
