// Package artifactshim is a temporary stand-in for tracking/artifact while
// that package is being written, so that package api compiles and its
// tests run. It is deleted when the real package lands (switch the
// imports in api.go, artifacts.go and conformance_test.go).
package artifactshim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Store is the artifact storage the API needs.
type Store interface {
	Put(ctx context.Context, p string, r io.Reader) error
	Open(ctx context.Context, p string) (io.ReadCloser, error)
	List(ctx context.Context, p string) ([]tracking.FileInfo, error)
	Delete(ctx context.Context, p string) error
}

// Local stores artifacts under a directory.
type Local struct{ root string }

// NewLocal returns a Local rooted at root.
func NewLocal(root string) (*Local, error) { return &Local{root}, os.MkdirAll(root, 0o755) }

func (l *Local) abs(p string) string { return filepath.Join(l.root, filepath.FromSlash(p)) }

func (l *Local) Put(ctx context.Context, p string, r io.Reader) error {
	fp := l.abs(p)
	if fi, err := os.Stat(fp); err == nil && fi.IsDir() {
		fp = filepath.Join(fp, filepath.Base(fp))
	}
	if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
		return err
	}
	f, err := os.Create(fp)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, r)
	return err
}

func (l *Local) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	fp := l.abs(p)
	fi, err := os.Stat(fp)
	if err != nil || fi.IsDir() {
		return nil, &tracking.Error{Code: tracking.ResourceDoesNotExist, Message: "No such artifact: '" + p + "'"}
	}
	return os.Open(fp)
}

func (l *Local) List(ctx context.Context, p string) ([]tracking.FileInfo, error) {
	ents, err := os.ReadDir(l.abs(p))
	if err != nil {
		return nil, nil
	}
	var out []tracking.FileInfo
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		size := fi.Size()
		if e.IsDir() {
			size = 0
		}
		out = append(out, tracking.FileInfo{Path: path.Join(p, e.Name()), IsDir: e.IsDir(), FileSize: size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (l *Local) Delete(ctx context.Context, p string) error {
	err := os.RemoveAll(l.abs(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// CleanPath validates a relative artifact path.
func CleanPath(raw string) (string, error) {
	p := raw
	for i := 0; i < 10; i++ {
		u, err := url.PathUnescape(p)
		if err != nil || u == p {
			break
		}
		p = u
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", &tracking.Error{Code: tracking.InvalidParameterValue, Message: "Invalid path"}
		}
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "#") {
		return "", &tracking.Error{Code: tracking.InvalidParameterValue, Message: "Invalid path"}
	}
	c := path.Clean(p)
	if c == "." {
		c = ""
	}
	return c, nil
}

// URIPath maps mlflow-artifacts:/<p> to <p>.
func URIPath(uri string) (string, bool) {
	p, ok := strings.CutPrefix(uri, "mlflow-artifacts:")
	if !ok {
		return "", false
	}
	if strings.HasPrefix(p, "//") {
		p = p[2:]
		if i := strings.IndexByte(p, '/'); i >= 0 {
			p = p[i:]
		} else {
			p = ""
		}
	}
	return strings.Trim(p, "/"), true
}

// HandlerOptions configure NewHandler.
type HandlerOptions struct{ MaxUploadSize int64 }

var textExt = map[string]bool{"txt": true, "log": true, "err": true, "cfg": true, "conf": true, "cnf": true, "cf": true,
	"ini": true, "properties": true, "prop": true, "hocon": true, "toml": true, "yaml": true, "yml": true, "xml": true,
	"json": true, "js": true, "py": true, "py3": true, "csv": true, "tsv": true, "md": true, "rst": true, "MLmodel": true, "mlproject": true}

// ContentType guesses a download's media type as MLflow does.
func ContentType(name string) string {
	base := path.Base(name)
	ext := strings.TrimPrefix(path.Ext(base), ".")
	if ext == "" {
		ext = base
	}
	if textExt[ext] {
		return "text/plain"
	}
	if t := mime.TypeByExtension(path.Ext(base)); t != "" {
		t, _, _ = strings.Cut(t, ";")
		return t
	}
	return "application/octet-stream"
}

func writeErr(w http.ResponseWriter, err error) {
	te, ok := tracking.AsError(err)
	if !ok {
		te = &tracking.Error{Code: tracking.InternalError, Message: "internal error"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(te.Code.HTTPStatus())
	_ = json.NewEncoder(w).Encode(te)
}

// ServeFile writes the artifact at p as an attachment.
func ServeFile(w http.ResponseWriter, r *http.Request, s Store, p string) error {
	rc, err := s.Open(r.Context(), p)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", ContentType(p))
	w.Header().Set("Content-Disposition", "attachment; filename="+path.Base(p))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.Copy(w, rc)
	return nil
}

// NewHandler serves the mlflow-artifacts routes; r.URL.Path is the escaped
// remainder after the /api/2.0/mlflow-artifacts prefix.
func NewHandler(s Store, o HandlerOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := r.URL.Path
		if rest == "/artifacts" && r.Method == http.MethodGet {
			p, err := CleanPath(r.URL.Query().Get("path"))
			if err != nil {
				writeErr(w, err)
				return
			}
			files, _ := s.List(r.Context(), p)
			for i := range files {
				files[i].Path = path.Base(files[i].Path)
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(struct {
				Files []tracking.FileInfo `json:"files,omitempty"`
			}{files})
			return
		}
		raw, ok := strings.CutPrefix(rest, "/artifacts/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		p, err := CleanPath(raw)
		if err != nil {
			writeErr(w, err)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if err := ServeFile(w, r, s, p); err != nil {
				writeErr(w, err)
			}
		case http.MethodPut:
			if err := s.Put(r.Context(), p, r.Body); err != nil {
				writeErr(w, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}"))
		case http.MethodDelete:
			if err := s.Delete(r.Context(), p); err != nil {
				writeErr(w, err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}"))
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}
