package mlflowclient

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) LookupFunc {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv("http://h:5000", envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxRetries != 5 || cfg.BackoffFactor != 2 || cfg.BackoffJitter != 1 || cfg.Timeout != 120*time.Second ||
		!cfg.RespectRetryAfter || cfg.InsecureTLS || cfg.NoRedirects {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, err = ConfigFromEnv("", envOf(map[string]string{EnvTrackingURI: "https://x/p", EnvMaxRetries: " 3 ", EnvBackoffFactor: "0",
		EnvBackoffJitter: "0.5", EnvTimeout: "7", EnvRespectRetryAfter: "FALSE", EnvAllowRedirects: "no"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TrackingURI != "https://x/p" || cfg.MaxRetries != 3 || cfg.BackoffFactor != 0 || cfg.BackoffJitter != 0.5 ||
		cfg.Timeout != 7*time.Second || cfg.RespectRetryAfter || !cfg.NoRedirects {
		t.Fatalf("from env: %+v", cfg)
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"insecure and server cert": {EnvInsecureTLS: "true", EnvServerCertPath: "/ca.pem"},
		"bad bool":                 {EnvInsecureTLS: "yes"},
		"empty bool":               {EnvInsecureTLS: ""},
		"bad int":                  {EnvMaxRetries: "2.5"},
		"retries over the limit":   {EnvMaxRetries: "11"},
		"negative retries":         {EnvMaxRetries: "-1"},
		"backoff over the limit":   {EnvBackoffFactor: "121"},
		"bad timeout":              {EnvTimeout: "soon"},
	} {
		if _, err := ConfigFromEnv("http://h", envOf(env)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// MLflow accepts INSECURE_TLS=false together with a CA bundle.
	if _, err := ConfigFromEnv("http://h", envOf(map[string]string{EnvInsecureTLS: "0", EnvServerCertPath: "/ca.pem"})); err != nil {
		t.Errorf("insecure=0 with a CA: %v", err)
	}
	for _, uri := range []string{"", "file:///tmp/mlruns", "databricks", "http://"} {
		if _, err := ConfigFromEnv(uri, envOf(nil)); err == nil {
			t.Errorf("tracking URI %q: no error", uri)
		}
	}
}

func TestCredentialsFile(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".mlflow"), 0o700); err != nil {
		t.Fatal(err)
	}
	ini := "[other]\nmlflow_tracking_username = nope\n[mlflow]\nmlflow_tracking_username = fileuser\nmlflow_tracking_password = filepass\n"
	if err := os.WriteFile(filepath.Join(home, ".mlflow", "credentials"), []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromEnv("http://h", envOf(map[string]string{"HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Username != "fileuser" || cfg.Password != "filepass" {
		t.Fatalf("file credentials: %q %q", cfg.Username, cfg.Password)
	}
	// The environment wins, field by field (read_mlflow_creds).
	cfg, err = ConfigFromEnv("http://h", envOf(map[string]string{"HOME": home, EnvUsername: "envuser"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Username != "envuser" || cfg.Password != "filepass" {
		t.Fatalf("env over file: %q %q", cfg.Username, cfg.Password)
	}
}

func TestAuthPrecedence(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		uri  string
		want string
	}{
		{map[string]string{EnvUsername: "u", EnvPassword: "p", EnvToken: "t"}, "http://h", "Basic dTpw"},
		{map[string]string{EnvUsername: "u", EnvToken: "t"}, "http://h", "Bearer t"},
		{map[string]string{EnvToken: "t"}, "http://h", "Bearer t"},
		{map[string]string{EnvUsername: "u"}, "http://h", ""},
		{map[string]string{EnvToken: "t"}, "http://a:b@h", "Basic YTpi"},
	} {
		c, err := NewFromEnv(tc.uri, envOf(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != tc.want {
			t.Errorf("%v %s: auth %q, want %q", tc.env, tc.uri, c.auth, tc.want)
		}
		if strings.Contains(c.BaseURL(), "b@") {
			t.Errorf("the base URL keeps the password: %s", c.BaseURL())
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{cfg: Config{BackoffFactor: 2}}
	want := []time.Duration{0, 0, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	for n, w := range want {
		if got := c.backoff(n); got != w {
			t.Errorf("backoff(%d) = %s, want %s", n, got, w)
		}
	}
	if got := c.backoff(10); got != 120*time.Second {
		t.Errorf("backoff is not capped: %s", got)
	}
	c.cfg.BackoffJitter = 1
	if got := c.backoff(2); got < 4*time.Second || got > 5*time.Second {
		t.Errorf("jitter out of range: %s", got)
	}
}

func TestChunkBatch(t *testing.T) {
	metrics := make([]Metric, 2500)
	params := make([]Param, 150)
	tags := make([]Tag, 120)
	for i := range metrics {
		metrics[i].Step = Int64(i)
	}
	bs := ChunkBatch(metrics, params, tags)
	var m, p, tg int
	next := Int64(0)
	for _, b := range bs {
		if len(b.Params) > MaxParamsPerBatch || len(b.Tags) > MaxTagsPerBatch || len(b.Metrics) > MaxMetricsPerBatch ||
			len(b.Params)+len(b.Tags)+len(b.Metrics) > MaxEntitiesPerBatch {
			t.Fatalf("batch over the limits: %d/%d/%d", len(b.Metrics), len(b.Params), len(b.Tags))
		}
		for _, x := range b.Metrics {
			if x.Step != next {
				t.Fatalf("metric order lost at %d", next)
			}
			next++
		}
		m, p, tg = m+len(b.Metrics), p+len(b.Params), tg+len(b.Tags)
	}
	if m != 2500 || p != 150 || tg != 120 {
		t.Fatalf("lost entities: %d %d %d", m, p, tg)
	}
	if ChunkBatch(nil, nil, nil) != nil {
		t.Fatal("empty input makes batches")
	}
}

func TestFloatJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
	}{{`"NaN"`, math.NaN()}, {`"Infinity"`, math.Inf(1)}, {`"-Infinity"`, math.Inf(-1)}, {`1.5`, 1.5}, {`"2"`, 2}, {`-0`, 0}} {
		var f Float
		if err := f.UnmarshalJSON([]byte(tc.in)); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if !(float64(f) == tc.want || math.IsNaN(tc.want) && math.IsNaN(float64(f))) {
			t.Errorf("%s: %v", tc.in, f)
		}
		out, err := f.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Float
		if err := back.UnmarshalJSON(out); err != nil || !(back == f || math.IsNaN(float64(f)) && math.IsNaN(float64(back))) {
			t.Errorf("round trip of %s: %s", tc.in, out)
		}
	}
	var f Float
	if f.UnmarshalJSON([]byte(`"abc"`)) == nil {
		t.Error("a non-number string decodes")
	}
}

func TestProxiedPath(t *testing.T) {
	for in, want := range map[string]string{
		"mlflow-artifacts:/1/r/artifacts":                                      "1/r/artifacts",
		"mlflow-artifacts://host:5000/1/r/artifacts/":                          "1/r/artifacts",
		"https://h/pfx/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/model": "1/r/artifacts/model",
		"file:///tmp/x": "",
		"gs://b/x":      "",
	} {
		got, ok := ProxiedPath(in)
		if got != want || ok != (want != "") {
			t.Errorf("ProxiedPath(%q) = %q, %v", in, got, ok)
		}
	}
}
