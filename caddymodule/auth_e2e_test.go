package caddymodule_test

// The security gateway end to end: a real in-process Caddy serving HTTPS
// with certificates from tlsutil/testpki, client_auth verify_if_given, and
// the mlflow auth block. Not parallel: Caddy runs one config per process.

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/logging" // log output file, format json
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil/testpki"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
)

const (
	adminPassword = "admin-password-0123"
	bobPassword   = "bob-password-0123"
	carolPassword = "carol-password-0123"
	jwtSecret     = "an-hmac-secret-of-at-least-32-bytes!!"
	jwtIssuer     = "https://idp.example.com"
	jwtAudience   = "mlflow"
)

// secureEnv is a running secured server and the credentials to call it.
type secureEnv struct {
	srv      *caddytest.Server
	pki      *testpki.PKI
	ecKey    *ecdsa.PrivateKey // signs JWTs with kid k1 (ES256)
	auditLog string
	client   *http.Client // trusts the test CA, presents no certificate
	secrets  []string     // must never appear in logs
}

func startSecure(t *testing.T, defaultPermission string) *secureEnv {
	t.Helper()
	dir := t.TempDir()
	pki, err := testpki.Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MLFLOW_TEST_ADMIN_HASH", string(hash))
	t.Setenv("MLFLOW_TEST_JWT_SECRET", jwtSecret)

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "jwt-pub.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit.log")
	env := &secureEnv{pki: pki, ecKey: ecKey, auditLog: audit}
	clientTLS := pki.ClientTLSConfig(nil)
	env.srv = caddytest.Start(t, caddytest.Options{
		TLS: clientTLS,
		Global: []string{fmt.Sprintf(`log audit {
		output file %q
		format json
		include http.handlers.mlflow.audit
		level INFO
	}`, audit)},
		Site: []string{fmt.Sprintf(`tls %q %q {
		client_auth {
			mode verify_if_given
			trust_pool file %q
		}
	}`, pki.Server.CertFile, pki.Server.KeyFile, pki.CA.CertFile)},
		Directives: []string{"serve_artifacts on", fmt.Sprintf(`auth {
			admin root {env.MLFLOW_TEST_ADMIN_HASH}
			basic
			api_tokens
			jwt {
				hmac_secret {env.MLFLOW_TEST_JWT_SECRET}
				public_key %q ES256 k1
				issuer %s
				audience %s
				username_claims email preferred_username sub
			}
			client_cert {
				username_from cn
				trust_pool file %q
			}
			default_permission %s
		}`, pubFile, jwtIssuer, jwtAudience, pki.CA.CertFile, defaultPermission)},
	})
	env.client = env.srv.Client()
	env.secrets = []string{adminPassword, bobPassword, carolPassword, jwtSecret}
	return env
}

// req sends a request with an optional Authorization header.
func (e *secureEnv) req(t *testing.T, c *http.Client, method, path, auth string, body any) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if c == nil {
		c = e.client
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// must sends a JSON request and fails unless the status is 200.
func (e *secureEnv) must(t *testing.T, method, path, auth string, body any) obj {
	t.Helper()
	resp, data := e.req(t, nil, method, path, auth, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, data)
	}
	var out obj
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return out
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

func bearer(tok string) string { return "Bearer " + tok }

// jwtFor signs claims for sub with method/key/kid; mutate adjusts claims.
func (e *secureEnv) jwtFor(t *testing.T, sub string, mutate func(jwt.MapClaims), method jwt.SigningMethod, key any, kid string) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"sub": sub, "iss": jwtIssuer, "aud": jwtAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if mutate != nil {
		mutate(claims)
	}
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *secureEnv) goodJWT(t *testing.T, sub string) string {
	return e.jwtFor(t, sub, nil, jwt.SigningMethodES256, e.ecKey, "k1")
}

// auditRecords reads the audit log.
func (e *secureEnv) auditRecords(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(e.auditLog)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// waitAudit reads the audit log until every one of wants matches one of
// its records, or 10s pass. A record is written as its request's handler
// returns, so a client can hold the answer before the line is in the
// file. The checks that follow report what is missing.
func (e *secureEnv) waitAudit(t *testing.T, wants ...func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		records := e.auditRecords(t)
		missing := 0
		for _, want := range wants {
			if !slices.ContainsFunc(records, want) {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// auditOf matches an audit record of route with decision and status.
func auditOf(route, decision string, status int) func(map[string]any) bool {
	return func(r map[string]any) bool {
		return r["route"] == route && r["decision"] == decision && r["status"] == float64(status)
	}
}

// fixture is the data the matrix runs against.
type fixture struct {
	expID, expName, runID, model, loggedModel, trace string
	bobToken, revokedToken                           string
}

func setupFixture(t *testing.T, e *secureEnv) fixture {
	t.Helper()
	admin := basic("root", adminPassword)
	var f fixture
	f.expName = "private-exp"
	f.expID = str(t, e.must(t, "POST", "/api/2.0/mlflow/experiments/create", admin, obj{"name": f.expName}), "experiment_id")
	f.runID = str(t, e.must(t, "POST", "/api/2.0/mlflow/runs/create", admin, obj{"experiment_id": f.expID}), "run", "info", "run_id")
	f.model = "private-model"
	e.must(t, "POST", "/api/2.0/mlflow/registered-models/create", admin, obj{"name": f.model})
	e.must(t, "POST", "/api/2.0/mlflow/model-versions/create", admin, obj{"name": f.model, "source": "mlflow-artifacts:/" + f.expID + "/" + f.runID + "/artifacts/model"})
	f.loggedModel = newLoggedModel(t, e, f.expID)
	f.trace = newTrace(t, e, f.expID)

	for _, u := range []struct{ name, pw string }{{"bob", bobPassword}, {"carol", carolPassword}, {"victim", "victim-password-0123"}} {
		e.must(t, "POST", "/api/2.0/mlflow/users/create", admin, obj{"username": u.name, "password": u.pw})
	}
	e.must(t, "POST", "/api/2.0/mlflow/experiments/permissions/create", admin, obj{"experiment_id": f.expID, "username": "bob", "permission": "MANAGE"})
	e.must(t, "POST", "/api/2.0/mlflow/registered-models/permissions/create", admin, obj{"name": f.model, "username": "bob", "permission": "MANAGE"})

	bob := basic("bob", bobPassword)
	f.bobToken = str(t, e.must(t, "POST", "/api/2.0/mlflow/users/tokens/create", bob, obj{"name": "ci"}), "token")
	rev := e.must(t, "POST", "/api/2.0/mlflow/users/tokens/create", bob, obj{"name": "old"})
	f.revokedToken = str(t, rev, "token")
	e.must(t, "POST", "/api/2.0/mlflow/users/tokens/revoke", bob, obj{"id": str(t, rev, "token_info", "id")})
	e.secrets = append(e.secrets, f.bobToken, f.revokedToken)
	return f
}

// newLoggedModel creates a logged model as admin; "" when the server has
// no logged-model routes.
func newLoggedModel(t *testing.T, e *secureEnv, expID string) string {
	t.Helper()
	resp, data := e.req(t, nil, "POST", "/api/2.0/mlflow/logged-models", basic("root", adminPassword), obj{"experiment_id": expID, "name": "lm"})
	if resp.StatusCode != 200 {
		t.Logf("no logged model fixture: %d %.200s", resp.StatusCode, data)
		return ""
	}
	var out obj
	_ = json.Unmarshal(data, &out)
	return str(t, out, "model", "info", "model_id")
}

// newTrace starts a trace as admin; "" when the server has no trace routes.
func newTrace(t *testing.T, e *secureEnv, expID string) string {
	t.Helper()
	resp, data := e.req(t, nil, "POST", "/api/2.0/mlflow/traces", basic("root", adminPassword), obj{"experiment_id": expID, "timestamp_ms": time.Now().UnixMilli()})
	if resp.StatusCode != 200 {
		t.Logf("no trace fixture: %d %.200s", resp.StatusCode, data)
		return ""
	}
	var out obj
	_ = json.Unmarshal(data, &out)
	return str(t, out, "trace_info", "request_id")
}

// credential is one row of the matrix.
type credential struct {
	name string
	auth string
	who  string // "", "carol" (no permission), "bob" (permission), "root" (admin)
}

func credentials(t *testing.T, e *secureEnv, f fixture) []credential {
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	past := func(c jwt.MapClaims) {
		c["iat"] = time.Now().Add(-3 * time.Hour).Unix()
		c["exp"] = time.Now().Add(-2 * time.Hour).Unix()
	}
	wrongAud := func(c jwt.MapClaims) { c["aud"] = "someone-else" }
	wrongIss := func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" }
	none := e.jwtFor(t, "bob", nil, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "")
	return []credential{
		{"no credentials", "", ""},
		{"wrong password", basic("bob", "not-the-password"), ""},
		{"unknown user", basic("mallory", bobPassword), ""},
		{"expired JWT", bearer(e.jwtFor(t, "bob", past, jwt.SigningMethodES256, e.ecKey, "k1")), ""},
		{"JWT alg none", bearer(none), ""},
		{"JWT wrong alg (HS512 with the HS256 secret)", bearer(e.jwtFor(t, "bob", nil, jwt.SigningMethodHS512, []byte(jwtSecret), "")), ""},
		{"JWT wrong aud", bearer(e.jwtFor(t, "bob", wrongAud, jwt.SigningMethodES256, e.ecKey, "k1")), ""},
		{"JWT wrong iss", bearer(e.jwtFor(t, "bob", wrongIss, jwt.SigningMethodES256, e.ecKey, "k1")), ""},
		{"JWT unknown kid", bearer(e.jwtFor(t, "bob", nil, jwt.SigningMethodES256, otherKey, "k2")), ""},
		{"revoked token", bearer(f.revokedToken), ""},
		{"valid user without permission", basic("carol", carolPassword), "carol"},
		{"valid user with permission (Basic)", basic("bob", bobPassword), "bob"},
		{"valid user with permission (API token)", bearer(f.bobToken), "bob"},
		{"valid user with permission (JWT)", bearer(e.goodJWT(t, "bob")), "bob"},
		{"admin", basic("root", adminPassword), "root"},
	}
}

// expectation: 401, 403, or 0 for "allowed" (anything but 401/403).
func expectation(rule authz.Rule, who string, hasResource bool) int {
	if rule.Scope == authz.Open {
		return 0
	}
	if who == "" {
		return http.StatusUnauthorized
	}
	if who == "root" {
		return 0
	}
	switch rule.Scope {
	case authz.Authenticated, authz.Filtered:
		return 0
	case authz.Admin, authz.SelfOrAdmin: // the matrix acts on "victim"
		return http.StatusForbidden
	}
	if !hasResource {
		return 0 // unknown logged model/trace: the handler's 404
	}
	if who == "bob" {
		return 0
	}
	return http.StatusForbidden
}

// requestFor renders a route into a request against the fixture.
func requestFor(r api.Route, f fixture) (path string, body obj) {
	p := r.Pattern
	p = strings.ReplaceAll(p, "{path...}", f.expID+"/"+f.runID+"/artifacts/f.txt")
	p = strings.ReplaceAll(p, "{model_id}", orDefault(f.loggedModel, "m-00000000000000000000000000000000"))
	p = strings.ReplaceAll(p, "{request_id}", orDefault(f.trace, "tr-0"))
	p = strings.ReplaceAll(p, "{trace_id}", orDefault(f.trace, "tr-0"))
	p = strings.ReplaceAll(p, "{assessment_id}", "a-0")
	p = strings.ReplaceAll(p, "{tag_key}", "k")
	q := url.Values{}
	body = obj{
		"experiment_id": f.expID, "experiment_ids": []string{f.expID}, "experiment_name": f.expName,
		"run_id": f.runID, "run_uuid": f.runID, "run_ids": []string{f.runID},
		"name": f.model, "version": "1", "username": "victim", "permission": "READ",
		"is_admin": false, "id": "nope", "request_id": orDefault(f.trace, "tr-0"),
		"key": "k", "value": "v", "metric_key": "m",
		"trace_id": orDefault(f.trace, "tr-0"), "trace_ids": []string{orDefault(f.trace, "tr-0")},
		"trace": obj{"trace_info": obj{"trace_id": "tr-matrix", "request_time": "2025-01-01T00:00:00Z",
			"trace_location": obj{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": obj{"experiment_id": f.expID}}}},
		"locations": []obj{{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": obj{"experiment_id": f.expID}}},
	}
	for _, k := range []string{"experiment_id", "experiment_name", "run_id", "run_uuid", "name", "version", "username", "permission", "request_id", "metric_key", "key", "trace_id"} {
		q.Set(k, fmt.Sprint(body[k]))
	}
	q.Set("path", f.expID+"/"+f.runID+"/artifacts")
	return p + "?" + q.Encode(), body
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// TestAuthorizationMatrix sends every route × credential kind and checks
// 401/403/allowed against the table. A route without a table entry is
// denied even to admins, which fails the admin row.
func TestAuthorizationMatrix(t *testing.T) {
	e := startSecure(t, "NO_PERMISSIONS")
	f := setupFixture(t, e)
	srv, err := api.New(api.Options{ArtifactsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	routes := append(srv.Routes(), authz.ManagementRoutes()...)
	creds := credentials(t, e, f)
	n := 0
	for _, r := range routes {
		rule, ok := authz.Table[r.Name]
		if !ok {
			t.Errorf("route %s %s (%s) has no authorization rule", r.Method, r.Pattern, r.Name)
			continue
		}
		has := true
		rf := f
		switch rule.Scope {
		case authz.LoggedModel:
			// A fresh one per route: an earlier row may have deleted it.
			rf.loggedModel = newLoggedModel(t, e, f.expID)
			has = rf.loggedModel != ""
		case authz.Trace:
			rf.trace = newTrace(t, e, f.expID)
			has = rf.trace != ""
		}
		path, body := requestFor(r, rf)
		var hc *http.Client // e.client
		if rule.Scope == authz.ExperimentHeader {
			// OTLP export names its experiment in a header.
			hc = &http.Client{Transport: withHeader{"X-Mlflow-Experiment-Id", f.expID, e.client.Transport}}
		}
		for _, c := range creds {
			var b any
			if r.Method != http.MethodGet {
				b = body
			}
			resp, data := e.req(t, hc, r.Method, path, c.auth, b)
			n++
			want := expectation(rule, c.who, has)
			got := resp.StatusCode
			switch {
			case want == 0 && (got == 401 || got == 403):
				t.Errorf("%s %s (%s) as %s = %d %.200s, want allowed", r.Method, r.Pattern, r.Name, c.name, got, data)
			case want != 0 && got != want:
				t.Errorf("%s %s (%s) as %s = %d %.200s, want %d", r.Method, r.Pattern, r.Name, c.name, got, data, want)
			}
			if got == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", r.Method, r.Pattern)
			}
			if got == 403 {
				var m obj
				if json.Unmarshal(data, &m) != nil || m["error_code"] != "PERMISSION_DENIED" {
					t.Errorf("%s %s as %s: 403 body %q is not PERMISSION_DENIED JSON", r.Method, r.Pattern, c.name, data)
				}
			}
		}
	}
	t.Logf("%d routes x %d credentials = %d requests", len(routes), len(creds), n)
	assertNoSecrets(t, e)
}

func assertNoSecrets(t *testing.T, e *secureEnv) {
	t.Helper()
	data, err := os.ReadFile(e.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range e.secrets {
		if s != "" && bytes.Contains(data, []byte(s)) {
			t.Errorf("a secret (%d bytes) appears in the audit log", len(s))
		}
	}
}

func TestSearchFilteringAndCreatorManage(t *testing.T) {
	e := startSecure(t, "NO_PERMISSIONS")
	f := setupFixture(t, e)
	carol := basic("carol", carolPassword)
	bob := basic("bob", bobPassword)

	names := func(auth string) []string {
		out := e.must(t, "POST", "/api/2.0/mlflow/experiments/search", auth, obj{"max_results": 10})
		var ns []string
		exps, _ := out["experiments"].([]any)
		for _, x := range exps {
			ns = append(ns, x.(map[string]any)["name"].(string))
		}
		return ns
	}
	if got := names(carol); len(got) != 0 {
		t.Errorf("carol sees %v, want nothing", got)
	}
	if got := names(bob); len(got) != 1 || got[0] != f.expName {
		t.Errorf("bob sees %v, want [%s]", got, f.expName)
	}
	// Carol creates her own experiment: she gets MANAGE and sees it.
	id := str(t, e.must(t, "POST", "/api/2.0/mlflow/experiments/create", carol, obj{"name": "carols"}), "experiment_id")
	if got := names(carol); len(got) != 1 || got[0] != "carols" {
		t.Errorf("carol sees %v, want [carols]", got)
	}
	e.must(t, "POST", "/api/2.0/mlflow/experiments/update", carol, obj{"experiment_id": id, "new_name": "carols2"})
	perm := e.must(t, "GET", "/api/2.0/mlflow/experiments/permissions/get?experiment_id="+id+"&username=carol", carol, nil)
	if p := str(t, perm, "experiment_permission", "permission"); p != "MANAGE" {
		t.Errorf("creator permission = %s", p)
	}
	// Runs: carol's search of the private experiment is silently empty.
	out := e.must(t, "POST", "/api/2.0/mlflow/runs/search", carol, obj{"experiment_ids": []string{f.expID}})
	if len(out) != 0 {
		t.Errorf("carol's run search = %v", out)
	}
	// Registered models are filtered too.
	out = e.must(t, "GET", "/api/2.0/mlflow/registered-models/search", carol, nil)
	if len(out) != 0 {
		t.Errorf("carol's model search = %v", out)
	}
	out = e.must(t, "GET", "/api/2.0/mlflow/registered-models/search", bob, nil)
	if ms, _ := out["registered_models"].([]any); len(ms) != 1 {
		t.Errorf("bob's model search = %v", out)
	}
	// A grant opens the door; the body the gateway read reaches the handler.
	e.must(t, "POST", "/api/2.0/mlflow/experiments/permissions/create", bob, obj{"experiment_id": f.expID, "username": "carol", "permission": "EDIT"})
	e.must(t, "POST", "/api/2.0/mlflow/runs/log-metric", carol, obj{"run_id": f.runID, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0})
	resp, data := e.req(t, nil, "POST", "/api/2.0/mlflow/experiments/delete", carol, obj{"experiment_id": f.expID})
	if resp.StatusCode != 403 {
		t.Errorf("EDIT may delete: %d %s", resp.StatusCode, data)
	}

	// Artifact uploads are streamed past the gateway, not buffered: a
	// file larger than the JSON body limit goes through.
	big := bytes.Repeat([]byte("x"), api.MaxJSONBodySize+1<<20)
	up := "/api/2.0/mlflow-artifacts/artifacts/" + f.expID + "/" + f.runID + "/artifacts/big.bin"
	req, _ := http.NewRequest("PUT", e.srv.URL+up, bytes.NewReader(big))
	req.Header.Set("Authorization", carol)
	r2, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Errorf("large upload with EDIT: %d %s", r2.StatusCode, body)
	}
	req, _ = http.NewRequest("PUT", e.srv.URL+up, strings.NewReader("x"))
	req.Header.Set("Authorization", basic("victim", "victim-password-0123"))
	r3, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != 403 {
		t.Errorf("upload without permission: %d", r3.StatusCode)
	}
}

func TestAuditRecords(t *testing.T) {
	e := startSecure(t, "READ")
	f := setupFixture(t, e)
	e.req(t, nil, "GET", "/api/2.0/mlflow/runs/get?run_id="+f.runID, basic("carol", carolPassword), nil)
	e.req(t, nil, "POST", "/api/2.0/mlflow/runs/delete", basic("carol", carolPassword), obj{"run_id": f.runID})
	e.req(t, nil, "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", basic("carol", "wrong-password-xyz"), nil)
	// Identity headers a client sets are ignored.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/2.0/mlflow/users/current", nil)
	req.Header.Set("X-Mlflow-User", "root")
	req.Header.Set("X-Forwarded-User", "root")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("identity header accepted: %d", resp.StatusCode)
	}

	var allowed, denied, unauth bool
	e.waitAudit(t, auditOf("GetRun", "allowed", 200), auditOf("DeleteRun", "denied", 403), auditOf("GetExperiment", "denied", 401))
	for _, r := range e.auditRecords(t) {
		if r["logger"] != "http.handlers.mlflow.audit" {
			t.Errorf("audit record from logger %v", r["logger"])
		}
		for _, k := range []string{"ts", "user", "client_ip", "method", "path", "route", "decision", "reason", "status"} {
			if _, ok := r[k]; !ok {
				t.Errorf("audit record lacks %s: %v", k, r)
			}
		}
		switch {
		case r["route"] == "GetRun" && r["user"] == "carol" && r["decision"] == "allowed" && r["status"] == 200.0:
			allowed = true
			if !strings.Contains(fmt.Sprint(r["resources"]), "run:"+f.runID) {
				t.Errorf("resources = %v", r["resources"])
			}
			if r["client_ip"] != "127.0.0.1" {
				t.Errorf("client_ip = %v", r["client_ip"])
			}
		case r["route"] == "DeleteRun" && r["user"] == "carol" && r["decision"] == "denied" && r["status"] == 403.0:
			denied = true
		case r["route"] == "GetExperiment" && r["decision"] == "denied" && r["status"] == 401.0:
			unauth = true
		}
	}
	if !allowed || !denied || !unauth {
		t.Errorf("audit records missing: allowed=%v denied=%v unauthenticated=%v", allowed, denied, unauth)
	}
	e.secrets = append(e.secrets, "wrong-password-xyz")
	assertNoSecrets(t, e)
}

// TestTLSClientCertificates does real handshakes with good, expired and
// wrong-CA client certificates, configured as MLflow's client does from
// MLFLOW_TRACKING_SERVER_CERT_PATH / _CLIENT_CERT_PATH / _INSECURE_TLS.
func TestTLSClientCertificates(t *testing.T) {
	e := startSecure(t, "READ")
	// mlflowClient builds the client MLflow's env variables describe.
	mlflowClient := func(serverCertPath, clientCertPath string, insecure bool) *http.Client {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if serverCertPath != "" {
			pem, err := os.ReadFile(serverCertPath)
			if err != nil {
				t.Fatal(err)
			}
			cfg.RootCAs = x509.NewCertPool()
			cfg.RootCAs.AppendCertsFromPEM(pem)
		}
		cfg.InsecureSkipVerify = insecure
		if clientCertPath != "" {
			pair, err := tls.LoadX509KeyPair(clientCertPath, clientCertPath)
			if err != nil {
				t.Fatal(err)
			}
			// Like OpenSSL under requests: present the configured
			// certificate whatever CAs the server names (Go's default
			// would silently send none for a wrong-CA certificate).
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	}
	current := func(c *http.Client, auth string) (int, string) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/2.0/mlflow/users/current", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			return -1, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}

	// A good certificate alone authenticates (CN alice).
	if st, body := current(mlflowClient(e.pki.CA.CertFile, e.pki.Client.BundleFile, false), ""); st != 200 || !strings.Contains(body, `"alice"`) {
		t.Errorf("good client cert: %d %s", st, body)
	}
	// With Basic as well, Basic names the user.
	if st, body := current(mlflowClient(e.pki.CA.CertFile, e.pki.Client.BundleFile, false), basic("root", adminPassword)); st != 200 || !strings.Contains(body, `"root"`) {
		t.Errorf("cert + basic: %d %s", st, body)
	}
	// Expired and wrong-CA certificates fail the handshake.
	for name, c := range map[string]*testpki.Cert{"expired": e.pki.ExpiredClient, "wrong CA": e.pki.WrongCAClient} {
		if st, body := current(mlflowClient(e.pki.CA.CertFile, c.BundleFile, false), basic("root", adminPassword)); st != -1 {
			t.Errorf("%s client cert: %d %s, want a handshake failure", name, st, body)
		}
	}
	// No client certificate: 401 without credentials, 200 with Basic.
	if st, _ := current(mlflowClient(e.pki.CA.CertFile, "", false), ""); st != 401 {
		t.Errorf("no cert, no credentials: %d", st)
	}
	if st, _ := current(mlflowClient("", "", true), basic("root", adminPassword)); st != 200 {
		t.Errorf("insecure TLS + basic: %d", st)
	}
	// Without the CA bundle the server certificate is not trusted.
	if st, _ := current(mlflowClient("", "", false), basic("root", adminPassword)); st != -1 {
		t.Errorf("untrusted server cert accepted: %d", st)
	}
}

// TestAuthConfigRefusals: a trust_pool CA file that is missing, empty or
// not PEM refuses to start, as do unset placeholders and bad hashes.
func TestAuthConfigRefusals(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	notPEM := filepath.Join(dir, "ca.der")
	_ = os.WriteFile(empty, nil, 0o600)
	_ = os.WriteFile(notPEM, []byte{0x30, 0x82, 0x01}, 0o600)
	hash, _ := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	cases := map[string]string{
		"missing trust_pool":   "auth {\n basic\n client_cert {\n trust_pool file " + filepath.Join(dir, "nope.pem") + "\n }\n }",
		"empty trust_pool":     "auth {\n basic\n client_cert {\n trust_pool file " + empty + "\n }\n }",
		"non-PEM trust_pool":   "auth {\n basic\n client_cert {\n trust_pool " + notPEM + "\n }\n }",
		"unset placeholder":    "auth {\n basic\n admin root {env.MLFLOW_TEST_SURELY_UNSET}\n }",
		"not a bcrypt hash":    "auth {\n basic\n admin root plaintext-password\n }",
		"no method":            "auth {\n default_permission READ\n }",
		"bad permission":       "auth {\n basic\n default_permission read\n }",
		"jwt without key":      "auth {\n jwt {\n issuer x\n }\n }",
		"short HMAC secret":    "auth {\n jwt {\n hmac_secret short\n }\n }",
		"unknown cert field":   "auth {\n client_cert {\n username_from serial\n }\n }",
		"unknown subdirective": "auth {\n basic\n password_file x\n }",
	}
	for name, block := range cases {
		if err := srv.TryReload(caddytest.Options{Directives: []string{block}}); err == nil {
			t.Errorf("%s: config accepted", name)
		} else {
			t.Logf("%s: %v", name, firstLine(err.Error()))
		}
	}
	// And a good one loads.
	t.Setenv("MLFLOW_TEST_ADMIN_HASH", string(hash))
	srv.Reload(t, caddytest.Options{Directives: []string{"auth {\n basic\n admin root {env.MLFLOW_TEST_ADMIN_HASH}\n }"}})
	resp, _ := srv.Do(t, "GET", "/api/2.0/mlflow/experiments/search", nil)
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("secured server: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = srv.Do(t, "GET", "/health", nil)
	if resp.StatusCode != 200 {
		t.Errorf("/health: %d", resp.StatusCode)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// TestModelVersionSourceMustBeReadable: a user who may edit a registered
// model cannot register, and so hand out through the model's permissions,
// a run, logged model, proxied artifacts or model version they cannot read;
// nor link another experiment's trace to her run.
func TestModelVersionSourceMustBeReadable(t *testing.T) {
	e := startSecure(t, "NO_PERMISSIONS")
	f := setupFixture(t, e)
	carol := basic("carol", carolPassword)

	e.must(t, "POST", "/api/2.0/mlflow/registered-models/create", carol, obj{"name": "carols-model"})
	own := str(t, e.must(t, "POST", "/api/2.0/mlflow/experiments/create", carol, obj{"name": "carols-exp"}), "experiment_id")
	ownRun := str(t, e.must(t, "POST", "/api/2.0/mlflow/runs/create", carol, obj{"experiment_id": own}), "run", "info", "run_id")

	denied := []obj{
		{"source": "mlflow-artifacts:/" + f.expID + "/" + f.runID + "/artifacts/model", "run_id": f.runID},
		{"source": "runs:/" + f.runID + "/model"},
		{"source": "mlflow-artifacts:/" + f.expID + "/" + f.runID + "/artifacts/model"},
		{"source": "models:/" + f.model + "/1"},
	}
	if f.loggedModel != "" {
		denied = append(denied, obj{"source": "models:/" + f.loggedModel}, obj{"source": "models:/" + f.loggedModel, "model_id": f.loggedModel})
	}
	for _, body := range denied {
		body["name"] = "carols-model"
		resp, data := e.req(t, nil, "POST", "/api/2.0/mlflow/model-versions/create", carol, body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(data), "PERMISSION_DENIED") {
			t.Errorf("register %v: %d %s; want 403 PERMISSION_DENIED", body, resp.StatusCode, data)
		}
	}
	// Her own run registers fine.
	e.must(t, "POST", "/api/2.0/mlflow/model-versions/create", carol, obj{"name": "carols-model",
		"source": "mlflow-artifacts:/" + own + "/" + ownRun + "/artifacts/model", "run_id": ownRun})
	// Nor can she link another experiment's trace to her own run.
	if f.trace != "" {
		resp, data := e.req(t, nil, "POST", "/api/2.0/mlflow/traces/link-to-run", carol, obj{"trace_ids": []string{f.trace}, "run_id": ownRun})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("link another experiment's trace: %d %s; want 403", resp.StatusCode, data)
		}
	}
	// With READ on the experiment, its run may be registered too, and its
	// traces linked.
	bob := basic("bob", bobPassword)
	e.must(t, "POST", "/api/2.0/mlflow/experiments/permissions/create", bob, obj{"experiment_id": f.expID, "username": "carol", "permission": "READ"})
	e.must(t, "POST", "/api/2.0/mlflow/model-versions/create", carol, obj{"name": "carols-model", "source": "runs:/" + f.runID + "/model"})
	if f.trace != "" {
		e.must(t, "POST", "/api/2.0/mlflow/traces/link-to-run", carol, obj{"trace_ids": []string{f.trace}, "run_id": ownRun})
	}
}
