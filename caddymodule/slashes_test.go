package caddymodule

import (
	"net/url"
	"testing"
)

func TestStripLeadingSlashes(t *testing.T) {
	tests := []struct{ in, path, raw string }{
		{"/api/2.0/mlflow/x", "/api/2.0/mlflow/x", ""},
		{"//api/2.0/mlflow/x", "/api/2.0/mlflow/x", ""},
		{"////api//x", "/api//x", ""},
		{"//api/2.0/mlflow-artifacts/artifacts/a%2Fb", "/api/2.0/mlflow-artifacts/artifacts/a/b", "/api/2.0/mlflow-artifacts/artifacts/a%2Fb"},
		{"/%2F/api/x", "/api/x", ""},
	}
	for _, tt := range tests {
		// A request line's path, not a scheme-relative URL.
		u, err := url.ParseRequestURI(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		stripLeadingSlashes(u)
		if u.Path != tt.path || u.RawPath != tt.raw {
			t.Errorf("%s: Path %q RawPath %q, want %q %q", tt.in, u.Path, u.RawPath, tt.path, tt.raw)
		}
	}
	for in, want := range map[string]string{
		"/a//b":   "/a/b",
		"/a///b":  "/a//b", // Werkzeug's re.sub("/{2,}?", "/") halves a run
		"/a////b": "/a//b",
		"/a/b":    "/a/b",
	} {
		if got := mergeSlashPairs(in); got != want {
			t.Errorf("mergeSlashPairs(%q) = %q, want %q", in, got, want)
		}
	}
}
