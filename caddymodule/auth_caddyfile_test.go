package caddymodule

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalAuthBlock(t *testing.T) {
	in := `mlflow {
		auth {
			admin alice {env.ALICE_HASH}
			admin bob $2a$10$abcdefghijklmnopqrstuu5VQ1yrWZ5yq2wF1e1Vb8jQ8GgjqS3y.
			basic
			api_tokens
			jwt {
				hmac_secret {env.JWT_SECRET} HS384
				public_key /etc/idp.pem RS256 kid1
				jwks_file /etc/jwks.json
				jwks_url https://idp/jwks
				issuer https://idp
				audience mlflow other
				username_claims email preferred_username sub
				groups_claim roles
				leeway 1m
			}
			client_cert {
				username_from san_email cn
				fingerprint AB:CD bob
				trust_pool file /etc/ca.pem
				require
			}
			default_permission NO_PERMISSIONS
			realm corp
			basic_cache_ttl 2m
		}
		serve_artifacts off
	}`
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err != nil {
		t.Fatal(err)
	}
	want := &AuthConfig{
		Admins: []AdminConfig{
			{Username: "alice", PasswordHash: "{env.ALICE_HASH}"},
			{Username: "bob", PasswordHash: "$2a$10$abcdefghijklmnopqrstuu5VQ1yrWZ5yq2wF1e1Vb8jQ8GgjqS3y."},
		},
		Basic: true, APITokens: true,
		JWT: &JWTConfig{
			HMACSecret: "{env.JWT_SECRET}", HMACAlg: "HS384",
			PublicKeys:     []PublicKeyConfig{{File: "/etc/idp.pem", Alg: "RS256", KID: "kid1"}},
			JWKSFiles:      []string{"/etc/jwks.json"},
			JWKSURL:        "https://idp/jwks",
			Issuer:         "https://idp",
			Audiences:      []string{"mlflow", "other"},
			UsernameClaims: []string{"email", "preferred_username", "sub"},
			GroupsClaim:    "roles",
			Leeway:         caddy.Duration(time.Minute),
		},
		ClientCert: &ClientCertConfig{
			UsernameFrom: []string{"san_email", "cn"},
			Fingerprints: map[string]string{"AB:CD": "bob"},
			TrustPool:    []string{"/etc/ca.pem"},
			Require:      true,
		},
		DefaultPermission: "NO_PERMISSIONS",
		Realm:             "corp",
		BasicCacheTTL:     caddy.Duration(2 * time.Minute),
	}
	if !reflect.DeepEqual(h.Auth, want) {
		a, _ := json.MarshalIndent(h.Auth, "", " ")
		b, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("got\n%s\nwant\n%s", a, b)
	}
	if h.ServeArtifacts == nil || *h.ServeArtifacts {
		t.Error("directive after the auth block was lost")
	}
	// The JSON form round-trips.
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back Handler
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back.Auth, want) {
		t.Fatalf("JSON round trip: %v\n%s", err, data)
	}
}

func TestUnmarshalAuthErrors(t *testing.T) {
	for in, wantErr := range map[string]string{
		"auth {\n}":                                       "enable at least one",
		"auth {\n basic\n basic\n}":                       "more than once",
		"auth {\n basic\n admin a\n}":                     "username and a bcrypt hash",
		"auth {\n basic\n admin a h\n admin a h\n}":       "declared twice",
		"auth {\n basic\n default_permission WRITE\n}":    "Invalid permission 'WRITE'",
		"auth {\n jwt {\n issuer x\n }\n}":                "needs a key source",
		"auth {\n jwt {\n public_key f\n }\n}":            "wrong number",
		"auth {\n client_cert {\n username_from x\n }\n}": "unknown certificate field",
		"auth {\n client_cert {\n trust_pool file\n }\n}": "at least one CA file",
		"auth x {\n basic\n}":                             "no arguments",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("mlflow {\n" + in + "\n}"))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: err = %v, want %q", in, err, wantErr)
		}
	}
}
