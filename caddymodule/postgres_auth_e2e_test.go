package caddymodule_test

import (
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/caddytest"
)

// TestGatewayOnPostgres runs gateway tests with the tracking data and the
// gateway's state (users, password hashes, permissions, sessions, sign-in
// throttle) in PostgreSQL: every caddytest server they start takes the
// PostgreSQL backend.
func TestGatewayOnPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"WhoamiPermissions", TestWhoamiPermissions},
		{"SessionEndsWithPasswordChangeAndUserDeletion", TestSessionEndsWithPasswordChangeAndUserDeletion},
		{"LoginThrottle", TestLoginThrottle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(caddytest.EnvBackend, caddytest.BackendPostgres)
			tc.test(t)
		})
	}
}
