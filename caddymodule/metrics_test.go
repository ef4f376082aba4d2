package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/api"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
)

// TestMetricsRegisterTwice checks that a second mlflow handler of one
// config (the same collectors into the same registry) is not an error,
// and that the registry still gathers consistently (pedantic checks).
func TestMetricsRegisterTwice(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for i := range 2 {
		if err := metrics.register(reg); err != nil {
			t.Fatalf("register #%d: %v", i+1, err)
		}
	}
	metrics.requests.WithLabelValues("Health", "200").Inc()
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
}

// TestMetricsRegisterConflict checks that a foreign collector under one of
// our names is reported, not silently shadowed.
func TestMetricsRegisterConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "caddy_mlflow_requests_total", Help: "someone else's",
	}, []string{"route", "code"}))
	err := metrics.register(reg)
	if err == nil || !strings.Contains(err.Error(), "registering metrics") {
		t.Fatalf("register over a foreign collector: %v, want an error", err)
	}
}

// BenchmarkObserveRequest is the per-request cost of the metrics: naming
// the route, the counter, the histogram and the writer wrapper.
func BenchmarkObserveRequest(b *testing.B) {
	store, err := boltstore.Open(filepath.Join(b.TempDir(), "mlflow.bolt"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	srv, err := api.New(api.Options{Store: store})
	if err != nil {
		b.Fatal(err)
	}
	h := &Handler{routes: authz.NewMatcher(srv.Routes())}
	req := httptest.NewRequest("POST", "/api/2.0/mlflow/runs/log-batch", nil)
	b.ReportAllocs()
	for b.Loop() {
		w, _, done := h.observeRequest(httptest.NewRecorder(), req)
		w.WriteHeader(http.StatusOK)
		done()
	}
}
