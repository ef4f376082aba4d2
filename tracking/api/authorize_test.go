package api

import (
	"net/http/httptest"
	"testing"
)

// TestParamsReadQueryAsHandlers: the gateway's Params read a query string
// as the handlers do (requestFields), invalid UTF-8 replaced by U+FFFD, so
// the name a gateway checks is the name the handler acts on.
func TestParamsReadQueryAsHandlers(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/2.0/mlflow/registered-models/get?name=a%FFb", nil)
	f, err := requestFields(r)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := f.str("name")
	if want != "a\uFFFDb" {
		t.Fatalf("handler reads %q", want)
	}
	if got := ParseParams(r, nil).String("name"); got != want {
		t.Errorf("ParseParams reads %q, handler %q", got, want)
	}
	if got := QueryParams(r).String("name"); got != want {
		t.Errorf("QueryParams reads %q, handler %q", got, want)
	}
	post := httptest.NewRequest("POST", "/api/2.0/mlflow/runs/get?run_id=q", nil)
	if got := ParseParams(post, []byte(`{"run_uuid":"u"}`)).RunID(); got != "u" {
		t.Errorf("POST RunID = %q, want the body's run_uuid", got)
	}
}
