package restsource

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path"
	"sync"

	"github.com/caddy-mlflow/caddy-mlflow/internal/mlflowclient"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// Artifact trees over the source server. A location the server proxies
// (mlflow-artifacts:/x, or its http(s) form) is read through the
// mlflow-artifacts routes, as MLflow's HttpArtifactRepository does; any
// other location (a path or bucket only the server can reach) through
// the tracking routes that read it on the server's side: artifacts/list
// and get-artifact for runs, the logged-model artifact routes, and
// get-trace-artifact. A server that does not serve the proxy (MLflow's
// --no-serve-artifacts: no route; caddy-mlflow's serve_artifacts off:
// 503) is read through the tracking routes too.

// apiTree is a tree read through one kind of tracking route.
type apiTree struct {
	uri  string
	walk func(ctx context.Context, fn func(mlflowclient.FileInfo) error) error
	open func(ctx context.Context, p string) (io.ReadCloser, int64, error)
}

func (t *apiTree) Location() string { return t.uri }

func (t *apiTree) Walk(ctx context.Context, fn func(mlflowimport.ArtifactFile) error) error {
	return t.walk(ctx, func(f mlflowclient.FileInfo) error {
		return fn(mlflowimport.ArtifactFile{Path: f.Path, Size: int64(f.FileSize)})
	})
}

func (t *apiTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	rc, _, err := t.open(ctx, p)
	return rc, err
}

// proxyTree is a directory of the mlflow-artifacts proxy, with the
// tracking-route tree to fall back to when the proxy is not served.
type proxyTree struct {
	c        *mlflowclient.Client
	uri      string
	root     string
	fallback mlflowimport.ArtifactTree
	mu       sync.Mutex
	useAPI   bool
}

func (t *proxyTree) Location() string { return t.uri }

func (t *proxyTree) viaAPI() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.useAPI
}

// proxyMissing reports whether err says the server does not serve the
// artifact proxy: no such route, or switched off (503 without MLflow's
// error JSON).
func proxyMissing(err error) bool {
	var e *mlflowclient.APIError
	if !errors.As(err, &e) {
		return false
	}
	return mlflowclient.IsEndpointMissing(err) || e.StatusCode == http.StatusServiceUnavailable && e.ErrorCode == ""
}

func (t *proxyTree) Walk(ctx context.Context, fn func(mlflowimport.ArtifactFile) error) error {
	if t.viaAPI() {
		return t.fallback.Walk(ctx, fn)
	}
	seen := false
	err := t.c.WalkProxiedArtifacts(ctx, t.root, func(f mlflowclient.FileInfo) error {
		seen = true
		return fn(mlflowimport.ArtifactFile{Path: f.Path, Size: int64(f.FileSize)})
	})
	switch {
	case err == nil:
		return nil
	case !seen && proxyMissing(err) && t.fallback != nil:
		t.mu.Lock()
		t.useAPI = true
		t.mu.Unlock()
		return t.fallback.Walk(ctx, fn)
	case !seen && mlflowclient.IsNotFound(err) && !mlflowclient.IsEndpointMissing(err):
		return nil // the directory does not exist: no artifacts
	}
	return err
}

func (t *proxyTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	if t.viaAPI() {
		return t.fallback.Open(ctx, p)
	}
	rc, _, err := t.c.DownloadProxied(ctx, path.Join(t.root, p))
	return rc, err
}

// tree is the tree of an artifact location: the proxy's when the
// location is proxied (and ThroughTrackingAPI is off), else api.
func (s *Source) tree(uri string, api *apiTree) mlflowimport.ArtifactTree {
	if root, ok := mlflowclient.ProxiedPath(uri); ok && !s.ThroughTrackingAPI && root != "" {
		return &proxyTree{c: s.c, uri: uri, root: root, fallback: api}
	}
	return api
}

func (s *Source) runTree(runID, uri string) mlflowimport.ArtifactTree {
	return s.tree(uri, &apiTree{uri: uri,
		walk: func(ctx context.Context, fn func(mlflowclient.FileInfo) error) error {
			return s.c.WalkRunArtifacts(ctx, runID, fn)
		},
		open: func(ctx context.Context, p string) (io.ReadCloser, int64, error) {
			return s.c.DownloadRunArtifact(ctx, runID, p)
		}})
}

func (s *Source) loggedModelTree(modelID, uri string) mlflowimport.ArtifactTree {
	return s.tree(uri, &apiTree{uri: uri,
		walk: func(ctx context.Context, fn func(mlflowclient.FileInfo) error) error {
			return s.c.WalkLoggedModelArtifacts(ctx, modelID, fn)
		},
		open: func(ctx context.Context, p string) (io.ReadCloser, int64, error) {
			return s.c.DownloadLoggedModelArtifact(ctx, modelID, p)
		}})
}

// traceTree is a trace's data: the one file traces.json, read through
// get-trace-artifact, whose size is learnt by reading it once (trace
// data is small; the route sends no listing). A trace without data
// (in progress, or spans kept in the server's database) has no files.
func (s *Source) traceTree(traceID, uri string) mlflowimport.ArtifactTree {
	return s.tree(uri, &apiTree{uri: uri,
		walk: func(ctx context.Context, fn func(mlflowclient.FileInfo) error) error {
			rc, _, err := s.c.DownloadTraceData(ctx, traceID)
			if mlflowclient.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return err
			}
			return fn(mlflowclient.FileInfo{Path: tracking.TraceDataFile, FileSize: mlflowclient.Int64(n)})
		},
		open: func(ctx context.Context, p string) (io.ReadCloser, int64, error) {
			if p != tracking.TraceDataFile {
				return nil, 0, errors.New("a trace's data is " + tracking.TraceDataFile + " only")
			}
			return s.c.DownloadTraceData(ctx, traceID)
		}})
}
