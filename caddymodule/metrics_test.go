package caddymodule

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
