package authz

import (
	"net/http"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
)

// allRoutes is every route the API server registers plus the gateway's own.
func allRoutes(t *testing.T) []api.Route {
	t.Helper()
	srv, err := api.New(api.Options{ArtifactsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return append(srv.Routes(), ManagementRoutes()...)
}

// TestEveryRouteHasARule fails when a route is added without a Table
// entry: such routes are denied at run time, and must be decided here.
func TestEveryRouteHasARule(t *testing.T) {
	for _, r := range allRoutes(t) {
		if _, ok := Table[r.Name]; !ok {
			t.Errorf("route %s %s (%s) has no entry in authz.Table", r.Method, r.Pattern, r.Name)
		}
	}
}

// TestTableHasNoStaleEntries keeps the table honest: every entry names a
// route that exists.
func TestTableHasNoStaleEntries(t *testing.T) {
	names := map[string]bool{}
	for _, r := range allRoutes(t) {
		names[r.Name] = true
	}
	for n := range Table {
		if !names[n] {
			t.Errorf("authz.Table has an entry for %q, which is no route", n)
		}
	}
}

func TestMatcherFindsEveryRoute(t *testing.T) {
	routes := allRoutes(t)
	m := NewMatcher(routes)
	for _, r := range routes {
		path := r.Pattern
		path = replaceParams(path)
		got, ok, _ := m.Match(r.Method, path)
		if !ok || got.Route.Name != r.Name {
			t.Errorf("Match(%s %s) = %v %v, want %s", r.Method, path, got.Route.Name, ok, r.Name)
		}
	}
	if _, ok, known := m.Match(http.MethodGet, "/api/2.0/mlflow/nope"); ok || known {
		t.Errorf("unknown path matched")
	}
	if _, ok, known := m.Match(http.MethodPut, "/api/2.0/mlflow/runs/create"); ok || !known {
		t.Errorf("wrong method: ok=%v known=%v", ok, known)
	}
}

func replaceParams(p string) string {
	out := []byte{}
	for i := 0; i < len(p); i++ {
		if p[i] == '{' {
			j := i
			for j < len(p) && p[j] != '}' {
				j++
			}
			if p[i:j+1] == "{path...}" {
				out = append(out, "1/x/y"...)
			} else {
				out = append(out, "v"...)
			}
			i = j
			continue
		}
		out = append(out, p[i])
	}
	return string(out)
}

func TestLevels(t *testing.T) {
	cases := []struct {
		l    Level
		acts []Action
	}{
		{NoPermissions, nil},
		{Read, []Action{ActRead}},
		{Use, []Action{ActRead, ActUse}},
		{Edit, []Action{ActRead, ActUse, ActUpdate}},
		{Manage, []Action{ActRead, ActUse, ActUpdate, ActDelete, ActManage}},
	}
	for _, c := range cases {
		want := map[Action]bool{}
		for _, a := range c.acts {
			want[a] = true
		}
		for a := ActRead; a <= ActManage; a++ {
			if c.l.Allows(a) != want[a] {
				t.Errorf("%s.Allows(%s) = %v", c.l, a, !want[a])
			}
		}
		back, err := ParseLevel(c.l.String())
		if err != nil || back != c.l {
			t.Errorf("ParseLevel(%s) = %v, %v", c.l, back, err)
		}
	}
	if _, err := ParseLevel("read"); err == nil {
		t.Error("lower-case level accepted")
	}
}

func TestLeadingExperiment(t *testing.T) {
	for in, want := range map[string]string{"1/abc/artifacts": "1", "/12/x": "12", "abc/1": "", "": "", "1a/x": "", "7": "7"} {
		if got := leadingExperiment(in); got != want {
			t.Errorf("leadingExperiment(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResourceScopesHaveAKind: every scope that checks a resource's
// permission names the kind of resource, so the UI's permission answer
// (which lists the routes a viewer may call on an experiment or a model)
// covers every route of the table.
func TestResourceScopesHaveAKind(t *testing.T) {
	for name, r := range Table {
		switch r.Scope {
		case Open, Authenticated, Filtered, Admin, SelfOrAdmin:
			if k := r.Scope.ResourceKind(); k != "" {
				t.Errorf("%s: scope %d checks no resource but has kind %q", name, r.Scope, k)
			}
		default:
			if r.Scope.ResourceKind() == "" {
				t.Errorf("%s: scope %d checks a resource but has no kind", name, r.Scope)
			}
		}
	}
	if Table["DeleteRun"].Scope.ResourceKind() != KindExperiment || Table["DeleteModelVersion"].Scope.ResourceKind() != KindRegisteredModel {
		t.Error("runs are decided on their experiment, versions on their model")
	}
}
