package mlflowclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// ArtifactList is one artifacts/list answer.
type ArtifactList struct {
	RootURI       string     `json:"root_uri"`
	Files         []FileInfo `json:"files"`
	NextPageToken string     `json:"next_page_token"`
}

// ListRunArtifacts is artifacts/list for a run: the children of dir
// ("" is the root) one level deep, paths relative to the run's artifact
// root, following page tokens where the server sends them.
func (c *Client) ListRunArtifacts(ctx context.Context, runID, dir string) (*ArtifactList, error) {
	q := url.Values{"run_id": {runID}, "run_uuid": {runID}}
	if dir != "" {
		q.Set("path", dir)
	}
	return c.listAllPages(ctx, v2+"/artifacts/list", q)
}

// listAllPages calls an artifact listing endpoint, following page tokens
// where the server sends them, and returns every entry.
func (c *Client) listAllPages(ctx context.Context, endpoint string, q url.Values) (*ArtifactList, error) {
	var all ArtifactList
	for {
		var page ArtifactList
		if err := c.get(ctx, endpoint, q, &page); err != nil {
			return nil, err
		}
		all.RootURI = page.RootURI
		all.Files = append(all.Files, page.Files...)
		if page.NextPageToken == "" || len(page.Files) == 0 {
			return &all, nil
		}
		q.Set("page_token", page.NextPageToken)
	}
}

// WalkRunArtifacts calls fn for every file (not directory) under a run's
// artifact root, depth first, with its path relative to the root.
func (c *Client) WalkRunArtifacts(ctx context.Context, runID string, fn func(FileInfo) error) error {
	return walkListed(ctx, "run "+runID, func(ctx context.Context, dir string) (*ArtifactList, error) {
		return c.ListRunArtifacts(ctx, runID, dir)
	}, fn)
}

// walkListed calls fn for every file (not directory) that list shows
// under the root, depth first, with its path relative to the root; what
// names whose artifacts they are, for errors.
func walkListed(ctx context.Context, what string, list func(context.Context, string) (*ArtifactList, error), fn func(FileInfo) error) error {
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > 64 {
			return fmt.Errorf("artifacts of %s: directories nest deeper than 64 under %q", what, dir)
		}
		l, err := list(ctx, dir)
		if err != nil {
			return err
		}
		for _, f := range l.Files {
			if f.Path == "" || f.Path == dir {
				continue
			}
			if f.IsDir {
				if err := walk(f.Path, depth+1); err != nil {
					return err
				}
				continue
			}
			if err := fn(f); err != nil {
				return err
			}
		}
		return nil
	}
	return walk("", 0)
}

// ListProxiedArtifacts is GET /api/2.0/mlflow-artifacts/artifacts?path=:
// the children of dir (a path under the server's artifact root, "" for
// the root), with paths relative to dir (MLflow answers base names).
func (c *Client) ListProxiedArtifacts(ctx context.Context, dir string) ([]FileInfo, error) {
	q := url.Values{}
	if dir != "" {
		q.Set("path", dir)
	}
	var out struct {
		Files []FileInfo `json:"files"`
	}
	if err := c.get(ctx, "/api/2.0/mlflow-artifacts/artifacts", q, &out); err != nil {
		return nil, err
	}
	return out.Files, nil
}

// WalkProxiedArtifacts calls fn for every file under dir of the proxied
// artifact store, with its path relative to dir.
func (c *Client) WalkProxiedArtifacts(ctx context.Context, dir string, fn func(FileInfo) error) error {
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		if depth > 64 {
			return fmt.Errorf("proxied artifacts under %q nest deeper than 64", dir)
		}
		files, err := c.ListProxiedArtifacts(ctx, joinPath(dir, rel))
		if err != nil {
			return err
		}
		for _, f := range files {
			name := path.Base(f.Path)
			if name == "" || name == "." || name == "/" || name == ".." {
				continue
			}
			child := joinPath(rel, name)
			if f.IsDir {
				if err := walk(child, depth+1); err != nil {
					return err
				}
				continue
			}
			f.Path = child
			if err := fn(f); err != nil {
				return err
			}
		}
		return nil
	}
	return walk("", 0)
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return strings.TrimSuffix(a, "/") + "/" + b
}

// escapePath escapes each segment of an artifact path for a URL path.
func escapePath(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// stream sends a GET for a file and returns its body; errors decode
// MLflow's JSON. Retries happen only before the body starts.
func (c *Client) stream(ctx context.Context, endpoint string, q url.Values) (io.ReadCloser, int64, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, endpoint: endpoint, query: q})
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, 0, decodeError(http.MethodGet, endpoint, resp)
	}
	return resp.Body, resp.ContentLength, nil
}

// DownloadProxied streams GET /api/2.0/mlflow-artifacts/artifacts/<p>
// (p under the server's artifact root). It returns the body and its
// length (-1 when the server streams without Content-Length); the caller
// closes it.
func (c *Client) DownloadProxied(ctx context.Context, p string) (io.ReadCloser, int64, error) {
	if err := checkArtifactPath(p); err != nil {
		return nil, 0, err
	}
	return c.stream(ctx, "/api/2.0/mlflow-artifacts/artifacts/"+escapePath(p), nil)
}

// DownloadRunArtifact streams GET /get-artifact?run_uuid=&path= (servers
// without the artifact proxy serve run artifacts there).
func (c *Client) DownloadRunArtifact(ctx context.Context, runID, p string) (io.ReadCloser, int64, error) {
	if err := checkArtifactPath(p); err != nil {
		return nil, 0, err
	}
	return c.stream(ctx, "/get-artifact", url.Values{"run_uuid": {runID}, "run_id": {runID}, "path": {p}})
}

// UploadProxied streams body to PUT /api/2.0/mlflow-artifacts/artifacts/<p>
// (p under the server's artifact root) with the guessed MIME type, as
// MLflow's HttpArtifactRepository.log_artifact does. size is body's
// length (-1: unknown, sent chunked). A body that is an io.Seeker is
// rewound for retries; any other body is sent once, without retries.
func (c *Client) UploadProxied(ctx context.Context, p string, body io.Reader, size int64) error {
	if err := checkArtifactPath(p); err != nil {
		return err
	}
	endpoint := "/api/2.0/mlflow-artifacts/artifacts/" + escapePath(p)
	ctype := mime.TypeByExtension(path.Ext(p))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	r := request{method: http.MethodPut, endpoint: endpoint, size: size, contentType: ctype}
	if s, ok := body.(io.Seeker); ok {
		start, err := s.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("PUT %s: %w", endpoint, err)
		}
		r.body = func() (io.Reader, error) {
			if _, err := s.Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
			return io.NopCloser(body), nil
		}
	} else {
		used := false
		r.once = true
		r.body = func() (io.Reader, error) {
			if used {
				return nil, errors.New("the body was already sent")
			}
			used = true
			return io.NopCloser(body), nil
		}
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(http.MethodPut, endpoint, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return nil
}

// checkArtifactPath refuses paths MLflow's servers refuse (absolute,
// "..", empty), before sending anything.
func checkArtifactPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") {
		return fmt.Errorf("invalid artifact path %q", p)
	}
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return fmt.Errorf("invalid artifact path %q", p)
		}
	}
	return nil
}

// ProxiedPath turns an artifact URI served through the artifact proxy
// (mlflow-artifacts:/x, mlflow-artifacts://host/x, or
// http(s)://host/.../api/2.0/mlflow-artifacts/artifacts/x) into the path
// x under the server's artifact root; ok is false for other URIs.
func ProxiedPath(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", false
	}
	switch u.Scheme {
	case "mlflow-artifacts":
		return strings.Trim(u.Path, "/"), true
	case "http", "https":
		const marker = "/api/2.0/mlflow-artifacts/artifacts"
		if i := strings.Index(u.Path, marker); i >= 0 {
			return strings.Trim(u.Path[i+len(marker):], "/"), true
		}
	}
	return "", false
}
