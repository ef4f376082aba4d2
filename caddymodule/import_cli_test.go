package caddymodule

import (
	"path/filepath"
	"testing"
)

func TestImportTargetFromConfig(t *testing.T) {
	cfg := []byte(`{"apps":{"http":{"servers":{"s":{"routes":[{"handle":[
		{"handler":"mlflow","backend_store_uri":"/srv/a.bolt","artifacts_destination":"/srv/arts"}]}]}}}}}`)
	store, arts, err := importTargetFromConfig(cfg, "")
	if err != nil || store != "/srv/a.bolt" || arts != "/srv/arts" {
		t.Fatalf("got %q %q %v", store, arts, err)
	}
	def := []byte(`{"apps":{"http":{"servers":{"s":{"routes":[{"handle":[{"handler":"mlflow"}]}]}}}}}`)
	_, arts, err = importTargetFromConfig(def, "")
	if want, _ := filepath.Abs(DefaultArtifactsDestination); err != nil || arts != want {
		t.Fatalf("default destination %q %v, want %q", arts, err, want)
	}
	off := []byte(`{"handler":"mlflow","backend_store_uri":"x.bolt","serve_artifacts":false}`)
	if _, arts, err := importTargetFromConfig(off, ""); err != nil || arts != "" {
		t.Fatalf("serve_artifacts off: %q %v", arts, err)
	}
	two := []byte(`[{"handler":"mlflow","backend_store_uri":"a.bolt"},{"handler":"mlflow","backend_store_uri":"b.bolt"}]`)
	if _, _, err := importTargetFromConfig(two, ""); err == nil {
		t.Fatal("two handlers: no error")
	}
	if store, _, err := importTargetFromConfig(two, "b.bolt"); err != nil || store != "b.bolt" {
		t.Fatalf("chosen handler: %q %v", store, err)
	}
	if store, _, err := importTargetFromConfig(def, ""); err != nil || store != DefaultBackendStorePath {
		t.Fatalf("no backend_store_uri: %q %v, want the default store", store, err)
	}
	t.Setenv("MLFLOW_IMPORT_TEST_DB", "postgresql://u@h/db")
	env := []byte(`{"handler":"mlflow","backend_store_uri":"{env.MLFLOW_IMPORT_TEST_DB}"}`)
	if store, _, err := importTargetFromConfig(env, ""); err != nil || store != "postgresql://u@h/db" {
		t.Fatalf("placeholder: %q %v", store, err)
	}
	gs := []byte(`{"handler":"mlflow","backend_store_uri":"x.bolt","artifacts_destination":"gs://bkt/team/arts/","gcs_endpoint":"http://127.0.0.1:4443"}`)
	if _, arts, ep, err := importTargetGCS(gs, ""); err != nil || arts != "gs://bkt/team/arts" || ep != "http://127.0.0.1:4443" {
		t.Fatalf("gs:// destination: %q %q %v", arts, ep, err)
	}
	if _, _, err := importTargetFromConfig([]byte(`{}`), ""); err == nil {
		t.Fatal("no handler: no error")
	}
}
