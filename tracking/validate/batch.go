package validate

import (
	"strconv"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Batch validates a log-batch request in the order of MLflow 2.22.1's
// handler and SQL store, stopping at the first failure:
//
//  1. every metric, param and tag has a key ("Missing value for required
//     parameter 'metrics[0].key'. ..."), metrics first, then params, then
//     tags (the handler's presence checks; value/timestamp presence of
//     metrics is interleaved there and is the decoder's business);
//  2. runID matches ^[a-zA-Z0-9][\w\-]{0,255}$ (`Invalid value "" for
//     parameter 'run_id' supplied.`); log-batch uses the run_id field only,
//     never run_uuid;
//  3. each metric (Metric with elem "metrics[i]"), then each param (Param,
//     "params[i]"), then each tag (Tag, "tags[i]"); param and tag values are
//     truncated in place in b;
//  4. counts: at most 1000 metrics, 100 params, 100 tags and 1000 in total;
//  5. no param key twice, even with equal values.
//
// The existence and active state of the run are checked afterwards by the
// store.
func Batch(runID string, b *tracking.Batch) error {
	for i := range b.Metrics {
		if b.Metrics[i].Key == "" {
			return MissingValue(elemPath{list: "metrics", idx: i}.field("key"))
		}
	}
	for i := range b.Params {
		if b.Params[i].Key == "" {
			return MissingValue(elemPath{list: "params", idx: i}.field("key"))
		}
	}
	for i := range b.Tags {
		if b.Tags[i].Key == "" {
			return MissingValue(elemPath{list: "tags", idx: i}.field("key"))
		}
	}
	if err := RunID(runID, "run_id"); err != nil {
		return err
	}
	for i := range b.Metrics {
		if err := metric(&b.Metrics[i], elemPath{list: "metrics", idx: i}); err != nil {
			return err
		}
	}
	for i := range b.Params {
		p := &b.Params[i]
		if err := paramName(p.Key, elemPath{list: "params", idx: i}); err != nil {
			return err
		}
		p.Value = TruncateParamValue(p.Value)
	}
	for i := range b.Tags {
		t := &b.Tags[i]
		if err := tagName(t.Key, elemPath{list: "tags", idx: i}); err != nil {
			return err
		}
		t.Value = TruncateTagValue(t.Value)
	}
	if err := BatchLimits(len(b.Metrics), len(b.Params), len(b.Tags)); err != nil {
		return err
	}
	return UniqueParamKeys(b.Params)
}

// BatchLimits checks the log-batch counts: at most 1000 metrics, 100 params,
// 100 tags and 1000 entities in total, in that order. Message: "A batch
// logging request can contain at most 100 params. Got 101 params. Please
// split up params across multiple requests and try again."
func BatchLimits(metrics, params, tags int) error {
	switch {
	case metrics > MaxMetricsPerBatch:
		return batchLimit("metrics", MaxMetricsPerBatch, metrics)
	case params > MaxParamsTagsPerBatch:
		return batchLimit("params", MaxParamsTagsPerBatch, params)
	case tags > MaxParamsTagsPerBatch:
		return batchLimit("tags", MaxParamsTagsPerBatch, tags)
	case metrics+params+tags > MaxEntitiesPerBatch:
		return batchLimit("metrics, params, and tags", MaxEntitiesPerBatch, metrics+params+tags)
	}
	return nil
}

func batchLimit(what string, limit, got int) *tracking.Error {
	return &tracking.Error{
		Code: invalidParamValue,
		Message: "A batch logging request can contain at most " + strconv.Itoa(limit) + " " + what +
			". Got " + strconv.Itoa(got) + " " + what + ". Please split up " + what +
			" across multiple requests and try again.",
	}
}

// UniqueParamKeys rejects a param list in which a key occurs more than once,
// even with equal values: "Duplicate parameter keys have been submitted:
// ['a', 'a']. Please ensure the request contains only one param value per
// param key." The list names every repeated occurrence after the first, in
// request order, as MLflow does. It does not allocate when keys are unique.
func UniqueParamKeys(params []tracking.Param) error {
	var dupes []string
	for i := 1; i < len(params); i++ {
		k := params[i].Key
		for j := 0; j < i; j++ {
			if params[j].Key == k {
				dupes = append(dupes, k)
				break
			}
		}
	}
	if len(dupes) == 0 {
		return nil
	}
	return &tracking.Error{
		Code: invalidParamValue,
		Message: "Duplicate parameter keys have been submitted: " + pyStrList(dupes) +
			". Please ensure the request contains only one param value per param key.",
	}
}
