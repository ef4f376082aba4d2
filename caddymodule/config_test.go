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
		{in: "postgresql://u@h/db", wantErr: "is a PostgreSQL database, not a bbolt file"},
		{in: "mysql+pymysql://u@h/db", wantErr: "mysql+pymysql databases are not supported yet; use PostgreSQL"},
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

func TestParseBackendStoreURI(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-pw"
	tests := []struct {
		in       string
		wantPG   string // PostgresURI
		wantBolt string // BoltPath
		wantName string // String()
		wantErr  string
	}{
		{in: "", wantBolt: filepath.Join(wd, "mlflow.bolt"), wantName: filepath.Join(wd, "mlflow.bolt")},
		{in: "bbolt:///var/x.bolt", wantBolt: "/var/x.bolt", wantName: "/var/x.bolt"},
		{in: "postgresql://mlflow:" + secret + "@db.internal:5432/mlflow?sslmode=disable",
			wantPG:   "postgresql://mlflow:" + secret + "@db.internal:5432/mlflow?sslmode=disable",
			wantName: "postgresql://mlflow:xxxxx@db.internal:5432/mlflow?sslmode=disable"},
		{in: " postgres://mlflow@db/mlflow ", wantPG: "postgres://mlflow@db/mlflow", wantName: "postgres://mlflow@db/mlflow"},
		{in: "postgresql+psycopg2://mlflow:" + secret + "@db/mlflow",
			wantPG:   "postgresql+psycopg2://mlflow:" + secret + "@db/mlflow",
			wantName: "postgresql+psycopg2://mlflow:xxxxx@db/mlflow"},
		{in: "POSTGRESQL://u@h/db", wantPG: "POSTGRESQL://u@h/db", wantName: "postgresql://u@h/db"},
		{in: "postgresql://u:" + secret + "@h:notaport/db", wantErr: "parsing PostgreSQL URI"},
		{in: "postgresql://u@h/db?sslmode=bogus", wantErr: "sslmode"},
		{in: "sqlite:///mlflow.db", wantErr: "sqlite databases are not supported yet"},
		{in: "mysql://root:" + secret + "@h/db", wantErr: "mysql databases are not supported yet; use PostgreSQL"},
		{in: "mssql+pyodbc://sa:" + secret + "@h/db", wantErr: "mssql+pyodbc databases are not supported yet"},
		{in: "databricks://tok:" + secret + "@ws", wantErr: `unsupported scheme "databricks"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBackendStoreURI(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseBackendStoreURI(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q shows the password", err)
				}
				return
			}
			if err != nil || got.PostgresURI != tt.wantPG || got.BoltPath != tt.wantBolt {
				t.Fatalf("ParseBackendStoreURI(%q) = %+v, %v; want PostgresURI %q BoltPath %q", tt.in, got, err, tt.wantPG, tt.wantBolt)
			}
			if got.IsPostgres() != (tt.wantPG != "") {
				t.Errorf("IsPostgres() = %v", got.IsPostgres())
			}
			if name := got.String(); !strings.EqualFold(name, tt.wantName) || strings.Contains(name, secret) {
				t.Errorf("String() = %q, want %q", name, tt.wantName)
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
