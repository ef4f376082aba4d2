package gcs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

var _ artifact.Sweeper = (*Store)(nil)

// stagingKey names a staging area of s in artifact's in-flight registry.
func (s *Store) stagingKey(upload string) string {
	return "gcs-mpu:" + s.name + "\x00" + s.prefix + "\x00" + upload
}

// Sweep implements artifact.Sweeper: it removes the multipart staging
// areas (".mlflow-upload-mpu/<upload>/" under the prefix) whose newest
// object was written before opts.StagingAge, except uploads in flight in
// this process. Single uploads leave nothing to sweep: an unfinished
// resumable upload never becomes an object (GCS drops the session).
func (s *Store) Sweep(ctx context.Context, opts artifact.SweepOptions) (artifact.SweepResult, error) {
	age := opts.StagingAge
	if age <= 0 {
		age = artifact.DefaultStagingAge
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cutoff := now().Add(-age)
	root := s.prefix + stagingDir + "/"
	newest := map[string]time.Time{}
	it := s.bucket.Objects(ctx, &storage.Query{Prefix: root, Projection: storage.ProjectionNoACL})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return artifact.SweepResult{}, fmt.Errorf("gcs: list staging areas: %w", err)
		}
		up, _, ok := strings.Cut(strings.TrimPrefix(a.Name, root), "/")
		if !ok {
			continue
		}
		t := a.Updated
		if a.Created.After(t) {
			t = a.Created
		}
		if t.After(newest[up]) {
			newest[up] = t
		}
	}
	var res artifact.SweepResult
	var errs []error
	for up, t := range newest {
		if !t.Before(cutoff) || artifact.InFlight(s.stagingKey(up)) {
			continue
		}
		if err := s.deletePrefix(ctx, root+up+"/"); err != nil {
			errs = append(errs, fmt.Errorf("gcs: remove abandoned multipart upload %s: %w", up, err))
			continue
		}
		res.Stagings++
	}
	return res, errors.Join(errs...)
}
