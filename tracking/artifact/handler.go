package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	// MaxUploadSize caps one upload in bytes; 0 means no cap. The cap is
	// enforced while streaming, so a client that lies about (or omits)
	// Content-Length is stopped at the cap.
	MaxUploadSize int64
	// SigningKey signs multipart upload ids and part URLs. Nil means a
	// random key per process: part URLs then stop working on a restart.
	// See ReadSigningKey.
	SigningKey []byte
	// Logger, when set, receives the failures answered as 500 INTERNAL_ERROR
	// (the client only gets a generic message). See Handler.fail.
	Logger *zap.Logger
}

// Handler serves MLflow's proxied artifact service over a Store.
type Handler struct {
	store Store
	opts  HandlerOptions
}

// NewHandler returns a Handler for store.
func NewHandler(store Store, opts HandlerOptions) *Handler {
	return &Handler{store: store, opts: opts}
}

// ServeHTTP serves a request whose URL path is the part after the
// ".../mlflow-artifacts" prefix, as ServeArtifacts documents. The path is
// taken escaped (r.URL.EscapedPath), never from r.URL.Path, which net/url
// has already decoded once: decoding that again would turn a name such as
// "a%2e%2e" into a traversal, and refuse MLflow's "%step%" image names.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.ServeArtifacts(w, r, r.URL.EscapedPath())
}

// ServeArtifacts answers one mlflow-artifacts request. rest is the request
// path after "/api/2.0/mlflow-artifacts" (or the /ajax-api form), still
// percent-encoded exactly as received: the remainder of r.URL.EscapedPath(),
// never of r.URL.Path, e.g. "/artifacts/1/abc/artifacts/x.txt". It is
// decoded once and canonicalized by CleanEscapedPath. The listing's "path"
// query parameter is taken from r.URL.Query() (decoded once by net/url)
// and canonicalized by CleanPath.
//
//	GET    /artifacts?path=<dir>   list one level
//	GET    /artifacts/<p>          download (Range supported; large ones may
//	                               redirect, see WithSignedDownloads)
//	PUT    /artifacts/<p>          upload (streamed, atomic)
//	DELETE /artifacts/<p>          delete a file or a tree
//	POST   /mpu/{create,complete,abort}/<dir>  multipart (multipart.go)
//	PUT    /mpu/part/<upload>/<n>?signature=..  one part, signed URL
func (h *Handler) ServeArtifacts(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "/artifacts" || rest == "/artifacts/":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.list(w, r)
	case strings.HasPrefix(rest, "/artifacts/"):
		p, err := CleanEscapedPath(strings.TrimPrefix(rest, "/artifacts/"))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if err := ServeFile(w, r, h.store, p); err != nil {
				h.fail(w, r, err)
			}
		case http.MethodPut:
			h.put(w, r, p)
		case http.MethodDelete:
			if err := h.store.Delete(r.Context(), p); err != nil {
				h.fail(w, r, err)
				return
			}
			writeEmpty(w)
		default:
			methodNotAllowed(w, "GET, HEAD, PUT, DELETE")
		}
	case strings.HasPrefix(rest, "/mpu/create/"), strings.HasPrefix(rest, "/mpu/complete/"),
		strings.HasPrefix(rest, "/mpu/abort/"), strings.HasPrefix(rest, "/mpu/part/"):
		h.serveMultipart(w, r, rest) // multipart.go
	default:
		http.Error(w, "Not Found", http.StatusNotFound)
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	// Query values are already decoded once by the URL parser.
	p, err := CleanPath(strings.TrimSuffix(r.URL.Query().Get("path"), "/"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	files, err := h.store.List(r.Context(), p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for i := range files {
		files[i].Path = path.Base(files[i].Path)
	}
	writeJSON(w, struct {
		Files []tracking.FileInfo `json:"files,omitempty"`
	}{files})
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request, p string) {
	if p == "" {
		WriteError(w, errInvalidPath())
		return
	}
	body := io.Reader(r.Body)
	if max := h.opts.MaxUploadSize; max > 0 {
		if r.ContentLength > max {
			writeTooLarge(w, max)
			return
		}
		body = &limitReader{r: r.Body, left: max}
	}
	counted := &countingReader{r: body}
	if err := h.store.Put(r.Context(), p, counted); err != nil {
		var tl *errTooLarge
		var mb *http.MaxBytesError // a limit in front of the handler (Caddy's request_body)
		switch {
		case errors.As(err, &tl):
			writeTooLarge(w, h.opts.MaxUploadSize)
		case errors.As(err, &mb):
			writeTooLarge(w, mb.Limit)
		case counted.err != nil:
			// The client's body failed (it stalled past Caddy's
			// read_body_idle, or the connection broke): the client's
			// fault, not a storage failure.
			if h.opts.Logger != nil {
				h.opts.Logger.Debug("artifact upload: reading the request body failed",
					zap.String("artifact", p), zap.Int64("bytes_received", counted.n), zap.Error(counted.err))
			}
			WriteError(w, tracking.Errorf(tracking.BadRequest, "Failed to read the request body: upload of '%s' incomplete.", p))
		default:
			h.fail(w, r, err, zap.String("artifact", p), zap.Int64("bytes_received", counted.n),
				zap.Int64("content_length", r.ContentLength))
		}
		return
	}
	writeEmpty(w)
}

// ServeFile writes the artifact at p as an attachment, with MLflow's
// headers, honouring Range and conditional requests. When store comes from
// WithSignedDownloads, a large artifact is answered with a redirect to a
// signed URL instead (see WithSignedDownloads for when).
func ServeFile(w http.ResponseWriter, r *http.Request, store Store, p string) error {
	if p == "" {
		return notFound(p)
	}
	obj, err := store.Open(r.Context(), p)
	if err != nil {
		if IsNotFound(err) {
			return notFound(p)
		}
		return err
	}
	defer obj.Close()
	info := obj.Info()
	if rd, ok := store.(redirector); ok {
		if u, ok := rd.downloadRedirect(r, p, info); ok {
			writeRedirect(w, u)
			return nil
		}
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ContentType(p))
	hdr.Set("Content-Disposition", attachment(p))
	hdr.Set("X-Content-Type-Options", "nosniff")
	if info.ETag != "" {
		hdr.Set("ETag", info.ETag)
	}
	http.ServeContent(w, r, "", info.ModTime, obj)
	return nil
}

func notFound(p string) error {
	return tracking.Errorf(tracking.ResourceDoesNotExist, "No such artifact: '%s'", p)
}

// WriteError writes err as MLflow's error JSON: a *tracking.Error with its
// own status, a missing artifact as 404, a full disk or quota (ENOSPC,
// EDQUOT) as 507 RESOURCE_EXHAUSTED, anything else as a generic 500 that
// reveals nothing about the server's file system.
func WriteError(w http.ResponseWriter, err error) {
	te, ok := tracking.AsError(err)
	if !ok {
		if tracking.IsNoSpace(err) {
			te = tracking.NoSpace("the artifact")
		} else if IsNotFound(err) {
			te = tracking.Errorf(tracking.ResourceDoesNotExist, "No such artifact")
		} else {
			te = tracking.Errorf(tracking.InternalError, "Internal error while accessing artifacts")
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(te.Code.HTTPStatus())
	_ = json.NewEncoder(w).Encode(te)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeEmpty(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, "{}")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
}

func writeTooLarge(w http.ResponseWriter, max int64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_ = json.NewEncoder(w).Encode(tracking.Errorf(tracking.InvalidParameterValue,
		"Artifact upload exceeds the maximum size of %d bytes", max))
}

// errTooLarge is returned by limitReader past the cap.
type errTooLarge struct{ max int64 }

func (e *errTooLarge) Error() string { return fmt.Sprintf("upload exceeds %d bytes", e.max) }

// limitReader fails (rather than truncating, as io.LimitReader would) once
// more than left bytes are read.
type limitReader struct {
	r    io.Reader
	left int64
	max  int64
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.max == 0 {
		l.max = l.left
	}
	if int64(len(b)) > l.left+1 {
		b = b[:l.left+1]
	}
	n, err := l.r.Read(b)
	if int64(n) > l.left {
		return 0, &errTooLarge{max: l.max}
	}
	l.left -= int64(n)
	return n, err
}
