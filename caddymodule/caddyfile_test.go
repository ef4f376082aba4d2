package caddymodule

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode"      // the encode directive, used beside mlflow below
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/gzip" // its gzip encoder
)

func boolPtr(b bool) *bool { return &b }

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{name: "bare", input: `mlflow`, want: Handler{}},
		{name: "empty block", input: `mlflow {
		}`, want: Handler{}},
		{name: "all", input: `mlflow {
			backend_store_uri bbolt:///var/lib/mlflow.bolt
			artifacts_destination /srv/artifacts
			default_artifact_root s3://bucket/root
			serve_artifacts off
			mlflow_version 3.7.1
			max_upload_size 5GiB
			open_timeout 30s
		}`, want: Handler{
			BackendStoreURI:      "bbolt:///var/lib/mlflow.bolt",
			ArtifactsDestination: "/srv/artifacts",
			DefaultArtifactRoot:  "s3://bucket/root",
			ServeArtifacts:       boolPtr(false),
			MLflowVersion:        "3.7.1",
			MaxUploadSize:        5 << 30,
			OpenTimeout:          caddy.Duration(30 * time.Second),
		}},
		{name: "serve on", input: "mlflow {\n serve_artifacts on\n}", want: Handler{ServeArtifacts: boolPtr(true)}},
		{name: "serve bare", input: "mlflow {\n serve_artifacts\n}", want: Handler{ServeArtifacts: boolPtr(true)}},
		{name: "serve true", input: "mlflow {\n serve_artifacts true\n}", want: Handler{ServeArtifacts: boolPtr(true)}},
		{name: "artifacts_only bare", input: "mlflow {\n artifacts_only\n}", want: Handler{ArtifactsOnly: true}},
		{name: "artifacts_only off", input: "mlflow {\n artifacts_only off\n}", want: Handler{}},
		{name: "size MB", input: "mlflow {\n max_upload_size 500MB\n}", want: Handler{MaxUploadSize: 500_000_000}},
		{name: "size bytes", input: "mlflow {\n max_upload_size 1024\n}", want: Handler{MaxUploadSize: 1024}},
		{name: "quoted path", input: "mlflow {\n backend_store_uri \"/tmp/a b/x.bolt\"\n}", want: Handler{BackendStoreURI: "/tmp/a b/x.bolt"}},

		{name: "postgres", input: `mlflow {
			backend_store_uri postgresql+psycopg2://mlflow:{env.PGPASS}@db:5432/mlflow?sslmode=verify-full
			postgres {
				max_conns 8
				statement_timeout 1m
				connect_timeout 3s
			}
		}`, want: Handler{
			BackendStoreURI: "postgresql+psycopg2://mlflow:{env.PGPASS}@db:5432/mlflow?sslmode=verify-full",
			Postgres:        &PostgresConfig{MaxConns: 8, StatementTimeout: caddy.Duration(time.Minute), ConnectTimeout: caddy.Duration(3 * time.Second)},
		}},
		{name: "postgres empty", input: "mlflow {\n postgres {\n }\n}", want: Handler{Postgres: &PostgresConfig{}}},
		{name: "postgres statement_timeout off", input: "mlflow {\n postgres {\n statement_timeout off\n }\n}", want: Handler{Postgres: &PostgresConfig{StatementTimeout: -1}}},
		{name: "postgres argument", input: "mlflow {\n postgres 8\n}", wantErr: "postgres takes no arguments"},
		{name: "postgres unknown", input: "mlflow {\n postgres {\n pool 8\n }\n}", wantErr: `postgres: unknown setting "pool"`},
		{name: "postgres max_conns zero", input: "mlflow {\n postgres {\n max_conns 0\n }\n}", wantErr: `max_conns "0": want a whole number`},
		{name: "postgres max_conns text", input: "mlflow {\n postgres {\n max_conns 8x\n }\n}", wantErr: `max_conns "8x"`},
		{name: "postgres bad duration", input: "mlflow {\n postgres {\n connect_timeout soon\n }\n}", wantErr: `connect_timeout "soon": want a positive duration`},
		{name: "postgres zero duration", input: "mlflow {\n postgres {\n statement_timeout 0s\n }\n}", wantErr: `statement_timeout "0s"`},
		{name: "postgres duplicate", input: "mlflow {\n postgres {\n max_conns 2\n max_conns 3\n }\n}", wantErr: "max_conns given more than once"},
		{name: "postgres nested", input: "mlflow {\n postgres {\n max_conns 2 {\n x\n }\n }\n}", wantErr: "max_conns takes no block"},

		{name: "otlp", input: `mlflow {
			otlp {
				max_body_size 4MiB
				max_spans 1000
				max_attribute_values 50000
				max_nesting 16
			}
		}`, want: Handler{OTLP: &OTLPConfig{MaxBodySize: 4 << 20, MaxSpans: 1000, MaxAttributeValues: 50000, MaxNesting: 16}}},
		{name: "otlp empty", input: "mlflow {\n otlp {\n }\n}", want: Handler{OTLP: &OTLPConfig{}}},
		{name: "otlp argument", input: "mlflow {\n otlp 5\n}", wantErr: "otlp takes no arguments"},
		{name: "otlp unknown", input: "mlflow {\n otlp {\n max_events 5\n }\n}", wantErr: `otlp: unknown setting "max_events"`},
		{name: "otlp zero spans", input: "mlflow {\n otlp {\n max_spans 0\n }\n}", wantErr: `max_spans "0": want a positive whole number`},
		{name: "otlp negative nesting", input: "mlflow {\n otlp {\n max_nesting -2\n }\n}", wantErr: `max_nesting "-2"`},
		{name: "otlp zero body", input: "mlflow {\n otlp {\n max_body_size 0\n }\n}", wantErr: `max_body_size "0": want a positive size`},
		{name: "otlp bad body", input: "mlflow {\n otlp {\n max_body_size huge\n }\n}", wantErr: `max_body_size "huge"`},
		{name: "otlp absurd body", input: "mlflow {\n otlp {\n max_body_size 2GiB\n }\n}", wantErr: "max_body_size 2147483648 is out of range"},
		{name: "otlp absurd spans", input: "mlflow {\n otlp {\n max_spans 5000000\n }\n}", wantErr: "max_spans 5000000 is out of range"},
		{name: "otlp duplicate", input: "mlflow {\n otlp {\n max_spans 5\n max_spans 6\n }\n}", wantErr: "max_spans given more than once"},

		{name: "argument", input: `mlflow ./x.bolt`, wantErr: "mlflow takes no arguments"},
		{name: "unknown", input: "mlflow {\n backend_store ./x\n}", wantErr: `unknown sub-directive "backend_store"`},
		{name: "missing value", input: "mlflow {\n backend_store_uri\n}", wantErr: "backend_store_uri takes exactly one argument, got 0"},
		{name: "two values", input: "mlflow {\n artifacts_destination a b\n}", wantErr: "artifacts_destination takes exactly one argument, got 2"},
		{name: "bad bool", input: "mlflow {\n serve_artifacts maybe\n}", wantErr: `serve_artifacts "maybe": want on or off`},
		{name: "bool two args", input: "mlflow {\n artifacts_only on off\n}", wantErr: "at most one argument"},
		{name: "bad size", input: "mlflow {\n max_upload_size lots\n}", wantErr: `max_upload_size "lots"`},
		{name: "zero size", input: "mlflow {\n max_upload_size 0\n}", wantErr: "must be a positive size"},
		{name: "bad duration", input: "mlflow {\n open_timeout soon\n}", wantErr: `open_timeout "soon"`},
		{name: "zero duration", input: "mlflow {\n open_timeout 0s\n}", wantErr: "must be positive"},
		{name: "duplicate", input: "mlflow {\n mlflow_version 3.6.0\n mlflow_version 3.7.0\n}", wantErr: "given more than once"},
		{name: "nested block", input: "mlflow {\n mlflow_version 3.6.0 {\n x\n }\n}", wantErr: "takes no block"},
		{name: "empty value", input: "mlflow {\n mlflow_version \"\"\n}", wantErr: "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(h, tt.want) {
				t.Fatalf("got %+v, want %+v", h, tt.want)
			}
		})
	}
}

// adapt runs the Caddyfile adapter and returns the routes of the first
// server of the http app.
func adapt(t *testing.T, input string) []map[string]any {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []map[string]any `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("decode adapted config: %v\n%s", err, out)
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		return srv.Routes
	}
	t.Fatalf("no server in adapted config:\n%s", out)
	return nil
}

// handlerNames lists the "handler" names in the order the adapted routes
// run them, leaving out the subroute wrappers.
func handlerNames(v any) []string {
	var names []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if h, ok := x["handler"].(string); ok && h != "subroute" {
				names = append(names, h)
			}
			for _, k := range []string{"routes", "handle"} {
				if c, ok := x[k]; ok {
					walk(c)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case []map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return names
}

func TestCaddyfileAdapter(t *testing.T) {
	routes := adapt(t, `
http://127.0.0.1:5000 {
	respond /hello "hi"
	mlflow {
		backend_store_uri ./x.bolt
		serve_artifacts off
		max_upload_size 1GiB
		otlp {
			max_body_size 1MiB
			max_spans 500
		}
	}
	encode gzip
}`)
	names := handlerNames(routes)
	// The directive order puts encode first, then mlflow before respond,
	// without a route block.
	want := []string{"encode", "mlflow", "static_response"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("handler order = %v, want %v", names, want)
	}
	raw, _ := json.Marshal(routes)
	for _, s := range []string{`"backend_store_uri":"./x.bolt"`, `"serve_artifacts":false`, `"max_upload_size":1073741824`,
		`"otlp":{"max_body_size":1048576,"max_spans":500}`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("adapted routes lack %s:\n%s", s, raw)
		}
	}
}

func TestCaddyfileAdapterErrors(t *testing.T) {
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("http://127.0.0.1:5000 {\n\tmlflow {\n\t\tbogus on\n\t}\n}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `unknown sub-directive "bogus"`) {
		t.Fatalf("adapt error = %v, want unknown sub-directive", err)
	}
}

func TestJSONConfig(t *testing.T) {
	in := `{
		"backend_store_uri": "bbolt:///data/mlflow.bolt",
		"artifacts_destination": "/data/artifacts",
		"default_artifact_root": "mlflow-artifacts:/",
		"serve_artifacts": false,
		"artifacts_only": false,
		"mlflow_version": "3.7.0",
		"max_upload_size": 1048576,
		"open_timeout": "10s",
		"postgres": {"max_conns": 16, "statement_timeout": "45s", "connect_timeout": 2000000000},
		"otlp": {"max_body_size": 2097152, "max_spans": 100, "max_attribute_values": 1000, "max_nesting": 8}
	}`
	var h Handler
	if err := caddy.StrictUnmarshalJSON([]byte(in), &h); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	want := Handler{
		BackendStoreURI:      "bbolt:///data/mlflow.bolt",
		ArtifactsDestination: "/data/artifacts",
		DefaultArtifactRoot:  "mlflow-artifacts:/",
		ServeArtifacts:       boolPtr(false),
		MLflowVersion:        "3.7.0",
		MaxUploadSize:        1 << 20,
		OpenTimeout:          caddy.Duration(10 * time.Second),
		Postgres:             &PostgresConfig{MaxConns: 16, StatementTimeout: caddy.Duration(45 * time.Second), ConnectTimeout: caddy.Duration(2 * time.Second)},
		OTLP:                 &OTLPConfig{MaxBodySize: 2 << 20, MaxSpans: 100, MaxAttributeValues: 1000, MaxNesting: 8},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %+v, want %+v", h, want)
	}

	// Unknown fields are rejected, as Caddy does when loading a config.
	if err := caddy.StrictUnmarshalJSON([]byte(`{"backend_store":"x"}`), &h); err == nil {
		t.Fatal("unknown field accepted")
	}

	// The zero value marshals to an empty object: every default is implied.
	out, err := json.Marshal(Handler{})
	if err != nil || string(out) != "{}" {
		t.Fatalf("marshal zero value = %s, %v", out, err)
	}

	// The module is registered under its ID.
	mi, err := caddy.GetModule("http.handlers.mlflow")
	if err != nil {
		t.Fatalf("module not registered: %v", err)
	}
	if _, ok := mi.New().(*Handler); !ok {
		t.Fatalf("module New returned %T", mi.New())
	}
}

func TestSignedURLDownloadsCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    *SignedURLDownloads
		wantErr string
	}{
		{name: "bare", input: "signed_url_downloads", want: &SignedURLDownloads{}},
		{name: "on", input: "signed_url_downloads on", want: &SignedURLDownloads{}},
		{name: "off", input: "signed_url_downloads off", want: nil},
		{name: "empty block", input: "signed_url_downloads {\n}", want: &SignedURLDownloads{}},
		{name: "all", input: `signed_url_downloads on {
			min_size 64MiB
			expiry 1h
			google_access_id {env.SA_EMAIL}
			private_key_file /etc/mlflow/sa.json
		}`, want: &SignedURLDownloads{MinSize: 64 << 20, Expiry: caddy.Duration(time.Hour), GoogleAccessID: "{env.SA_EMAIL}", PrivateKeyFile: "/etc/mlflow/sa.json"}},
		{name: "seven days", input: "signed_url_downloads {\n expiry 7d\n}", want: &SignedURLDownloads{Expiry: caddy.Duration(7 * 24 * time.Hour)}},
		{name: "bytes", input: "signed_url_downloads {\n min_size 1\n}", want: &SignedURLDownloads{MinSize: 1}},

		{name: "off with block", input: "signed_url_downloads off {\n min_size 1MiB\n}", wantErr: "signed_url_downloads off takes no block"},
		{name: "bad switch", input: "signed_url_downloads sometimes", wantErr: `signed_url_downloads "sometimes": want on or off`},
		{name: "unknown", input: "signed_url_downloads {\n ttl 5m\n}", wantErr: `unknown setting "ttl"`},
		{name: "duplicate", input: "signed_url_downloads {\n expiry 5m\n expiry 6m\n}", wantErr: "expiry given more than once"},
		{name: "no value", input: "signed_url_downloads {\n min_size\n}", wantErr: "min_size takes exactly one argument, got 0"},
		{name: "two values", input: "signed_url_downloads {\n google_access_id a b\n}", wantErr: "google_access_id takes exactly one argument, got 2"},
		{name: "bad size", input: "signed_url_downloads {\n min_size huge\n}", wantErr: `min_size "huge"`},
		{name: "zero size", input: "signed_url_downloads {\n min_size 0\n}", wantErr: "must be a positive size"},
		{name: "bad duration", input: "signed_url_downloads {\n expiry later\n}", wantErr: `expiry "later"`},
		{name: "over 7 days", input: "signed_url_downloads {\n expiry 169h\n}", wantErr: "between 1s and 7d"},
		{name: "under 1s", input: "signed_url_downloads {\n expiry 500ms\n}", wantErr: "between 1s and 7d"},
		{name: "nested", input: "signed_url_downloads {\n expiry 5m {\n x\n }\n}", wantErr: "expiry takes no block"},
		{name: "twice", input: "signed_url_downloads\n signed_url_downloads off", wantErr: "given more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("mlflow {\n" + tt.input + "\n}"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(h.SignedURLDownloads, tt.want) {
				t.Fatalf("got %+v, want %+v", h.SignedURLDownloads, tt.want)
			}
		})
	}

	// Through the adapter, into the handler's JSON, and back.
	routes := adapt(t, `
http://127.0.0.1:5000 {
	mlflow {
		artifacts_destination gs://bkt/arts
		signed_url_downloads {
			min_size 64MiB
			expiry 15m
			google_access_id sa@p.iam.gserviceaccount.com
			private_key_file /keys/sa.pem
		}
	}
}`)
	raw, _ := json.Marshal(routes)
	want := `"signed_url_downloads":{"expiry":900000000000,"google_access_id":"sa@p.iam.gserviceaccount.com","min_size":67108864,"private_key_file":"/keys/sa.pem"}`
	if !strings.Contains(string(raw), want) {
		t.Fatalf("adapted routes lack %s:\n%s", want, raw)
	}
	var h Handler
	in := `{"artifacts_destination":"gs://bkt/arts","signed_url_downloads":{"min_size":1048576,"expiry":"10m","google_access_id":"a@b","private_key_file":"/k.json"}}`
	if err := caddy.StrictUnmarshalJSON([]byte(in), &h); err != nil {
		t.Fatal(err)
	}
	if got := *h.SignedURLDownloads; got != (SignedURLDownloads{MinSize: 1 << 20, Expiry: caddy.Duration(10 * time.Minute), GoogleAccessID: "a@b", PrivateKeyFile: "/k.json"}) {
		t.Fatalf("JSON = %+v", got)
	}
	if err := caddy.StrictUnmarshalJSON([]byte(`{"signed_url_downloads":{"min_bytes":1}}`), &h); err == nil {
		t.Fatal("unknown signed_url_downloads field accepted")
	}
}
