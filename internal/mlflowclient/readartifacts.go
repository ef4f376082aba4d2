package mlflowclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// The artifacts of logged models and traces, read through the tracking
// server (for locations the client cannot reach itself: anything but the
// mlflow-artifacts proxy). MLflow 3 serves these routes (handlers.py
// _list_logged_model_artifacts, get_logged_model_artifact_handler,
// get_trace_artifact_handler); the last two only under /ajax-api.

// ListLoggedModelArtifacts is GET logged-models/<id>/artifacts/directories:
// the children of dir ("" is the root) one level deep, paths relative to
// the model's artifact root, following page tokens where sent.
func (c *Client) ListLoggedModelArtifacts(ctx context.Context, modelID, dir string) (*ArtifactList, error) {
	q := url.Values{}
	if dir != "" {
		q.Set("artifact_directory_path", dir)
	}
	return c.listAllPages(ctx, v2+"/logged-models/"+url.PathEscape(modelID)+"/artifacts/directories", q)
}

// WalkLoggedModelArtifacts calls fn for every file under a logged model's
// artifact root, depth first, with its path relative to the root.
func (c *Client) WalkLoggedModelArtifacts(ctx context.Context, modelID string, fn func(FileInfo) error) error {
	return walkListed(ctx, "logged model "+modelID, func(ctx context.Context, dir string) (*ArtifactList, error) {
		return c.ListLoggedModelArtifacts(ctx, modelID, dir)
	}, fn)
}

// DownloadLoggedModelArtifact streams GET
// /ajax-api/2.0/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=.
func (c *Client) DownloadLoggedModelArtifact(ctx context.Context, modelID, p string) (io.ReadCloser, int64, error) {
	if err := checkArtifactPath(p); err != nil {
		return nil, 0, err
	}
	return c.stream(ctx, "/ajax-api/2.0/mlflow/logged-models/"+url.PathEscape(modelID)+"/artifacts/files",
		url.Values{"artifact_file_path": {p}})
}

// DownloadTraceData streams GET /ajax-api/2.0/mlflow/get-trace-artifact?request_id=:
// the trace's traces.json, wherever the server keeps it.
func (c *Client) DownloadTraceData(ctx context.Context, traceID string) (io.ReadCloser, int64, error) {
	return c.stream(ctx, "/ajax-api/2.0/mlflow/get-trace-artifact", url.Values{"request_id": {traceID}})
}

// StreamMetricHistoryPage is one metrics/get-history call (maxResults 0
// is HistoryPageSize) whose answer is decoded as it arrives: fn gets each
// point in the server's order, so a server that ignores max_results and
// answers a whole history at once (MLflow's file store before paging;
// caddy-mlflow, which streams it) is never held in memory. It returns
// the answer's next_page_token.
func (c *Client) StreamMetricHistoryPage(ctx context.Context, runID, key string, maxResults int, pageToken string, fn func(Metric) error) (string, error) {
	if maxResults <= 0 {
		maxResults = HistoryPageSize
	}
	q := url.Values{"run_id": {runID}, "run_uuid": {runID}, "metric_key": {key}, "max_results": {strconv.Itoa(maxResults)}}
	if pageToken != "" {
		q.Set("page_token", pageToken)
	}
	const endpoint = v2 + "/metrics/get-history"
	body, _, err := c.stream(ctx, endpoint, q)
	if err != nil {
		return "", err
	}
	defer body.Close()
	bad := func(err error) error { return fmt.Errorf("GET %s: decoding the response: %w", endpoint, err) }
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		if err == io.EOF {
			return "", nil // an empty body: no points
		}
		return "", bad(fmt.Errorf("not a JSON object (%v)", err))
	}
	next := ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", bad(err)
		}
		switch tok {
		case "metrics":
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				if tok == nil && err == nil {
					continue // "metrics": null
				}
				return "", bad(fmt.Errorf("metrics is not a list (%v)", err))
			}
			for dec.More() {
				var m Metric
				if err := dec.Decode(&m); err != nil {
					return "", bad(err)
				}
				if err := fn(m); err != nil {
					return "", err
				}
			}
			if _, err := dec.Token(); err != nil {
				return "", bad(err)
			}
		case "next_page_token":
			if err := dec.Decode(&next); err != nil {
				return "", bad(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", bad(err)
			}
		}
	}
	return next, nil
}
