package pgauth

import (
	"context"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/authstore"
)

// CountThrottle counts the stored throttle buckets of s.
func CountThrottle(t *testing.T, s authstore.Store) int {
	t.Helper()
	n, err := s.(*Store).throttle.Len(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
