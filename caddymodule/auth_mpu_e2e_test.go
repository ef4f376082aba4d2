package caddymodule_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// withAuth adds an Authorization header to every request of base.
type withAuth struct {
	auth string
	base http.RoundTripper
}

func (a withAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", a.auth)
	return a.base.RoundTrip(r)
}

// TestMultipartPartsWithAuth: with auth on, mpu/create and complete need
// credentials and UPDATE on the path, while the part URLs take PUTs
// without credentials, as MLflow's client sends them (as to a presigned
// cloud URL): their signature authorizes. A PUT to a part URL whose
// signature is wrong is 403, with or without credentials.
func TestMultipartPartsWithAuth(t *testing.T) {
	e := startSecure(t, "READ")
	f := setupFixture(t, e)
	dir := f.expID + "/" + f.runID + "/artifacts"
	admin := &http.Client{Transport: withAuth{basic("root", adminPassword), e.client.Transport}}
	if _, err := artifacttest.Create(e.client, e.srv.URL, dir, "w.bin", 2); err == nil {
		t.Fatal("mpu/create without credentials succeeded")
	}
	cr, err := artifacttest.Create(admin, e.srv.URL, dir, "w.bin", 2)
	if err != nil {
		t.Fatal(err)
	}
	var parts []artifacttest.PartResult
	for i, cred := range cr.Credentials {
		req, _ := http.NewRequest(http.MethodPut, cred.URL, bytes.NewReader([]byte{'a' + byte(i)}))
		resp, err := e.client.Do(req) // no Authorization header
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("part %d without credentials: %d, want 200", cred.PartNumber, resp.StatusCode)
		}
		parts = append(parts, artifacttest.PartResult{PartNumber: cred.PartNumber, ETag: resp.Header.Get("ETag")})
	}
	forged, _ := http.NewRequest(http.MethodPut, cr.Credentials[0].URL+"0", bytes.NewReader([]byte("x")))
	forged.Header.Set("Authorization", basic("root", adminPassword))
	resp, err := e.client.Do(forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("part URL with a wrong signature: %d, want 403", resp.StatusCode)
	}
	if err := artifacttest.Complete(admin, e.srv.URL, dir, "w.bin", cr.UploadID, parts); err != nil {
		t.Fatal(err)
	}
	resp, body := e.req(t, nil, "GET", "/api/2.0/mlflow-artifacts/artifacts/"+dir+"/w.bin", basic("root", adminPassword), nil)
	if resp.StatusCode != 200 || string(body) != "ab" {
		t.Fatalf("assembled file: %d %q", resp.StatusCode, body)
	}
}
