package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// TestSignedURLDownloadsProvisionErrors: signed_url_downloads is refused,
// with an error naming the setting, where it cannot work.
func TestSignedURLDownloadsProvisionErrors(t *testing.T) {
	emu := gcstest.Start(t, "prov-bkt")
	dir := t.TempDir()
	bp := filepath.Join(dir, "m.bolt")
	_, pemKey := gcstest.NewSigningKey(t)
	pemFile := filepath.Join(dir, "key.pem")
	junkFile := filepath.Join(dir, "junk.txt")
	noKeyJSON := filepath.Join(dir, "nokey.json")
	for f, data := range map[string][]byte{pemFile: pemKey, junkFile: []byte("hello"), noKeyJSON: []byte(`{"type":"authorized_user","client_id":"x"}`)} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gs := func(sd SignedURLDownloads) Handler {
		return Handler{BackendStoreURI: bp, ArtifactsDestination: "gs://prov-bkt/a", GCSEndpoint: emu.URL, SignedURLDownloads: &sd}
	}
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"local store", Handler{BackendStoreURI: bp, ArtifactsDestination: filepath.Join(dir, "arts"), SignedURLDownloads: &SignedURLDownloads{}}, "signed_url_downloads needs a gs:// artifacts_destination"},
		{"default local store", Handler{BackendStoreURI: bp, SignedURLDownloads: &SignedURLDownloads{}}, `artifacts in "./mlartifacts" are on local disk`},
		{"proxy off", Handler{BackendStoreURI: bp, ServeArtifacts: boolPtr(false), ArtifactsDestination: "gs://prov-bkt/a", SignedURLDownloads: &SignedURLDownloads{}}, "signed_url_downloads needs serve_artifacts"},
		{"negative size", gs(SignedURLDownloads{MinSize: -1}), "min_size must not be negative"},
		{"long expiry", gs(SignedURLDownloads{Expiry: caddy.Duration(8 * 24 * time.Hour)}), "must be between 1s and 7 days"},
		{"short expiry", gs(SignedURLDownloads{Expiry: caddy.Duration(time.Millisecond)}), "must be between 1s and 7 days"},
		{"pem without account", gs(SignedURLDownloads{PrivateKeyFile: pemFile}), "needs google_access_id"},
		{"missing key file", gs(SignedURLDownloads{GoogleAccessID: gcstest.SigningAccount, PrivateKeyFile: filepath.Join(dir, "nope.pem")}), "reading private_key_file"},
		{"not a key", gs(SignedURLDownloads{GoogleAccessID: gcstest.SigningAccount, PrivateKeyFile: junkFile}), "neither a service-account JSON key nor a PEM private key"},
		{"json without key", gs(SignedURLDownloads{PrivateKeyFile: noKeyJSON}), "has no private_key"},
		{"unset placeholder", gs(SignedURLDownloads{GoogleAccessID: "{env.MLFLOW_TEST_SURELY_UNSET_SA}", PrivateKeyFile: pemFile}), "google_access_id"},
		// The emulator client has no credentials: nothing can sign.
		{"no credentials", gs(SignedURLDownloads{}), "set google_access_id and private_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			err := provision(t, &h)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision error = %v, want one containing %q", err, tt.wantErr)
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "mlflow: ") || !strings.Contains(err.Error(), "signed_url_downloads") {
				t.Errorf("error %q does not name mlflow: ... signed_url_downloads", err)
			}
			if n := dbReferences(bp); n != 0 {
				t.Errorf("a failed Provision left %d references to %s", n, bp)
			}
		})
	}
}

// TestSignedURLDownloadsProvision: a service-account JSON key file (whose
// client_email is the account) and a PEM key with a placeholder account
// both provision, and the store redirects large downloads.
func TestSignedURLDownloadsProvision(t *testing.T) {
	emu := gcstest.Start(t, "prov-bkt")
	dir := t.TempDir()
	key, pemKey := gcstest.NewSigningKey(t)
	jsonKey, err := json.Marshal(map[string]string{"type": "service_account", "client_email": "from-json@p.iam.gserviceaccount.com", "private_key": string(pemKey)})
	if err != nil {
		t.Fatal(err)
	}
	jsonFile, pemFile := filepath.Join(dir, "sa.json"), filepath.Join(dir, "sa.pem")
	if err := os.WriteFile(jsonFile, jsonKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pemFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_SIGNER", gcstest.SigningAccount)
	for name, c := range map[string]struct {
		sd      SignedURLDownloads
		account string
	}{
		"json key":                 {SignedURLDownloads{PrivateKeyFile: jsonFile, MinSize: 4}, "from-json@p.iam.gserviceaccount.com"},
		"pem key with env account": {SignedURLDownloads{PrivateKeyFile: pemFile, GoogleAccessID: "{env.MLFLOW_TEST_SIGNER}", MinSize: 4}, gcstest.SigningAccount},
	} {
		t.Run(name, func(t *testing.T) {
			sd := c.sd
			h := &Handler{ArtifactsOnly: true, ArtifactsDestination: "gs://prov-bkt/" + strings.ReplaceAll(name, " ", "-"), GCSEndpoint: emu.URL, SignedURLDownloads: &sd}
			if err := provision(t, h); err != nil {
				t.Fatal(err)
			}
			defer h.Cleanup()
			if _, ok := h.artifacts.(artifact.Multipart); !ok {
				t.Error("multipart uploads lost behind signed downloads")
			}
			if err := h.artifacts.Put(t.Context(), "f.bin", strings.NewReader("12345")); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if err := artifact.ServeFile(rec, httptest.NewRequest(http.MethodGet, "/x", nil), h.artifacts, "f.bin"); err != nil || rec.Code != http.StatusTemporaryRedirect {
				t.Fatalf("download = %d %v", rec.Code, err)
			}
			v, err := gcstest.VerifyV4(rec.Header().Get("Location"), http.MethodGet, &key.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if v.Account != c.account || v.Expires != artifact.DefaultSignedExpiry && v.Expires != artifact.DefaultSignedExpiry-time.Second {
				t.Fatalf("signed as %+v", v)
			}
		})
	}
}
