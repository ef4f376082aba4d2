package gcs_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// TestSweepGCSStaging: abandoned multipart staging areas in the bucket are
// removed once older than the staging age; young ones, those in flight in
// this process, and a neighbouring prefix are kept.
func TestSweepGCSStaging(t *testing.T) {
	ctx := context.Background()
	emu := gcstest.Start(t, "bkt")
	s, err := gcs.New(ctx, gcs.Options{Bucket: "bkt", Prefix: "team", Endpoint: emu.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nb, err := gcs.New(ctx, gcs.Options{Bucket: "bkt", Prefix: "teamx", Endpoint: emu.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	abandoned, live, neighbour := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	for _, up := range []string{abandoned, live} {
		if err := s.CreateUpload(ctx, up); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutPart(ctx, up, 1, strings.NewReader("part")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nb.CreateUpload(ctx, neighbour); err != nil {
		t.Fatal(err)
	}
	later := func() time.Time { return time.Now().Add(artifact.DefaultStagingAge + time.Hour) }

	// A part of the live upload in flight while the sweep runs.
	pr, pw := io.Pipe()
	partDone := make(chan error, 1)
	go func() { _, err := s.PutPart(ctx, live, 2, pr); partDone <- err }()
	_, _ = pw.Write([]byte("more"))
	deadline := time.Now().Add(10 * time.Second)
	for !artifact.InFlight("gcs-mpu:bkt\x00team/\x00"+live) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	if res, err := s.Sweep(ctx, artifact.SweepOptions{}); err != nil || res.Stagings != 0 {
		t.Fatalf("sweep of young areas = %+v, %v; want nothing removed", res, err)
	}
	if res, err := s.Sweep(ctx, artifact.SweepOptions{Now: later}); err != nil || res.Stagings != 1 {
		t.Fatalf("sweep = %+v, %v; want the abandoned area removed", res, err)
	}
	if _, err := s.PutPart(ctx, abandoned, 2, strings.NewReader("late")); !artifact.IsNotFound(err) {
		t.Fatalf("part of the swept upload = %v, want not found", err)
	}
	pw.Close()
	if err := <-partDone; err != nil {
		t.Fatalf("in-flight part: %v", err)
	}
	if _, err := s.PutPart(ctx, live, 3, strings.NewReader("still")); err != nil {
		t.Fatalf("live upload after the sweep: %v", err)
	}
	if _, err := nb.PutPart(ctx, neighbour, 1, strings.NewReader("n")); err != nil {
		t.Fatalf("neighbouring prefix's upload after the sweep: %v", err)
	}
}
