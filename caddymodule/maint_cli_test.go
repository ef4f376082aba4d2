package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// TestStreamBackupTruncated: a snapshot stream cut short (the server
// failed mid-copy) is an error, and the backup file is not replaced.
func TestStreamBackupTruncated(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mlflow/backup" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", "65536")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(bytes.Repeat([]byte{0}, 4096))
		// The handler returns: the connection closes short of the length.
		if hj, ok := w.(http.Hijacker); ok {
			c, _, _ := hj.Hijack()
			_ = c.Close()
		}
	}))
	defer srv.Close()
	tgt := &cliTarget{storePath: "/x/mlflow.bolt", adminAddr: strings.TrimPrefix(srv.URL, "http://")}
	var buf bytes.Buffer
	if err := tgt.streamBackup(&buf); err == nil {
		t.Fatalf("a truncated stream of %d bytes was accepted", buf.Len())
	}
	dst := filepath.Join(t.TempDir(), "b.db")
	if _, err := boltstore.WriteFileAtomic(context.Background(), dst, tgt.streamBackup); err == nil {
		t.Fatal("WriteFileAtomic accepted a truncated stream")
	}
}

// TestMultipartAge: --uploads-older-than, the config's multipart_gc_age
// and the 6h floor.
func TestMultipartAge(t *testing.T) {
	h := &Handler{}
	if d, err := h.multipartAge(""); err != nil || d.Hours() != 24 {
		t.Fatalf("default: %v %v", d, err)
	}
	if d, err := h.multipartAge("48h"); err != nil || d.Hours() != 48 {
		t.Fatalf("48h: %v %v", d, err)
	}
	for _, bad := range []string{"1h", "x", "-7h"} {
		if _, err := h.multipartAge(bad); err == nil {
			t.Fatalf("%s accepted", bad)
		}
	}
	h.Uploads = &UploadsConfig{MultipartGCAge: 12 * 3600 * 1e9}
	if d, err := h.multipartAge(""); err != nil || d.Hours() != 12 {
		t.Fatalf("config: %v %v", d, err)
	}
}

// TestImportReportWire: the report crosses the admin API whole, problems
// with their messages.
func TestImportReportWire(t *testing.T) {
	rep := &mlflowimport.Report{
		Imported: storecopy.Counts{Runs: 3, MetricPoints: 7}, SkippedRuns: 2, SkippedLoggedModels: 1, SkippedTraces: 4,
		SkippedModels: 5, ArtifactFiles: 6, ArtifactBytes: 7, ArtifactsSkipped: 8, Remapped: map[string]string{"1": "9"},
		Problems: []mlflowimport.Problem{{Kind: "run", ID: "abc", Err: errors.New("bad meta.yaml")}},
	}
	b, err := json.Marshal(importEvent{Done: true, Report: wireReport(rep)})
	if err != nil {
		t.Fatal(err)
	}
	var ev importEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	got := ev.Report.report()
	if len(got.Problems) != 1 || got.Problems[0].String() != rep.Problems[0].String() {
		t.Fatalf("problems %v", got.Problems)
	}
	got.Problems, rep.Problems = nil, nil
	if !reflect.DeepEqual(got, rep) {
		t.Fatalf("got %+v\nwant %+v", got, rep)
	}
}
