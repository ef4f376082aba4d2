package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
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
//		backend_store_uri     <path | bbolt:///abs/path | bbolt://rel/path>
//		artifacts_destination <dir | file:///abs/dir | gs://bucket/prefix>
//		gcs_endpoint          <http://host:port>  # GCS emulator, no auth
//		default_artifact_root <uri>
//		serve_artifacts       [on|off]
//		artifacts_only        [on|off]
//		ui                    [on|off]
//		mlflow_version        <version>
//		max_upload_size       <size, e.g. 5GiB>
//		open_timeout          <duration, e.g. 10s>
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
		case "auth":
			a, err := unmarshalAuth(d)
			if err != nil {
				return err
			}
			h.Auth = a
			continue // the block is consumed
		default:
			return d.Errf("mlflow: unknown sub-directive %q (known: backend_store_uri, artifacts_destination, default_artifact_root, serve_artifacts, artifacts_only, mlflow_version, max_upload_size, open_timeout, auth, gcs_endpoint, ui)", name)
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
