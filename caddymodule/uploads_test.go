package caddymodule

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// TestUploadsCaddyfile: the uploads block and its JSON form, with the
// limits that keep in-flight uploads safe.
func TestUploadsCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`mlflow {
		uploads {
			stale_temp_age 2h
			multipart_gc_age 12h
			sweep_interval 10m
			multipart_key_file /etc/caddy/mpu.key
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &UploadsConfig{
		StaleTempAge:     caddy.Duration(2 * time.Hour),
		MultipartGCAge:   caddy.Duration(12 * time.Hour),
		SweepInterval:    caddy.Duration(10 * time.Minute),
		MultipartKeyFile: "/etc/caddy/mpu.key",
	}
	if !reflect.DeepEqual(h.Uploads, want) {
		t.Fatalf("got %+v, want %+v", h.Uploads, want)
	}
	var j Handler
	if err := caddy.StrictUnmarshalJSON([]byte(`{"uploads":{"stale_temp_age":"2h","multipart_gc_age":"12h","sweep_interval":"10m","multipart_key_file":"/etc/caddy/mpu.key"}}`), &j); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j.Uploads, want) {
		t.Fatalf("JSON: got %+v, want %+v", j.Uploads, want)
	}
	for in, wantErr := range map[string]string{
		"uploads {\n multipart_gc_age 1h\n}":                   "must be at least 6h0m0s",
		"uploads {\n stale_temp_age 10s\n}":                    "must be at least 1m",
		"uploads {\n sweep_interval 1s\n}":                     "must be at least 1m",
		"uploads {\n stale_temp_age soon\n}":                   "want a positive duration",
		"uploads {\n keyfile x\n}":                             `unknown setting "keyfile"`,
		"uploads {\n sweep_interval 1h 2h\n}":                  "exactly one argument",
		"uploads on":                                           "takes no arguments",
		"uploads {\n sweep_interval 1h\n sweep_interval 2h\n}": "more than once",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("mlflow {\n" + in + "\n}"))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: %v, want %q", in, err, wantErr)
		}
	}
	// JSON goes through the same checks at provisioning.
	bad := Handler{Uploads: &UploadsConfig{MultipartGCAge: caddy.Duration(time.Hour)}}
	if err := bad.checkConfig(); err == nil || !strings.Contains(err.Error(), "multipart_gc_age") {
		t.Fatalf("checkConfig = %v", err)
	}
}
