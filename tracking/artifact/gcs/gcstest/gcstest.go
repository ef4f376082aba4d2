// Package gcstest starts github.com/fsouza/fake-gcs-server in-process on a
// 127.0.0.1 port, so tests talk to it over real HTTP.
package gcstest

import (
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Emulator is a running fake GCS server.
type Emulator struct {
	// URL is the emulator's base URL, http://127.0.0.1:PORT: the
	// gcs_endpoint (or STORAGE_EMULATOR_HOST) for stores under test.
	URL    string
	Server *fakestorage.Server
}

// Start starts an emulator with the given (empty) buckets, stopped when t
// ends. Objects are kept in memory.
func Start(t testing.TB, buckets ...string) *Emulator {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme:     "http",
		Host:       "127.0.0.1",
		PublicHost: "127.0.0.1",
	})
	if err != nil {
		t.Fatalf("gcstest: starting fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	return &Emulator{URL: srv.URL(), Server: srv}
}
