package api

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// A page token only continues the query it was issued for: through HTTP,
// a token reused with another filter, another order or for another search
// is MLflow's 400 INVALID_PARAMETER_VALUE "Invalid page token" error, and
// so is an altered one.
func TestPageTokenOfAnotherQueryRefused(t *testing.T) {
	ts, _ := newTestServer(t)
	r := post(t, ts, "experiments/create", map[string]any{"name": "tok"})
	wantStatus(t, r, 200)
	exp := r.json(t)["experiment_id"].(string)
	for i := 0; i < 4; i++ {
		wantStatus(t, post(t, ts, "runs/create", map[string]any{"experiment_id": exp, "start_time": i}), 200)
	}
	r = post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{exp}, "max_results": 2})
	wantStatus(t, r, 200)
	tok, _ := r.json(t)["next_page_token"].(string)
	if tok == "" {
		t.Fatalf("no token: %s", r.body)
	}
	r = post(t, ts, "runs/search", map[string]any{"experiment_ids": []string{exp}, "max_results": 2, "page_token": tok})
	wantStatus(t, r, 200)
	if runs, _ := r.json(t)["runs"].([]any); len(runs) != 2 {
		t.Fatalf("page 2: %s", r.body)
	}
	for name, body := range map[string]map[string]any{
		"other filter": {"experiment_ids": []string{exp}, "filter": "attributes.status = 'RUNNING'", "page_token": tok},
		"other order":  {"experiment_ids": []string{exp}, "order_by": []string{"start_time"}, "page_token": tok},
		"altered":      {"experiment_ids": []string{exp}, "page_token": strings.Replace(tok, "e", "f", 1)},
	} {
		r := post(t, ts, "runs/search", body)
		if r.status != 400 || !strings.Contains(string(r.body), "Invalid page token") {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
		wantError(t, r, 400, "INVALID_PARAMETER_VALUE", "Invalid page token")
	}
	wantError(t, post(t, ts, "experiments/search", map[string]any{"max_results": 5, "page_token": tok}), 400, "INVALID_PARAMETER_VALUE", "Invalid page token")
	wantError(t, get(t, ts, "registered-models/search?max_results=10&page_token="+url.QueryEscape(tok)), 400, "INVALID_PARAMETER_VALUE", "Invalid page token")
}

// metrics/get-history answers in (timestamp, step, value) order, as
// MLflow's SqlAlchemyStore.get_metric_history orders its query;
// get-history-bulk-interval answers each run's points by step, then
// timestamp, as get_metric_history_bulk_interval_from_steps does.
func TestMetricHistoryOrders(t *testing.T) {
	ts, _ := newTestServer(t)
	r := post(t, ts, "runs/create", map[string]any{"experiment_id": "0", "start_time": 1})
	wantStatus(t, r, 200)
	run := r.json(t)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	var ms []map[string]any
	for _, p := range [][3]int64{{1, 30, 5}, {2, 10, 7}, {3, 20, 7}, {0, 10, 9}, {1, 10, 7}} { // step, timestamp, value
		ms = append(ms, map[string]any{"key": "m", "step": p[0], "timestamp": p[1], "value": p[2]})
	}
	wantStatus(t, post(t, ts, "runs/log-batch", map[string]any{"run_id": run, "metrics": ms}), 200)
	points := func(r response) string {
		var out []string
		for _, m := range r.json(t)["metrics"].([]any) {
			m := m.(map[string]any)
			out = append(out, fmt.Sprintf("%v/%v/%v", m["step"], m["timestamp"], m["value"]))
		}
		return strings.Join(out, " ")
	}
	r = get(t, ts, "metrics/get-history?run_id="+run+"&metric_key=m")
	wantStatus(t, r, 200)
	if got, want := points(r), "0/10/9.0 1/10/7.0 2/10/7.0 3/20/7.0 1/30/5.0"; got != want {
		t.Fatalf("get-history order %s, want %s", got, want)
	}
	r = get(t, ts, "metrics/get-history-bulk-interval?run_ids="+run+"&metric_key=m")
	wantStatus(t, r, 200)
	if got, want := points(r), "0/10/9.0 1/10/7.0 1/30/5.0 2/10/7.0 3/20/7.0"; got != want {
		t.Fatalf("get-history-bulk-interval order %s, want %s", got, want)
	}
}

// create_logged_model stores a source_run_id that names no run, as
// MLflow's SqlAlchemyStore.create_logged_model does (no lookup, no
// foreign key on the column); a search by it finds the model.
func TestCreateLoggedModelUnknownSourceRun(t *testing.T) {
	ts, _ := newTestServer(t)
	exp := mkExperiment(t, ts, "lm-src")
	ghost := strings.Repeat("ab", 16)
	r := post(t, ts, "logged-models", map[string]any{"experiment_id": exp, "name": "m", "source_run_id": ghost})
	wantStatus(t, r, 200)
	info := r.json(t)["model"].(map[string]any)["info"].(map[string]any)
	if info["source_run_id"] != ghost {
		t.Fatalf("source_run_id %v", info["source_run_id"])
	}
	r = post(t, ts, "logged-models/search", map[string]any{"experiment_ids": []string{exp}, "filter": "source_run_id = '" + ghost + "'"})
	if got := modelIDs(t, r); len(got) != 1 || got[0] != "m" {
		t.Fatalf("search by source run: %s", r.body)
	}
}

// runs/update parses status as protobuf's ParseDict with
// ignore_unknown_fields does in MLflow's _get_request_message: an unknown
// name (names are case-sensitive) leaves the field unset, so nothing
// changes and the answer is 200; an unknown number of the closed enum is
// a ParseError, which the schema check turns into a 400.
func TestUpdateRunUnknownStatus(t *testing.T) {
	ts, _ := newTestServer(t)
	r := post(t, ts, "runs/create", map[string]any{"experiment_id": "0", "start_time": 1})
	run := r.json(t)["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	for _, st := range []any{"DONE", "finished", "Finished"} {
		r := post(t, ts, "runs/update", map[string]any{"run_id": run, "status": st})
		wantStatus(t, r, 200)
		if got := r.json(t)["run_info"].(map[string]any)["status"]; got != "RUNNING" {
			t.Fatalf("status %v after update to %v", got, st)
		}
	}
	wantError(t, post(t, ts, "runs/update", map[string]any{"run_id": run, "status": 99}), 400, "INVALID_PARAMETER_VALUE", "status")
	wantError(t, post(t, ts, "runs/update", map[string]any{"run_id": run, "status": "99"}), 400, "INVALID_PARAMETER_VALUE", "status")
	r = post(t, ts, "runs/update", map[string]any{"run_id": run, "status": "3"})
	wantStatus(t, r, 200)
	if got := r.json(t)["run_info"].(map[string]any)["status"]; got != "FINISHED" {
		t.Fatalf("status %v after update to \"3\"", got)
	}
}

// Page tokens are URL-safe: one pasted into a GET query string without
// escaping still continues the search.
func TestPageTokenUnescapedInQuery(t *testing.T) {
	ts, _ := newTestServer(t)
	for i := 0; i < 3; i++ {
		wantStatus(t, post(t, ts, "experiments/create", map[string]any{"name": fmt.Sprintf("q%d", i)}), 200)
	}
	seen := map[string]bool{}
	token := ""
	for page := 0; page < 10; page++ {
		q := "experiments/search?max_results=1"
		if token != "" {
			if strings.ContainsAny(token, "+/") {
				t.Fatalf("token %q needs escaping", token)
			}
			q += "&page_token=" + token
		}
		r := get(t, ts, q)
		wantStatus(t, r, 200)
		for _, e := range r.json(t)["experiments"].([]any) {
			seen[e.(map[string]any)["name"].(string)] = true
		}
		token, _ = r.json(t)["next_page_token"].(string)
		if token == "" {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("paged through %v", seen)
	}
}
