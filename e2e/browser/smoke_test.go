package browser

import (
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// TestShellLoads checks the skeleton: the shell, the assets and the
// router render a page with no JavaScript error, and unknown paths show a
// not-found page instead of a blank screen.
func TestShellLoads(t *testing.T) {
	srv := caddytest.Start(t, caddytest.Options{})
	api := newREST(t, srv)
	api.createExperiment("smoke-" + time.Now().Format("150405"))

	p := newPage(t, srv.URL, desktopWidth, desktopHeight)
	p.open("/", "experiments")
	p.open("/experiments/not/a/page/at/all", "notfound")
	p.wantText("main", "Page not found")
}
