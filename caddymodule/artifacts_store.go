package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
)

// resolveGCSDestination checks a gs://bucket/prefix artifacts_destination
// and returns it in canonical form (no trailing slash).
func resolveGCSDestination(dest string) (string, error) {
	bucket, prefix, err := gcs.ParseURI(strings.TrimSpace(dest))
	if err != nil {
		return "", fmt.Errorf("artifacts_destination %q: %w", dest, err)
	}
	if prefix == "" {
		return "gs://" + bucket, nil
	}
	return "gs://" + bucket + "/" + prefix, nil
}

// checkGCSEndpoint validates gcs_endpoint: an http(s) URL with a host, and
// only together with a gs:// artifacts_destination.
func (h *Handler) checkGCSEndpoint() error {
	if h.GCSEndpoint == "" {
		return nil
	}
	if schemeOf(strings.TrimSpace(h.ArtifactsDestination)) != "gs" {
		return fmt.Errorf("gcs_endpoint %q needs a gs:// artifacts_destination", h.GCSEndpoint)
	}
	u, err := url.Parse(h.GCSEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gcs_endpoint %q: want an http(s)://host:port URL", h.GCSEndpoint)
	}
	return nil
}

// openArtifactStore opens the store behind the mlflow-artifacts proxy:
// a GCS bucket for gs:// destinations, a local directory otherwise.
// h.artifactsDir holds the resolved destination.
func (h *Handler) openArtifactStore(ctx context.Context) (artifact.Store, error) {
	if err := h.checkGCSEndpoint(); err != nil {
		return nil, err
	}
	if schemeOf(h.artifactsDir) == "gs" {
		bucket, prefix, err := gcs.ParseURI(h.artifactsDir)
		if err != nil {
			return nil, fmt.Errorf("artifacts_destination: %w", err)
		}
		s, err := gcs.New(ctx, gcs.Options{Bucket: bucket, Prefix: prefix, Endpoint: h.GCSEndpoint})
		if err != nil {
			return nil, fmt.Errorf("artifacts_destination %s: %w", h.artifactsDir, err)
		}
		return s, nil
	}
	local, err := artifact.NewLocal(h.artifactsDir)
	if err != nil {
		return nil, fmt.Errorf("artifacts_destination %s: %w", h.artifactsDir, err)
	}
	return local, nil
}

// closeArtifacts closes the artifact store (the GCS client, or the local
// directory handle). In-flight requests of a config being replaced use
// their own handler's store, so this only affects the old config.
func (h *Handler) closeArtifacts() {
	if c, ok := h.artifacts.(io.Closer); ok {
		_ = c.Close()
	}
	h.artifacts = nil
}
