package gcs_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// TestStoreSuite runs the shared store tests (multipart and Range
// included) against the GCS store talking to fake-gcs-server over HTTP.
// Each store gets its own prefix in one bucket, and a sibling prefix holds
// an object that must never show up.
func TestStoreSuite(t *testing.T) {
	emu := gcstest.Start(t, "bkt")
	var n atomic.Int64
	artifacttest.RunStoreTests(t, func(t *testing.T) artifact.Store {
		ctx := context.Background()
		prefix := fmt.Sprintf("team/run%d", n.Add(1))
		s, err := gcs.New(ctx, gcs.Options{Bucket: "bkt", Prefix: prefix, Endpoint: emu.URL, ChunkSize: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		// A neighbour sharing the name prefix must stay invisible.
		nb, err := gcs.New(ctx, gcs.Options{Bucket: "bkt", Prefix: prefix + "x", Endpoint: emu.URL})
		if err != nil {
			t.Fatal(err)
		}
		defer nb.Close()
		if err := nb.Put(ctx, "1/r/artifacts/neighbour", strings.NewReader("n")); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestUnprefixedBucket uses the bucket root.
func TestUnprefixedBucket(t *testing.T) {
	emu := gcstest.Start(t, "root-bkt")
	ctx := context.Background()
	s, err := gcs.New(ctx, gcs.Options{Bucket: "root-bkt", Endpoint: emu.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "a/b.txt", strings.NewReader("hi")); err != nil {
		t.Fatal(err)
	}
	files, err := s.List(ctx, "")
	if err != nil || len(files) != 1 || files[0].Path != "a" || !files[0].IsDir {
		t.Fatalf("List root = %+v, %v", files, err)
	}
	o, err := s.Open(ctx, "a/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if info := o.Info(); info.Size != 2 || info.ETag == "" || info.ModTime.IsZero() {
		t.Fatalf("Info = %+v", info)
	}
}

func TestParseURI(t *testing.T) {
	for _, c := range []struct{ in, bucket, prefix string }{
		{"gs://b-1", "b-1", ""},
		{"gs://b-1/", "b-1", ""},
		{"gs://b-1/a/b", "b-1", "a/b"},
		{"gs://b-1/a/b/", "b-1", "a/b"},
	} {
		b, p, err := gcs.ParseURI(c.in)
		if err != nil || b != c.bucket || p != c.prefix {
			t.Errorf("ParseURI(%q) = %q %q %v", c.in, b, p, err)
		}
	}
	for _, bad := range []string{"s3://b/x", "gs://", "gs://B/x", "gs://b/../x", "gs://bb/a//b", "gs://bb/x?y", "gs://bb/%2e%2e/x", "gs://bb/a/.mlflow-upload-mpu"} {
		if _, _, err := gcs.ParseURI(bad); err == nil {
			t.Errorf("ParseURI(%q) accepted", bad)
		}
	}
}
