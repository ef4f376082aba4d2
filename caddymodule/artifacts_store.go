package caddymodule

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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
		opts := gcs.Options{Bucket: bucket, Prefix: prefix, Endpoint: h.GCSEndpoint}
		sd := h.SignedURLDownloads
		if sd != nil {
			if opts.GoogleAccessID, opts.PrivateKey, err = sd.credentials(); err != nil {
				return nil, err
			}
		}
		s, err := gcs.New(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("artifacts_destination %s: %w", h.artifactsDir, err)
		}
		if sd == nil {
			return s, nil
		}
		signed, err := artifact.WithSignedDownloads(ctx, s, artifact.SignedDownloads{
			MinSize: sd.MinSize, Expiry: time.Duration(sd.Expiry), Logger: h.logger,
		})
		if err != nil {
			_ = s.Close()
			hint := ""
			if len(opts.PrivateKey) == 0 {
				hint = "; set google_access_id and private_key_file, or run with credentials that can sign (a service-account key in Application Default Credentials, or IAM signBlob permission on the service account)"
			}
			return nil, fmt.Errorf("signed_url_downloads on %s: %w%s", h.artifactsDir, err, hint)
		}
		h.logger.Info("large artifact downloads redirect to signed URLs",
			zap.String("artifacts_destination", h.artifactsDir),
			zap.Int64("min_size", cmp.Or(sd.MinSize, int64(artifact.DefaultSignedMinSize))),
			zap.Duration("expiry", cmp.Or(time.Duration(sd.Expiry), artifact.DefaultSignedExpiry)),
			zap.Bool("private_key_file", len(opts.PrivateKey) > 0))
		return signed, nil
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

// credentials returns the account and key that sign download URLs, with
// placeholders ({env.VAR}) replaced. private_key_file is a service-account
// JSON key file (whose client_email is the default account) or a PEM
// private key (which needs google_access_id). Without a key file the key
// is nil: the storage client's credentials sign.
func (s *SignedURLDownloads) credentials() (accessID string, key []byte, err error) {
	repl := caddy.NewReplacer()
	replace := func(what, v string) (string, error) {
		if !strings.Contains(v, "{") {
			return v, nil
		}
		out, err := repl.ReplaceOrErr(v, true, true)
		if err != nil {
			return "", fmt.Errorf("signed_url_downloads: %s: %w", what, err)
		}
		return out, nil
	}
	if accessID, err = replace("google_access_id", s.GoogleAccessID); err != nil {
		return "", nil, err
	}
	file, err := replace("private_key_file", s.PrivateKeyFile)
	if err != nil || file == "" {
		return accessID, nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("signed_url_downloads: reading private_key_file: %w", err)
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		var sa struct {
			ClientEmail string `json:"client_email"`
			PrivateKey  string `json:"private_key"`
		}
		if err := json.Unmarshal(data, &sa); err != nil {
			return "", nil, fmt.Errorf("signed_url_downloads: private_key_file %s: not a service-account JSON key: %w", file, err)
		}
		if sa.PrivateKey == "" {
			return "", nil, fmt.Errorf("signed_url_downloads: private_key_file %s: the JSON file has no private_key (is it a service-account key?)", file)
		}
		if accessID == "" {
			accessID = sa.ClientEmail
		}
		if accessID == "" {
			return "", nil, fmt.Errorf("signed_url_downloads: private_key_file %s names no client_email; set google_access_id", file)
		}
		return accessID, []byte(sa.PrivateKey), nil
	}
	if blk, _ := pem.Decode(data); blk == nil {
		return "", nil, fmt.Errorf("signed_url_downloads: private_key_file %s is neither a service-account JSON key nor a PEM private key", file)
	}
	if accessID == "" {
		return "", nil, fmt.Errorf("signed_url_downloads: a PEM private_key_file (%s) needs google_access_id, the service account it belongs to", file)
	}
	return accessID, data, nil
}
