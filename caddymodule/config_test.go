package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveBackendStoreURI(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in      string
		want    string // absolute path; "" when an error is expected
		wantErr string
	}{
		{in: "", want: filepath.Join(wd, "mlflow.bolt")},
		{in: "data/x.bolt", want: filepath.Join(wd, "data/x.bolt")},
		{in: "/var/lib/mlflow/x.bolt", want: "/var/lib/mlflow/x.bolt"},
		{in: "bbolt:///var/lib/mlflow/x.bolt", want: "/var/lib/mlflow/x.bolt"},
		{in: "bbolt://data/x.bolt", want: filepath.Join(wd, "data/x.bolt")},
		{in: "BBOLT://x.bolt", want: filepath.Join(wd, "x.bolt")},
		{in: "bbolt:x.bolt", wantErr: "bbolt:///absolute/path or bbolt://relative/path"},
		{in: "bbolt://", wantErr: "names no file"},
		{in: "bbolt:///x.bolt?mode=ro", wantErr: "no query"},
		{in: "sqlite:///mlflow.db", wantErr: "sqlite databases are not supported yet"},
		{in: "postgresql://u@h/db", wantErr: "postgresql databases are not supported yet"},
		{in: "mysql+pymysql://u@h/db", wantErr: "not supported yet"},
		{in: "file:///tmp/mlruns", wantErr: "file store (file:) is not supported"},
		{in: "databricks://profile", wantErr: `unsupported scheme "databricks"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ResolveBackendStoreURI(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ResolveBackendStoreURI(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveBackendStoreURI(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestResolveArtifactsDestination(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "", want: filepath.Join(wd, "mlartifacts")},
		{in: "arts", want: filepath.Join(wd, "arts")},
		{in: "/srv/arts", want: "/srv/arts"},
		{in: "file:///srv/arts", want: "/srv/arts"},
		{in: "file://localhost/srv/arts", want: "/srv/arts"},
		{in: "file:arts", want: filepath.Join(wd, "arts")},
		{in: "file://otherhost/srv", wantErr: "remote host"},
		{in: "gs://bucket/path/", want: "gs://bucket/path"},
		{in: "gs://bucket", want: "gs://bucket"},
		{in: "gs://Bad_Bucket/p", wantErr: "invalid bucket name"},
		{in: "gs://bucket/a/../b", wantErr: "invalid object prefix"},
		{in: "s3://bucket/path", wantErr: "s3:// artifact storage is not supported yet"},
		{in: "wasbs://c@a.blob.core.windows.net/p", wantErr: "not supported yet"},
		{in: "weird://x", wantErr: `unsupported scheme "weird"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ResolveArtifactsDestination(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ResolveArtifactsDestination(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveArtifactsDestination(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestResolveDefaultArtifactRoot(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in    string
		serve bool
		want  string
	}{
		{"", true, "mlflow-artifacts:/"},
		{"", false, filepath.Join(wd, "mlruns")},
		{"s3://bucket/root", false, "s3://bucket/root"},
		{"mlflow-artifacts:/team", true, "mlflow-artifacts:/team"},
		{"rel/root", false, filepath.Join(wd, "rel/root")},
		{"/abs/root", true, "/abs/root"},
	}
	for _, tt := range tests {
		got, err := ResolveDefaultArtifactRoot(tt.in, tt.serve)
		if err != nil || got != tt.want {
			t.Errorf("ResolveDefaultArtifactRoot(%q, %v) = %q, %v; want %q", tt.in, tt.serve, got, err, tt.want)
		}
	}
}
