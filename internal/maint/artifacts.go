package maint

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
)

// DirectDeleter deletes artifact URIs outside the proxied store, as
// MLflow's artifact repositories do for `mlflow gc`: gs://bucket/path
// (through the GCS artifact store; gcsEndpoint as for gcs.Options) and
// local file:///path or /path locations (through the local artifact
// store). Anything else is ErrUnresolvable, and so is a location that
// does not end in <run id>/artifacts or has a query or fragment.
func DirectDeleter(gcsEndpoint string) ArtifactDeleter {
	return func(ctx context.Context, uri, runID string) error {
		switch {
		case strings.HasPrefix(uri, "gs://"):
			bucket, p, err := gcs.ParseURI(strings.TrimSuffix(uri, "/"))
			if err != nil {
				return fmt.Errorf("%w: %v", ErrUnresolvable, err)
			}
			if err := runLocation(p, runID); err != nil {
				return fmt.Errorf("%w: %q: %v", ErrUnresolvable, uri, err)
			}
			dir, base := path.Split(p)
			if dir == "" || base == "" {
				return fmt.Errorf("%w: %q is too shallow to delete", ErrUnresolvable, uri)
			}
			st, err := gcs.New(ctx, gcs.Options{Bucket: bucket, Prefix: strings.TrimSuffix(dir, "/"), Endpoint: gcsEndpoint})
			if err != nil {
				return err
			}
			defer st.Close()
			return st.Delete(ctx, base)
		case strings.HasPrefix(uri, "file:"), strings.HasPrefix(uri, "/"):
			p := uri
			if strings.HasPrefix(uri, "file:") {
				u, err := url.Parse(uri)
				if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
					return fmt.Errorf("%w: %q", ErrUnresolvable, uri)
				}
				p = u.Path
			}
			if err := runLocation(filepath.ToSlash(filepath.Clean(p)), runID); err != nil {
				return fmt.Errorf("%w: %q: %v", ErrUnresolvable, uri, err)
			}
			p = filepath.Clean(p)
			parent, base := filepath.Split(p)
			if !filepath.IsAbs(p) || filepath.Dir(filepath.Clean(parent)) == filepath.Clean(parent) || base == "" {
				return fmt.Errorf("%w: %q is too shallow to delete", ErrUnresolvable, uri)
			}
			if _, err := os.Stat(parent); errors.Is(err, os.ErrNotExist) {
				return nil // nothing was ever stored there
			}
			st, err := artifact.NewLocal(parent)
			if err != nil {
				return err
			}
			defer st.Close()
			return st.Delete(ctx, base)
		}
		return fmt.Errorf("%w: %q", ErrUnresolvable, uri)
	}
}
