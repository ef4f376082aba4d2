package mlflowclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil/testpki"
)

const rootPassword = "root-password-0123456"

// secured is a Caddy serving caddy-mlflow over TLS that requires a client
// certificate from the test CA and authenticates every call (Basic or an
// API token).
type secured struct {
	srv        *caddytest.Server
	pki        *testpki.PKI
	clientPEM  string // the client certificate and its key in one file
	caFile     string
	httpClient *http.Client // trusts the CA, presents the client certificate
}

func startSecured(t *testing.T) *secured {
	t.Helper()
	dir := t.TempDir()
	pki, err := testpki.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(rootPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_ROOT_HASH", string(hash))
	s := &secured{pki: pki, caFile: pki.CA.CertFile}
	s.clientPEM = filepath.Join(dir, "client-combined.pem")
	if err := os.WriteFile(s.clientPEM, append(append([]byte{}, pki.Client.CertPEM...), pki.Client.KeyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	s.srv = caddytest.Start(t, caddytest.Options{
		TLS: pki.ClientTLSConfig(pki.Client),
		Site: []string{fmt.Sprintf(`tls %q %q {
		client_auth {
			mode require_and_verify
			trust_pool file %q
		}
	}`, pki.Server.CertFile, pki.Server.KeyFile, pki.CA.CertFile)},
		Directives: []string{"serve_artifacts on", `auth {
			admin root {env.MLFLOW_TEST_ROOT_HASH}
			basic
			api_tokens
			default_permission NO_PERMISSIONS
		}`},
	})
	s.httpClient = s.srv.Client()
	return s
}

func env(m map[string]string) mlflowclient.LookupFunc {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func status(err error) int {
	var e *mlflowclient.APIError
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// TestClientEnvAgainstCaddy runs the MLflow client variables against a
// real Caddy: TLS verified with MLFLOW_TRACKING_SERVER_CERT_PATH, the
// client certificate from MLFLOW_TRACKING_CLIENT_CERT_PATH (one PEM with
// cert and key), Basic from USERNAME/PASSWORD, Bearer from TOKEN (Basic
// wins when both are set), INSECURE_TLS.
func TestClientEnvAgainstCaddy(t *testing.T) {
	s := startSecured(t)
	ctx := context.Background()
	base := map[string]string{
		mlflowclient.EnvServerCertPath: s.caFile,
		mlflowclient.EnvClientCertPath: s.clientPEM,
	}
	with := func(extra map[string]string) *mlflowclient.Client {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			if v == "-" {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		c, err := mlflowclient.NewFromEnv(s.srv.URL, env(m))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}

	// No credentials: the gateway answers 401 with MLflow's error JSON.
	_, err := with(nil).CreateExperiment(ctx, "nope", "", nil)
	if status(err) != http.StatusUnauthorized {
		t.Fatalf("no credentials: %v", err)
	}
	if strings.Contains(err.Error(), rootPassword) {
		t.Fatal("an error names the password")
	}

	// Basic.
	admin := with(map[string]string{mlflowclient.EnvUsername: "root", mlflowclient.EnvPassword: rootPassword})
	id, err := admin.CreateExperiment(ctx, "env-basic", "", []mlflowclient.Tag{{Key: "k", Value: "v"}})
	if err != nil {
		t.Fatalf("basic: %v", err)
	}
	exp, err := admin.GetExperimentByName(ctx, "env-basic")
	if err != nil || exp.ExperimentID != id || len(exp.Tags) != 1 {
		t.Fatalf("get-by-name: %+v %v", exp, err)
	}
	if _, err := admin.GetExperimentByName(ctx, "missing"); !mlflowclient.IsNotFound(err) {
		t.Fatalf("missing experiment: %v", err)
	}
	// A token made through the API, used through MLFLOW_TRACKING_TOKEN.
	var tok struct {
		Token string `json:"token"`
	}
	if err := admin.Call(ctx, http.MethodPost, "/api/2.0/mlflow/users/tokens/create", nil, map[string]string{"name": "ci"}, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token: %v", err)
	}
	bearer := with(map[string]string{mlflowclient.EnvToken: tok.Token})
	if _, err := bearer.GetExperiment(ctx, id); err != nil {
		t.Fatalf("bearer: %v", err)
	}
	// Basic wins over the token: a wrong password with a good token fails.
	mixed := with(map[string]string{mlflowclient.EnvToken: tok.Token, mlflowclient.EnvUsername: "root", mlflowclient.EnvPassword: "wrong-password-xyz"})
	if _, err := mixed.GetExperiment(ctx, id); status(err) != http.StatusUnauthorized {
		t.Fatalf("basic must win over the token: %v", err)
	}
	// A username without a password is no Basic: the token is used.
	half := with(map[string]string{mlflowclient.EnvToken: tok.Token, mlflowclient.EnvUsername: "root"})
	if _, err := half.GetExperiment(ctx, id); err != nil {
		t.Fatalf("username alone must leave the token: %v", err)
	}

	// Without the CA bundle the server certificate does not verify.
	noCA := with(map[string]string{mlflowclient.EnvServerCertPath: "-", mlflowclient.EnvToken: tok.Token})
	if _, err := noCA.GetExperiment(ctx, id); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified server: %v", err)
	}
	// INSECURE_TLS skips verification.
	insecure := with(map[string]string{mlflowclient.EnvServerCertPath: "-", mlflowclient.EnvInsecureTLS: "true", mlflowclient.EnvToken: tok.Token})
	if _, err := insecure.GetExperiment(ctx, id); err != nil {
		t.Fatalf("insecure: %v", err)
	}
	// Without the client certificate the TLS handshake is refused.
	noCert := with(map[string]string{mlflowclient.EnvClientCertPath: "-", mlflowclient.EnvToken: tok.Token, mlflowclient.EnvMaxRetries: "0"})
	if _, err := noCert.GetExperiment(ctx, id); err == nil || status(err) != 0 {
		t.Fatalf("no client certificate: %v", err)
	}
	// A client certificate file without its key is refused up front.
	if _, err := mlflowclient.NewFromEnv(s.srv.URL, env(map[string]string{mlflowclient.EnvClientCertPath: s.pki.Client.CertFile})); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}

	t.Run("retries", func(t *testing.T) { testRetries(t, s, tok.Token) })
	t.Run("artifacts", func(t *testing.T) { testArtifacts(t, admin, id) })
	t.Run("history", func(t *testing.T) { testHistory(t, admin, id) })
}

// testRetries puts a proxy in front of the Caddy that answers 503 to the
// first calls: the client retries (POST too, as MLflow's Retry with
// allowed_methods=None does) within MLFLOW_HTTP_REQUEST_MAX_RETRIES, and
// gives up past it; a 400 is not retried.
func testRetries(t *testing.T, s *secured, token string) {
	ctx := context.Background()
	target, _ := url.Parse(s.srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: s.pki.ClientTLSConfig(s.pki.Client)}
	var failFirst, calls atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n <= failFirst.Load() {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		r.Host = target.Host
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	c, err := mlflowclient.NewFromEnv(front.URL, env(map[string]string{
		mlflowclient.EnvToken: token, mlflowclient.EnvMaxRetries: "3",
		mlflowclient.EnvBackoffFactor: "0", mlflowclient.EnvBackoffJitter: "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	failFirst.Store(3)
	if _, err := c.CreateExperiment(ctx, "after-retries", "", nil); err != nil {
		t.Fatalf("3 failures with 3 retries: %v", err)
	}
	if calls.Load() != 4 {
		t.Fatalf("calls = %d, want 4", calls.Load())
	}
	calls.Store(0)
	failFirst.Store(4)
	if _, err := c.GetExperimentByName(ctx, "after-retries"); status(err) != http.StatusServiceUnavailable {
		t.Fatalf("4 failures with 3 retries: %v", err)
	}
	if calls.Load() != 4 {
		t.Fatalf("calls = %d, want 4", calls.Load())
	}
	calls.Store(0)
	failFirst.Store(0)
	if _, err := c.CreateExperiment(ctx, "", "", nil); status(err) != http.StatusBadRequest {
		t.Fatalf("bad request: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("a 400 was retried: %d calls", calls.Load())
	}
	// A body that cannot be rewound is sent once.
	calls.Store(0)
	failFirst.Store(1)
	err = c.UploadProxied(ctx, "retry/x.txt", io.MultiReader(strings.NewReader("abc")), 3)
	if status(err) != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Fatalf("one-shot body: %v after %d calls", err, calls.Load())
	}
	// A seekable one is rewound and sent again.
	calls.Store(0)
	failFirst.Store(1)
	if err := c.UploadProxied(ctx, "retry/y.txt", strings.NewReader("abcdef"), 6); err != nil || calls.Load() != 2 {
		t.Fatalf("seekable body: %v after %d calls", err, calls.Load())
	}
	rc, _, err := c.DownloadProxied(ctx, "retry/y.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "abcdef" {
		t.Fatalf("the retried upload stored %q", got)
	}
}

// testArtifacts uploads files through the proxy into a run's artifact
// root and reads them back: artifacts/list, the proxied listing, the
// proxied download and /get-artifact.
func testArtifacts(t *testing.T, c *mlflowclient.Client, expID string) {
	ctx := context.Background()
	run, err := c.CreateRun(ctx, mlflowclient.CreateRun{ExperimentID: expID, RunName: "arts", StartTime: 1000})
	if err != nil {
		t.Fatal(err)
	}
	root, ok := mlflowclient.ProxiedPath(run.Info.ArtifactURI)
	if !ok {
		t.Fatalf("artifact URI %q is not proxied", run.Info.ArtifactURI)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	files := map[string][]byte{"a.txt": []byte("hello"), "dir/sub/b.bin": big, "dir/empty": {}, "dir/ü n.txt": []byte("unicode")}
	for p, data := range files {
		if err := c.UploadProxied(ctx, root+"/"+p, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("upload %s: %v", p, err)
		}
	}
	seen := map[string]int64{}
	if err := c.WalkRunArtifacts(ctx, run.Info.ID(), func(f mlflowclient.FileInfo) error {
		seen[f.Path] = int64(f.FileSize)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seenProxied := map[string]bool{}
	if err := c.WalkProxiedArtifacts(ctx, root, func(f mlflowclient.FileInfo) error {
		seenProxied[f.Path] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		if seen[p] != int64(len(data)) || !seenProxied[p] {
			t.Errorf("%s: listed %d (%v), want %d", p, seen[p], seenProxied[p], len(data))
		}
		for _, get := range []func() (io.ReadCloser, int64, error){
			func() (io.ReadCloser, int64, error) { return c.DownloadProxied(ctx, root+"/"+p) },
			func() (io.ReadCloser, int64, error) { return c.DownloadRunArtifact(ctx, run.Info.ID(), p) },
		} {
			rc, _, err := get()
			if err != nil {
				t.Fatalf("download %s: %v", p, err)
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil || !bytes.Equal(h.Sum(nil), sum(data)) {
				t.Errorf("download %s: hash differs (%v)", p, err)
			}
		}
	}
	if len(seen) != len(files) {
		t.Errorf("listed %v", seen)
	}
	if _, _, err := c.DownloadProxied(ctx, root+"/nope"); !mlflowclient.IsNotFound(err) {
		t.Errorf("missing artifact: %v", err)
	}
	if err := c.UploadProxied(ctx, "../escape", strings.NewReader("x"), 1); err == nil {
		t.Error("a path with .. was sent")
	}
}

func sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// testHistory logs a history longer than one log-batch (with NaN and
// ±Inf) in chunks and reads it back page by page.
func testHistory(t *testing.T, c *mlflowclient.Client, expID string) {
	ctx := context.Background()
	run, err := c.CreateRun(ctx, mlflowclient.CreateRun{ExperimentID: expID, StartTime: 5})
	if err != nil {
		t.Fatal(err)
	}
	var pts []mlflowclient.Metric
	for i := range 2600 {
		v := float64(i) / 3
		switch i % 100 {
		case 7:
			v = math.NaN()
		case 8:
			v = math.Inf(1)
		case 9:
			v = math.Inf(-1)
		}
		pts = append(pts, mlflowclient.Metric{Key: "loss", Value: mlflowclient.Float(v), Timestamp: mlflowclient.Int64(1000 + i), Step: mlflowclient.Int64(i)})
	}
	params := make([]mlflowclient.Param, 150)
	for i := range params {
		params[i] = mlflowclient.Param{Key: fmt.Sprintf("p%03d", i), Value: "v"}
	}
	if err := c.LogBatchChunks(ctx, run.Info.ID(), pts, params, nil); err != nil {
		t.Fatal(err)
	}
	var got []mlflowclient.Metric
	if err := c.EachMetricPage(ctx, run.Info.ID(), "loss", func(p []mlflowclient.Metric) error {
		got = append(got, p...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pts) {
		t.Fatalf("history: %d points, want %d", len(got), len(pts))
	}
	for i := range pts {
		a, b := float64(got[i].Value), float64(pts[i].Value)
		// MLflow's SQL store keeps ±Inf as ±MaxFloat64; caddy-mlflow does too.
		if math.IsInf(b, 0) && math.Abs(a) == math.MaxFloat64 && math.Signbit(a) == math.Signbit(b) {
			a = b
		}
		if got[i].Step != pts[i].Step || got[i].Timestamp != pts[i].Timestamp || !(a == b || math.IsNaN(a) && math.IsNaN(b)) {
			t.Fatalf("point %d: %+v, want %+v", i, got[i], pts[i])
		}
	}
	full, err := c.GetRun(ctx, run.Info.ID())
	if err != nil || len(full.Data.Params) != 150 {
		t.Fatalf("params: %d %v", len(full.Data.Params), err)
	}
	// Logged models and v3 traces: served here, so the searches answer.
	if err := c.EachLoggedModel(ctx, []string{expID}, func(mlflowclient.LoggedModel) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.EachTraceV3(ctx, []string{expID}, func(json.RawMessage) error { return nil }); err != nil {
		t.Fatal(err)
	}
}
