package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// TestAuthThroughput measures requests/s of GET experiments/get with no
// auth, Basic (cache warm), a JWT and an API token, same process, same run.
// It only runs with MLFLOW_AUTH_BENCH=1 (plain HTTP, to measure the
// gateway rather than TLS).
func TestAuthThroughput(t *testing.T) {
	if os.Getenv("MLFLOW_AUTH_BENCH") == "" {
		t.Skip("set MLFLOW_AUTH_BENCH=1 to measure")
	}
	const secret = "an-hmac-secret-of-at-least-32-bytes!!"
	hash, _ := bcrypt.GenerateFromPassword([]byte("bench-password-0123"), bcrypt.DefaultCost)
	t.Setenv("BENCH_ADMIN_HASH", string(hash))
	dur := 3 * time.Second
	workers := 32
	path := "/api/2.0/mlflow/experiments/get?experiment_id=0"

	run := func(srv *caddytest.Server, auth string) float64 {
		tr := &http.Transport{MaxIdleConnsPerHost: workers}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		var n, bad atomic.Int64
		deadline := time.Now().Add(dur)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					req, _ := http.NewRequest("GET", srv.URL+path, nil)
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					resp, err := c.Do(req)
					if err != nil {
						bad.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						bad.Add(1)
						continue
					}
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		if bad.Load() > 0 {
			t.Errorf("%d failed requests", bad.Load())
		}
		return float64(n.Load()) / dur.Seconds()
	}

	// The audit records go to a file, as in production.
	global := []string{fmt.Sprintf("log audit {\n output file %q\n format json\n include http.handlers.mlflow.audit\n}", filepath.Join(t.TempDir(), "audit.log"))}
	srv := caddytest.Start(t, caddytest.Options{Global: global})
	open := run(srv, "")
	srv.Reload(t, caddytest.Options{Global: global, Directives: []string{fmt.Sprintf(`auth {
		admin bench {env.BENCH_ADMIN_HASH}
		basic
		api_tokens
		jwt {
			hmac_secret %s
		}
	}`, secret)}})
	var tok obj
	req, _ := http.NewRequest("POST", srv.URL+"/api/2.0/mlflow/users/tokens/create", nil)
	req.SetBasicAuth("bench", "bench-password-0123")
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = jsonDecode(resp, &tok)
	basicAuth := req.Header.Get("Authorization")
	jwtTok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bench", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))

	b := run(srv, basicAuth)
	j := run(srv, "Bearer "+jwtTok)
	k := run(srv, "Bearer "+tok["token"].(string))
	t.Logf("requests/s (%d workers, %s each): no auth %.0f, Basic (warm cache) %.0f, JWT HS256 %.0f, API token %.0f", workers, dur, open, b, j, k)
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
