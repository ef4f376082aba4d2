package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/internal/fuzzguard"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// mlflowBlocks returns the text of every mlflow directive (with its block)
// in a Caddyfile: from the word mlflow to its closing brace.
func mlflowBlocks(text string) []string {
	var out []string
	for rest := text; ; {
		i := strings.Index(rest, "mlflow {")
		if i < 0 {
			return out
		}
		rest = rest[i:]
		depth, end := 0, -1
		for j := 0; j < len(rest) && end < 0; j++ {
			switch rest[j] {
			case '{':
				depth++
			case '}':
				depth--
				if depth == 0 {
					end = j + 1
				}
			}
		}
		if end < 0 {
			return out
		}
		out = append(out, rest[:end])
		rest = rest[end:]
	}
}

// caddyfileSeeds are mlflow blocks, valid and not, including hostile
// tokens.
var caddyfileSeeds = []string{
	"mlflow", "mlflow {\n}", "mlflow {", "mlflow }", "mlflow {\n{\n}\n}", "mlflow x", "mlflow {\n\tbogus\n}",
	"mlflow {\n backend_store_uri ./x.bolt\n artifacts_destination /srv/a\n default_artifact_root s3://b/r\n serve_artifacts off\n mlflow_version 3.7.1\n max_upload_size 5GiB\n open_timeout 30s\n ui off\n}",
	"mlflow {\n backend_store_uri bbolt:///var/lib/m.bolt\n}", "mlflow {\n backend_store_uri sqlite:///x.db\n}",
	"mlflow {\n backend_store_uri postgresql+psycopg2://u:{env.PW}@db:5432/m?sslmode=verify-full&sslrootcert=/x.pem\n postgres {\n  max_conns 8\n  statement_timeout off\n  connect_timeout 3s\n }\n}",
	"mlflow {\n backend_store_uri postgres://u@/m?host=/tmp&connect_timeout=x\n postgres\n}", "mlflow {\n postgres {\n max_conns 99999999999\n }\n}",
	"mlflow {\n postgres {\n statement_timeout -1s\n max_conns 1\n max_conns 1\n }\n}", "mlflow {\n backend_store_uri postgresql://%zz@h/db\n}",
	"mlflow {\n backend_store_uri \"\"\n}", "mlflow {\n backend_store_uri \" \"\n}", "mlflow {\n backend_store_uri `a\nb`\n}",
	"mlflow {\n artifacts_destination gs://bucket/prefix\n gcs_endpoint http://127.0.0.1:4443\n signed_url_downloads {\n min_size 64MiB\n expiry 1h\n google_access_id sa@p.iam.gserviceaccount.com\n private_key_file /k.json\n }\n}",
	"mlflow {\n signed_url_downloads off {\n min_size 1\n }\n}", "mlflow {\n signed_url_downloads on\n}", "mlflow {\n signed_url_downloads {\n expiry 8d\n}\n}",
	"mlflow {\n signed_url_downloads {\n min_size 0\n min_size 1\n}\n}", "mlflow {\n artifacts_only\n serve_artifacts off\n}",
	"mlflow {\n max_upload_size 99999999999999999999999EiB\n}", "mlflow {\n max_upload_size -1\n}", "mlflow {\n max_upload_size 1e400\n}",
	"mlflow {\n max_upload_size 8EiB\n}", "mlflow {\n max_upload_size 4.6116860184e18\n}", "mlflow {\n max_upload_size NaN\n}",
	"mlflow {\n open_timeout 9999999999999h\n}", "mlflow {\n open_timeout -1s\n}", "mlflow {\n open_timeout 1e308s\n}",
	"mlflow {\n open_timeout 99999999d\n}", "mlflow {\n open_timeout 1.5d\n}", "mlflow {\n serve_artifacts maybe\n}",
	"mlflow {\n mlflow_version {env.V}\n}", "mlflow {\n backend_store_uri {$HOME}/x\n}", "mlflow {\n backend_store_uri {$UNSET:default}\n}",
	"mlflow {\n backend_store_uri <<EOF\n  a\n  EOF\n}", "mlflow {\n backend_store_uri <<EOF\nx\n}", "mlflow {\n backend_store_uri \"unterminated\n}",
	"mlflow {\n backend_store_uri \x00\n}", "mlflow {\n backend_store_uri a\\\nb\n}", "mlflow {\n backend_store_uri ../../../../etc/passwd\n}",
	"mlflow {\n ui {\n  x\n }\n}", "mlflow {\n mlflow_version 1 {\n}\n}", "mlflow {\n import foo\n}",
	"mlflow {\n auth {\n  admin alice {env.ALICE_HASH}\n  admin bob $2a$10$abcdefghijklmnopqrstuu5VQ1yrWZ5yq2wF1e1Vb8jQ8GgjqS3y.\n  basic\n  api_tokens\n  jwt {\n   hmac_secret {env.JWT_SECRET} HS384\n   public_key /etc/idp.pem RS256 kid1\n   jwks_file /etc/jwks.json\n   jwks_url https://idp/jwks\n   issuer https://idp\n   audience mlflow other\n   username_claims email preferred_username sub\n   groups_claim roles\n   leeway 1m\n  }\n  client_cert {\n   username_from san_email cn\n   fingerprint AB:CD bob\n   trust_pool file /etc/ca.pem\n   require\n  }\n  default_permission NO_PERMISSIONS\n  realm corp\n  basic_cache_ttl 2m\n }\n}",
	"mlflow {\n auth\n}", "mlflow {\n auth {\n }\n}", "mlflow {\n auth x {\n basic\n }\n}", "mlflow {\n auth {\n basic x\n }\n}",
	"mlflow {\n auth {\n basic\n admin a\n }\n}", "mlflow {\n auth {\n basic\n admin a h\n admin a h\n }\n}",
	"mlflow {\n auth {\n basic\n default_permission EVERYTHING\n }\n}", "mlflow {\n auth {\n basic\n default_permission {env.P}\n }\n}",
	"mlflow {\n auth {\n basic\n basic_cache_ttl -1s\n }\n}", "mlflow {\n auth {\n basic\n realm \"a\\\"b\"\n }\n}",
	"mlflow {\n auth {\n jwt\n }\n}", "mlflow {\n auth {\n jwt x\n }\n}", "mlflow {\n auth {\n jwt {\n leeway -5m\n hmac_secret s\n }\n }\n}",
	"mlflow {\n auth {\n jwt {\n hmac_secret s none\n }\n }\n}", "mlflow {\n auth {\n jwt {\n public_key f none\n }\n }\n}",
	"mlflow {\n auth {\n jwt {\n audience " + strings.Repeat("a ", 70) + "\n hmac_secret s\n }\n }\n}",
	"mlflow {\n auth {\n client_cert {\n username_from bogus\n }\n }\n}", "mlflow {\n auth {\n client_cert {\n username_from\n }\n }\n}",
	"mlflow {\n auth {\n client_cert {\n fingerprint a\n }\n }\n}", "mlflow {\n auth {\n client_cert {\n trust_pool file\n }\n }\n}",
	"mlflow {\n auth {\n client_cert {\n require now\n }\n }\n}", "mlflow {\n auth {\n client_cert {\n fingerprint {env.F} {env.U}\n }\n }\n}",
	"mlflow {\n auth {\n basic\n }\n auth {\n basic\n }\n}",
	"mlflow " + strings.Repeat("{\n", 2000) + strings.Repeat("}\n", 2000),
	"mlflow {\n auth " + strings.Repeat("{\n", 500) + strings.Repeat("}\n", 500) + "}",
}

// FuzzCaddyfileMlflow tokenizes Caddyfile text and parses it as the mlflow
// directive (its auth, jwt, client_cert and signed_url_downloads blocks
// included). Random text must be refused with an error, never a panic or a
// hang; text that parses must give a handler whose JSON config loads back
// (strictly, as Caddy loads the adapted config) to the same JSON, and whose
// I/O-free checks and placeholder replacement run without panicking.
func FuzzCaddyfileMlflow(f *testing.F) {
	for _, name := range []string{"../Caddyfile.example", "../Caddyfile.secure.example"} {
		text, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		blocks := mlflowBlocks(string(text))
		if len(blocks) == 0 {
			f.Fatalf("%s has no mlflow block", name)
		}
		for _, b := range blocks {
			f.Add(b)
		}
	}
	for _, s := range caddyfileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		defer fuzzguard.Start("caddyfile", text)()
		tokens, err := caddyfile.Tokenize([]byte(text), "Caddyfile")
		if err != nil {
			return // the lexer refused it; that is a clean error
		}
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			if err.Error() == "" {
				t.Fatal("UnmarshalCaddyfile failed with an empty error message")
			}
			return
		}
		raw, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("parsed handler does not marshal: %v", err)
		}
		back := new(Handler)
		if err := caddy.StrictUnmarshalJSON(raw, back); err != nil {
			t.Fatalf("the JSON of a parsed handler does not load back: %v\n%s", err, raw)
		}
		again, err := json.Marshal(back)
		if err != nil {
			t.Fatalf("reloaded handler does not marshal: %v", err)
		}
		if !bytes.Equal(raw, again) {
			t.Fatalf("JSON round trip changed the config:\n%s\n%s", raw, again)
		}
		_ = h.checkConfig()
		if h.Auth != nil {
			_ = h.Auth.check()
			_ = h.Auth.replaceAll(caddy.NewReplacer())
		}
	})
}
