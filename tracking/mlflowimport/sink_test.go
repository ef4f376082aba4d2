package mlflowimport_test

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // the hash GCS keeps
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// failingReader gives n bytes, then an error.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("source broke off")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

// TestGCSSink: objects land under the prefix with their MD5; a write cut
// off (source error, wrong length, cancelled) leaves the object as it
// was, or absent.
func TestGCSSink(t *testing.T) {
	emu := gcstest.Start(t, "bkt")
	ctx := context.Background()
	sink, closeSink, err := mlflowimport.OpenSink(ctx, "gs://bkt/team/arts", emu.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSink()
	if sink.Location() != "gs://bkt/team/arts" {
		t.Fatalf("location %q", sink.Location())
	}
	data := []byte("hello sink")
	f := mlflowimport.ArtifactFile{Path: "a.txt", Size: int64(len(data))}
	if _, _, ok, err := sink.Stat(ctx, "1/r/artifacts/a.txt"); ok || err != nil {
		t.Fatalf("stat before: %v %v", ok, err)
	}
	if n, err := sink.Write(ctx, "1/r/artifacts/a.txt", f, bytes.NewReader(data)); err != nil || n != int64(len(data)) {
		t.Fatalf("write: %d %v", n, err)
	}
	o, err := emu.Server.GetObject("bkt", "team/arts/1/r/artifacts/a.txt")
	if err != nil || !bytes.Equal(o.Content, data) {
		t.Fatalf("object: %v %q", err, o.Content)
	}
	sum := md5.Sum(data) //nolint:gosec // see import
	if size, h, ok, err := sink.Stat(ctx, "1/r/artifacts/a.txt"); !ok || err != nil || size != int64(len(data)) || !bytes.Equal(h, sum[:]) {
		t.Fatalf("stat: %d %x %v %v", size, h, ok, err)
	}

	big := mlflowimport.ArtifactFile{Path: "b.bin", Size: 20 << 20}
	cases := map[string]func() (context.Context, io.Reader){
		"source error": func() (context.Context, io.Reader) { return ctx, &failingReader{n: 17 << 20} },
		"short":        func() (context.Context, io.Reader) { return ctx, strings.NewReader("short") },
		"cancelled": func() (context.Context, io.Reader) {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return c, &failingReader{n: 20 << 20}
		},
	}
	for name, mk := range cases {
		c, r := mk()
		if _, err := sink.Write(c, "1/r/artifacts/b.bin", big, r); err == nil {
			t.Fatalf("%s: write succeeded", name)
		}
		if _, err := emu.Server.GetObject("bkt", "team/arts/1/r/artifacts/b.bin"); err == nil {
			t.Fatalf("%s: a partial object exists", name)
		}
		// Over an existing object: the old one stays.
		if _, err := sink.Write(c, "1/r/artifacts/a.txt", mlflowimport.ArtifactFile{Size: 5}, strings.NewReader("bye")); err == nil {
			t.Fatalf("%s: short overwrite succeeded", name)
		}
		if o, err := emu.Server.GetObject("bkt", "team/arts/1/r/artifacts/a.txt"); err != nil || !bytes.Equal(o.Content, data) {
			t.Fatalf("%s: the old object changed: %v %q", name, err, o.Content)
		}
	}
	if _, err := sink.Write(ctx, "../x", f, bytes.NewReader(data)); err == nil {
		t.Fatal("a path leaving the prefix was written")
	}
}
