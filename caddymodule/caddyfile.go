package caddymodule

import (
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("mlflow", parseCaddyfile)
	// Before respond: the mlflow handler terminates every request, so it
	// must come after the request-manipulating and wrapping middleware
	// (header, encode, basic_auth, ...) and among the responding handlers.
	httpcaddyfile.RegisterDirectiveOrder("mlflow", httpcaddyfile.Before, "respond")
}

// parseCaddyfile builds a Handler from the mlflow directive.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	mlflow {
//		backend_store_uri     <path | bbolt:///abs/path | bbolt://rel/path | postgresql://user:pass@host:5432/db>
//		postgres { ... }      # pool settings of a PostgreSQL backend; see PostgresConfig
//		artifacts_destination <dir | file:///abs/dir | gs://bucket/prefix>
//		gcs_endpoint          <http://host:port>  # GCS emulator, no auth
//		signed_url_downloads  [on|off] {          # gs:// only; see unmarshalSignedURLDownloads
//			min_size <size>  expiry <duration>  google_access_id <email>  private_key_file <path>
//		}
//		default_artifact_root <uri>
//		serve_artifacts       [on|off]
//		artifacts_only        [on|off]
//		ui                    [on|off]
//		mlflow_version        <version>
//		max_upload_size       <size, e.g. 5GiB>
//		open_timeout          <duration, e.g. 10s>
//		uploads { ... }       # see UploadsConfig
//		otlp { ... }          # OTLP export bounds; see OTLPConfig
//		auth { ... }          # see unmarshalAuth
//	}
//
// The block is optional; `mlflow` alone runs with the defaults.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("mlflow takes no arguments, got %q; put settings in a block: mlflow { backend_store_uri %s }", d.Val(), d.Val())
	}
	seen := make(map[string]bool)
	for d.NextBlock(0) {
		name := d.Val()
		if seen[name] {
			return d.Errf("mlflow: sub-directive %s given more than once", name)
		}
		seen[name] = true
		switch name {
		case "backend_store_uri":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.BackendStoreURI = v
		case "artifacts_destination":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.ArtifactsDestination = v
		case "gcs_endpoint":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.GCSEndpoint = v
		case "default_artifact_root":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.DefaultArtifactRoot = v
		case "serve_artifacts":
			b, err := onOff(d)
			if err != nil {
				return err
			}
			h.ServeArtifacts = &b
		case "ui":
			b, err := onOff(d)
			if err != nil {
				return err
			}
			h.UI = &b
		case "artifacts_only":
			b, err := onOff(d)
			if err != nil {
				return err
			}
			h.ArtifactsOnly = b
		case "mlflow_version":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			h.MLflowVersion = v
		case "max_upload_size":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil {
				return d.Errf("mlflow: max_upload_size %q: %v (use a size such as 500MB or 5GiB)", v, err)
			}
			if n == 0 || n > uint64(1<<62) {
				return d.Errf("mlflow: max_upload_size %q: must be a positive size", v)
			}
			h.MaxUploadSize = int64(n)
		case "open_timeout":
			v, err := oneArg(d)
			if err != nil {
				return err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("mlflow: open_timeout %q: %v (use a duration such as 10s)", v, err)
			}
			if dur <= 0 {
				return d.Errf("mlflow: open_timeout %q: must be positive", v)
			}
			h.OpenTimeout = caddy.Duration(dur)
		case "signed_url_downloads":
			sd, err := unmarshalSignedURLDownloads(d)
			if err != nil {
				return err
			}
			h.SignedURLDownloads = sd
			continue // the block is consumed
		case "uploads":
			u, err := unmarshalUploads(d) // uploads.go
			if err != nil {
				return err
			}
			h.Uploads = u
			continue // the block is consumed
		case "otlp":
			o, err := unmarshalOTLP(d) // otlp.go
			if err != nil {
				return err
			}
			h.OTLP = o
			continue // the block is consumed
		case "postgres":
			p, err := unmarshalPostgres(d) // postgres.go
			if err != nil {
				return err
			}
			h.Postgres = p
			continue // the block is consumed
		case "auth":
			a, err := unmarshalAuth(d)
			if err != nil {
				return err
			}
			h.Auth = a
			continue // the block is consumed
		default:
			return d.Errf("mlflow: unknown sub-directive %q (known: backend_store_uri, postgres, artifacts_destination, default_artifact_root, serve_artifacts, artifacts_only, mlflow_version, max_upload_size, open_timeout, auth, gcs_endpoint, signed_url_downloads, uploads, otlp, ui)", name)
		}
		if d.NextBlock(d.Nesting()) {
			return d.Errf("mlflow: %s takes no block", name)
		}
	}
	return nil
}

// oneArg reads exactly one argument of the current sub-directive.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.Errf("mlflow: %s takes exactly one argument, got %d", name, len(args))
	}
	if strings.TrimSpace(args[0]) == "" {
		return "", d.Errf("mlflow: %s must not be empty", name)
	}
	return args[0], nil
}

// onOff reads an optional on|off (or true|false) argument; no argument
// means on.
func onOff(d *caddyfile.Dispenser) (bool, error) {
	name := d.Val()
	args := d.RemainingArgs()
	switch len(args) {
	case 0:
		return true, nil
	case 1:
	default:
		return false, d.Errf("mlflow: %s takes at most one argument (on or off), got %d", name, len(args))
	}
	switch strings.ToLower(args[0]) {
	case "on", "yes":
		return true, nil
	case "off", "no":
		return false, nil
	}
	if b, err := strconv.ParseBool(args[0]); err == nil {
		return b, nil
	}
	return false, d.Errf("mlflow: %s %q: want on or off", name, args[0])
}

// unmarshalSignedURLDownloads reads the signed_url_downloads sub-directive:
//
//	signed_url_downloads [on|off] {
//		min_size         <size>      # default 32MiB
//		expiry           <duration>  # default 15m, 1s to 7d
//		google_access_id <email>     # service account the URLs are signed as
//		private_key_file <path>      # its JSON key file, or PEM RSA key
//	}
//
// Bare (or on) with no block turns it on with the defaults, signing with
// the client's credentials; off (without a block) leaves it off. Values
// may be placeholders such as {env.VAR}, replaced at provision.
func unmarshalSignedURLDownloads(d *caddyfile.Dispenser) (*SignedURLDownloads, error) {
	on, err := onOff(d)
	if err != nil {
		return nil, err
	}
	s := new(SignedURLDownloads)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if !on {
			return nil, d.Errf("mlflow: signed_url_downloads off takes no block")
		}
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("mlflow: signed_url_downloads: %s given more than once", name)
		}
		seen[name] = true
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		switch name {
		case "min_size":
			n, err := humanize.ParseBytes(v)
			if err != nil {
				return nil, d.Errf("mlflow: signed_url_downloads: min_size %q: %v (use a size such as 64MiB)", v, err)
			}
			if n == 0 || n > uint64(1<<62) {
				return nil, d.Errf("mlflow: signed_url_downloads: min_size %q: must be a positive size", v)
			}
			s.MinSize = int64(n)
		case "expiry":
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("mlflow: signed_url_downloads: expiry %q: %v (use a duration such as 15m)", v, err)
			}
			if dur < time.Second || dur > artifact.MaxSignedExpiry {
				return nil, d.Errf("mlflow: signed_url_downloads: expiry %q: must be between 1s and 7d, the V4 signed URL limit", v)
			}
			s.Expiry = caddy.Duration(dur)
		case "google_access_id":
			s.GoogleAccessID = v
		case "private_key_file":
			s.PrivateKeyFile = v
		default:
			return nil, d.Errf("mlflow: signed_url_downloads: unknown setting %q (known: min_size, expiry, google_access_id, private_key_file)", name)
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Errf("mlflow: signed_url_downloads: %s takes no block", name)
		}
	}
	if !on {
		return nil, nil
	}
	return s, nil
}
