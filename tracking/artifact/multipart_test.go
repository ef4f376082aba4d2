package artifact_test

import (
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// TestLocalStoreSuite runs the shared store tests, multipart included,
// against the local disk store.
func TestLocalStoreSuite(t *testing.T) {
	artifacttest.ExpiredPartURL = func(u string) string {
		return artifact.ResignPartURL(u, time.Now().Add(-time.Minute))
	}
	t.Cleanup(func() { artifacttest.ExpiredPartURL = nil })
	artifacttest.RunStoreTests(t, func(t *testing.T) artifact.Store {
		s, err := artifact.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
