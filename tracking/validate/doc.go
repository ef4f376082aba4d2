// Package validate enforces the request validation of MLflow's tracking
// server (MLflow 2.22.1, mlflow/utils/validation.py and the SQL store that
// calls it): key syntax, length limits, value truncation, log-batch limits
// and dataset-input limits.
//
// Every function is pure: it looks only at its arguments, never at stored
// state, and reports a failure as a *tracking.Error with MLflow's error code
// (INVALID_PARAMETER_VALUE) and MLflow's message text, so that clients see
// the same answers as from the Python server. Existence and lifecycle checks
// (run not found, run not active) belong to the store and, as in MLflow, come
// after the checks of this package unless a function's doc says otherwise.
//
// Lengths are counted in Unicode code points, as Python's len does, and
// truncation cuts at code points, never inside a UTF-8 sequence.
//
// # Element paths
//
// MLflow names the offending field in its messages with a JSON path: "key",
// "name" or "value" for a single-entity request, "metrics[3].name" or
// "tags[0].key" inside log-batch. Functions that validate one element take
// elem, the path of the element itself: "" for the fields at the top of the
// request (log-metric, log-parameter, set-tag), "metrics[3]" for the fourth
// metric of a batch. The field name is appended as MLflow does, so a metric
// key with a bad character is reported as parameter 'name' (log-metric) or
// 'metrics[3].name' (log-batch), while a missing key is 'key' or
// 'metrics[3].key'.
//
// # Allocation
//
// The checks that run per key on the log-batch hot path (character class,
// path uniqueness, lengths, duplicate param keys) do not allocate when the
// input is valid; messages are built only on failure.
package validate
