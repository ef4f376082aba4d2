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

// TestParamsBool: a JSON bool, or "true"/"false" in any case as a JSON
// string or a query value; anything else, or absent, is not ok.
func TestParamsBool(t *testing.T) {
	post := httptest.NewRequest("POST", "/x", nil)
	for body, want := range map[string][2]bool{
		`{"b":true}`: {true, true}, `{"b":"False"}`: {false, true}, `{"b":"TRUE"}`: {true, true},
		`{"b":1}`: {false, false}, `{"b":"yes"}`: {false, false}, `{}`: {false, false}, `{"b":null}`: {false, false},
	} {
		if v, ok := ParseParams(post, []byte(body)).Bool("b"); v != want[0] || ok != want[1] {
			t.Errorf("%s: Bool = %v, %v; want %v, %v", body, v, ok, want[0], want[1])
		}
	}
	for query, want := range map[string][2]bool{"b=True": {true, true}, "b=false": {false, true}, "b=1": {false, false}} {
		if v, ok := QueryParams(httptest.NewRequest("GET", "/x?"+query, nil)).Bool("b"); v != want[0] || ok != want[1] {
			t.Errorf("%s: Bool = %v, %v; want %v, %v", query, v, ok, want[0], want[1])
		}
	}
}
