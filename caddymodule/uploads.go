package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// UploadsConfig tunes what happens to interrupted uploads and how
// multipart part URLs are signed. The zero value (or no uploads block)
// takes every default.
//
// Caddyfile:
//
//	uploads {
//		stale_temp_age     <duration>  # default 24h
//		multipart_gc_age   <duration>  # default 24h, at least 6h
//		sweep_interval     <duration>  # default 1h
//		multipart_key_file <path>      # default: a random key per process
//	}
type UploadsConfig struct {
	// StaleTempAge: temporary files of single uploads (".mlflow-upload-*",
	// left full-size in run directories by a server killed mid-upload)
	// last written longer ago are removed, at start-up and then every
	// SweepInterval. An upload in flight in this process is never removed;
	// the age protects uploads of another server sharing the directory.
	// Default 24h, at least 1m.
	StaleTempAge caddy.Duration `json:"stale_temp_age,omitempty"`

	// MultipartGCAge: multipart staging areas (local or GCS) that got no
	// part for longer are removed. At least 6h, the validity of part URLs,
	// so an upload whose URLs still work is never dropped. Default 24h.
	MultipartGCAge caddy.Duration `json:"multipart_gc_age,omitempty"`

	// SweepInterval is how often the sweep runs after the one at start-up.
	// Default 1h, at least 1m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// MultipartKeyFile holds the key (at least 32 bytes, surrounding white
	// space ignored) that signs multipart upload ids and part URLs, so
	// that they stay valid across restarts and between servers sharing the
	// file. Empty: a random key per process, and uploads in flight across a
	// restart must start again.
	MultipartKeyFile string `json:"multipart_key_file,omitempty"`
}

// check validates the durations (no I/O). A nil config is valid.
func (u *UploadsConfig) check() error {
	if u == nil {
		return nil
	}
	if u.StaleTempAge != 0 && time.Duration(u.StaleTempAge) < time.Minute {
		return fmt.Errorf("uploads: stale_temp_age %s: must be at least 1m", time.Duration(u.StaleTempAge))
	}
	if u.MultipartGCAge != 0 && time.Duration(u.MultipartGCAge) < artifact.PartURLTTL {
		return fmt.Errorf("uploads: multipart_gc_age %s: must be at least %s, the validity of part URLs",
			time.Duration(u.MultipartGCAge), artifact.PartURLTTL)
	}
	if u.SweepInterval != 0 && time.Duration(u.SweepInterval) < time.Minute {
		return fmt.Errorf("uploads: sweep_interval %s: must be at least 1m", time.Duration(u.SweepInterval))
	}
	return nil
}

// sweepOptions are the options of the sweeper (defaults for a nil config).
func (u *UploadsConfig) sweepOptions() (interval time.Duration, opts artifact.SweepOptions) {
	if u == nil {
		return artifact.DefaultSweepInterval, artifact.SweepOptions{}
	}
	interval = time.Duration(u.SweepInterval)
	if interval == 0 {
		interval = artifact.DefaultSweepInterval
	}
	return interval, artifact.SweepOptions{TempAge: time.Duration(u.StaleTempAge), StagingAge: time.Duration(u.MultipartGCAge)}
}

// signingKey reads multipart_key_file ({env.VAR} placeholders replaced);
// nil without one.
func (u *UploadsConfig) signingKey() ([]byte, error) {
	if u == nil || u.MultipartKeyFile == "" {
		return nil, nil
	}
	file, err := caddy.NewReplacer().ReplaceOrErr(u.MultipartKeyFile, true, true)
	if err != nil {
		return nil, fmt.Errorf("uploads: multipart_key_file: %w", err)
	}
	key, err := artifact.ReadSigningKey(file)
	if err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	return key, nil
}

// unmarshalUploads parses the uploads block.
func unmarshalUploads(d *caddyfile.Dispenser) (*UploadsConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("mlflow: uploads takes no arguments, only a block")
	}
	u := new(UploadsConfig)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("mlflow: uploads: %s given more than once", name)
		}
		seen[name] = true
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		dur := func() (caddy.Duration, error) {
			x, err := caddy.ParseDuration(v)
			if err != nil || x <= 0 {
				return 0, d.Errf("mlflow: uploads: %s %q: want a positive duration such as 24h", name, v)
			}
			return caddy.Duration(x), nil
		}
		switch name {
		case "stale_temp_age":
			u.StaleTempAge, err = dur()
		case "multipart_gc_age":
			u.MultipartGCAge, err = dur()
		case "sweep_interval":
			u.SweepInterval, err = dur()
		case "multipart_key_file":
			u.MultipartKeyFile = v
		default:
			err = d.Errf("mlflow: uploads: unknown setting %q (known: stale_temp_age, multipart_gc_age, sweep_interval, multipart_key_file)", name)
		}
		if err != nil {
			return nil, err
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Errf("mlflow: uploads: %s takes no block", name)
		}
	}
	if err := u.check(); err != nil {
		return nil, d.Errf("mlflow: %v", err)
	}
	return u, nil
}

// startSweeper starts the sweep of interrupted uploads over the artifact
// store; stopSweeper stops it (Cleanup).
func (h *Handler) startSweeper() {
	if h.artifacts == nil {
		return
	}
	interval, opts := h.Uploads.sweepOptions()
	h.stopSweep = artifact.StartSweeper(h.artifacts, interval, opts, h.logger)
}

func (h *Handler) stopSweeper() {
	if h.stopSweep != nil {
		h.stopSweep()
		h.stopSweep = nil
	}
}
