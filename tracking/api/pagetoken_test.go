package api

import (
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
