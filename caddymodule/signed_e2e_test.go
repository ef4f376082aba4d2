package caddymodule_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// TestSignedURLDownloadsOverHTTP runs Caddy on a gs:// destination in
// fake-gcs-server with signed_url_downloads on and a small min_size: large
// downloads on every download route answer 307 to a V4 URL on the
// emulator that a plain client follows to the exact bytes; small ones
// stream; with the setting off large ones stream; with auth on, an
// unauthenticated download is 401, not a redirect.
func TestSignedURLDownloadsOverHTTP(t *testing.T) {
	emu := gcstest.Start(t, "signed-bkt")
	keyDir := t.TempDir()
	key, pemKey := gcstest.NewSigningKey(t)
	keyFile := filepath.Join(keyDir, "signer.pem")
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"artifacts_destination gs://signed-bkt/team/arts", "gcs_endpoint " + emu.URL}
	signed := append(base[:len(base):len(base)], fmt.Sprintf(`signed_url_downloads {
			min_size 256KiB
			expiry 10m
			google_access_id %s
			private_key_file %q
		}`, gcstest.SigningAccount, keyFile))
	srv := caddytest.Start(t, caddytest.Options{Directives: signed})

	exp := call(t, srv, http.MethodPost, "/api/2.0/mlflow/experiments/create", obj{"name": "signed"}, 200)
	expID := str(t, exp, "experiment_id")
	run := call(t, srv, http.MethodPost, "/api/2.0/mlflow/runs/create", obj{"experiment_id": expID, "start_time": time.Now().UnixMilli()}, 200)
	runID := str(t, run, "run", "info", "run_id")
	dir := fmt.Sprintf("%s/%s/artifacts", expID, runID)
	proxy := "/api/2.0/mlflow-artifacts/artifacts/" + dir

	big := make([]byte, 1<<20+3)
	small := make([]byte, 256<<10-1)
	_, _ = rand.Read(big)
	_, _ = rand.Read(small)
	for p, data := range map[string][]byte{"/model/weights.bin": big, "/model/small.bin": small} {
		if resp, body := srv.Do(t, http.MethodPut, proxy+p, data); resp.StatusCode != 200 {
			t.Fatalf("PUT %s = %d %s", p, resp.StatusCode, body)
		}
	}
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/registered-models/create", obj{"name": "signed-model"}, 200)
	call(t, srv, http.MethodPost, "/api/2.0/mlflow/model-versions/create", obj{"name": "signed-model", "source": "mlflow-artifacts:/" + dir + "/model"}, 200)

	noFollow := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	plain := &http.Client{Timeout: time.Minute} // follows redirects, sends nothing of ours
	get := func(c *http.Client, method, u string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	emuHost := strings.TrimPrefix(emu.URL, "http://")
	wantObject := "team/arts/" + dir + "/model/weights.bin"
	bigSum := sha256.Sum256(big)

	// Every download route redirects the large artifact.
	for _, route := range []string{
		proxy + "/model/weights.bin",
		"/ajax-api/2.0/mlflow-artifacts/artifacts/" + dir + "/model/weights.bin",
		"/get-artifact?run_uuid=" + runID + "&path=" + url.QueryEscape("model/weights.bin"),
		"/model-versions/get-artifact?name=signed-model&version=1&path=weights.bin",
	} {
		resp, body := get(noFollow, http.MethodGet, srv.URL+route)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Cache-Control") != "no-store" || len(body) != 0 {
			t.Fatalf("GET %s = %d %v (%d bytes)", route, resp.StatusCode, resp.Header, len(body))
		}
		lu, err := url.Parse(loc)
		if err != nil || lu.Scheme != "http" || lu.Host != emuHost {
			t.Fatalf("GET %s: Location %s is not on the emulator %s", route, loc, emuHost)
		}
		v, err := gcstest.VerifyV4(loc, http.MethodGet, &key.PublicKey)
		if err != nil {
			t.Fatalf("GET %s: Location %s: %v", route, loc, err)
		}
		if v.Bucket != "signed-bkt" || v.Object != wantObject || v.Account != gcstest.SigningAccount || v.Expires > 10*time.Minute || v.Expires < 10*time.Minute-2*time.Second {
			t.Fatalf("GET %s: signed for %+v", route, v)
		}
		resp, body = get(plain, http.MethodGet, srv.URL+route)
		if resp.StatusCode != 200 || sha256.Sum256(body) != bigSum || resp.Request.URL.Host != emuHost {
			t.Fatalf("GET %s followed = %d (%d bytes) from %s", route, resp.StatusCode, len(body), resp.Request.URL.Host)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=weights.bin" {
			t.Fatalf("GET %s followed: Content-Disposition %q", route, cd)
		}
	}
	// HEAD redirects to a URL signed for HEAD; Range goes along.
	resp, _ := get(noFollow, http.MethodHead, srv.URL+proxy+"/model/weights.bin")
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("HEAD = %d", resp.StatusCode)
	}
	if _, err := gcstest.VerifyV4(resp.Header.Get("Location"), http.MethodHead, &key.PublicKey); err != nil {
		t.Fatalf("HEAD Location: %v", err)
	}
	resp, body := get(plain, http.MethodGet, srv.URL+proxy+"/model/weights.bin", "Range", "bytes=1048576-1048578")
	if resp.StatusCode != 206 || string(body) != string(big[1<<20:]) {
		t.Fatalf("Range GET followed = %d %q", resp.StatusCode, body)
	}
	// The small artifact streams from the server.
	resp, body = get(noFollow, http.MethodGet, srv.URL+proxy+"/model/small.bin")
	if resp.StatusCode != 200 || sha256.Sum256(body) != sha256.Sum256(small) || resp.Header.Get("Location") != "" {
		t.Fatalf("GET small = %d (%d bytes)", resp.StatusCode, len(body))
	}

	// Off: large artifacts stream again.
	srv.Reload(t, caddytest.Options{Directives: base})
	resp, body = get(noFollow, http.MethodGet, srv.URL+proxy+"/model/weights.bin")
	if resp.StatusCode != 200 || sha256.Sum256(body) != bigSum {
		t.Fatalf("GET big with signed_url_downloads off = %d (%d bytes)", resp.StatusCode, len(body))
	}

	// With auth: the redirect comes only after authentication.
	hash, err := bcrypt.GenerateFromPassword([]byte("signed-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_SIGNED_ADMIN_HASH", string(hash))
	srv.Reload(t, caddytest.Options{Directives: append(signed, `auth {
			admin root {env.MLFLOW_TEST_SIGNED_ADMIN_HASH}
			basic
			default_permission NO_PERMISSIONS
		}`)})
	for _, route := range []string{proxy + "/model/weights.bin", "/get-artifact?run_uuid=" + runID + "&path=model/weights.bin"} {
		resp, _ = get(noFollow, http.MethodGet, srv.URL+route)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Fatalf("unauthenticated GET %s = %d, Location %q", route, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = get(noFollow, http.MethodGet, srv.URL+route, "Authorization", "Basic d3Jvbmc6d3Jvbmc=") // wrong:wrong
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Fatalf("bad credentials GET %s = %d", route, resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+route, nil)
		req.SetBasicAuth("root", "signed-pw")
		r, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusTemporaryRedirect {
			t.Fatalf("admin GET %s = %d", route, r.StatusCode)
		}
		// A client following it gets the bytes (Go's client, like
		// Python's requests, does not send Authorization on to the
		// storage host: the signed URL is the credential).
		req, _ = http.NewRequest(http.MethodGet, srv.URL+route, nil)
		req.SetBasicAuth("root", "signed-pw")
		r, err = plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || sha256.Sum256(got) != bigSum {
			t.Fatalf("admin GET %s followed = %d", route, r.StatusCode)
		}
	}
}
