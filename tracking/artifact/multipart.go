package artifact

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// ReservedPrefix starts the names a store uses for uploads in progress
// (temporary files, staged multipart parts). Listings hide such names and
// stores refuse artifact paths with a segment that starts with it.
const ReservedPrefix = tempPrefix

// Limits and defaults of multipart uploads.
const (
	// MaxParts is the most parts one multipart upload may have (S3's
	// limit, and plenty for MLflow's 10 MiB parts: about 100 GB).
	MaxParts = 10000
	// PartURLTTL is how long the part URLs handed out by mpu/create stay
	// valid. They are all issued at once, so this bounds the duration of
	// the whole upload.
	PartURLTTL = 6 * time.Hour
	// maxMPURequest caps the JSON bodies of mpu/create, complete, abort.
	maxMPURequest = 4 << 20
)

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number int
	// ETag is what the part upload answered, without quotes.
	ETag string
}

// Multipart is implemented by stores that accept uploads in parts. The
// handler validates upload ids and part numbers before calling it; upload
// ids are lowercase hex.
type Multipart interface {
	// CreateUpload prepares the staging area of a new upload.
	CreateUpload(ctx context.Context, upload string) error
	// PutPart stores one part (replacing an earlier upload of the same
	// part) and returns its ETag. It fails with fs.ErrNotExist when the
	// upload does not exist (never created, completed or aborted).
	PutPart(ctx context.Context, upload string, part int, r io.Reader) (etag string, err error)
	// CompleteParts assembles the given parts, in order, into the file at
	// p, which appears atomically, and then drops the staging area. A part
	// that is missing or whose ETag differs is the client's mistake.
	CompleteParts(ctx context.Context, upload, p string, parts []Part) error
	// AbortParts drops the staging area of the upload; an unknown upload
	// is not an error.
	AbortParts(ctx context.Context, upload string) error
}

// processKey is the process-wide key that signs upload ids and part URLs
// when HandlerOptions.SigningKey is not set. It is random, so it outlives
// config reloads but not a restart: uploads in flight across a restart
// must start again (set a key file to avoid that).
var processKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
})

// MinSigningKeyLen is the shortest accepted multipart signing key, in
// bytes.
const MinSigningKeyLen = 32

// ReadSigningKey reads a multipart signing key from a file: its content,
// without surrounding white space, of at least MinSigningKeyLen bytes
// (for example `head -c 48 /dev/urandom | base64 > mpu.key`). Servers
// sharing the key, or a server restarted with it, accept each other's
// part URLs and upload ids.
func ReadSigningKey(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("multipart signing key: %w", err)
	}
	key := bytes.TrimSpace(data)
	if len(key) < MinSigningKeyLen {
		return nil, fmt.Errorf("multipart signing key %s: %d bytes, want at least %d (e.g. head -c 48 /dev/urandom | base64 > %s)",
			file, len(key), MinSigningKeyLen, file)
	}
	return key, nil
}

// signingKey is the key of h: HandlerOptions.SigningKey, or processKey.
func (h *Handler) signingKey() []byte {
	if len(h.opts.SigningKey) > 0 {
		return h.opts.SigningKey
	}
	return processKey()
}

// mac returns the hex HMAC-SHA256 of the fields under key.
func mac(key []byte, fields ...string) string {
	m := hmac.New(sha256.New, key)
	for _, f := range fields {
		m.Write([]byte(f))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// newUploadID returns an upload id bound to the target path: 32 random
// hex digits, a dot, and 32 hex digits of an HMAC over them and the target.
func newUploadID(key []byte, target string) string {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	return id + "." + mac(key, "upload", id, target)[:32]
}

// checkUploadID verifies an upload id against the target path and returns
// its random part, which names the staging area.
func checkUploadID(key []byte, uploadID, target string) (string, bool) {
	id, sig, ok := strings.Cut(uploadID, ".")
	if !ok || len(id) != 32 || !isLowerHex(id) {
		return "", false
	}
	want := mac(key, "upload", id, target)[:32]
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", false
	}
	return id, true
}

// partSignature signs one part URL.
func partSignature(key []byte, uploadID string, part int, expires int64) string {
	return mac(key, "part", uploadID, strconv.Itoa(part), strconv.FormatInt(expires, 10))
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// mpuCredential is one entry of mpu/create's credentials.
type mpuCredential struct {
	URL        string            `json:"url"`
	PartNumber int               `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

// mpuRequest is the body of mpu/create, complete and abort.
type mpuRequest struct {
	Path     string          `json:"path"`
	NumParts json.RawMessage `json:"num_parts"`
	UploadID string          `json:"upload_id"`
	Parts    []struct {
		PartNumber json.RawMessage `json:"part_number"`
		ETag       string          `json:"etag"`
	} `json:"parts"`
}

// jsonInt reads an integer sent as a JSON number or a string (proto-JSON
// writes int64 as strings).
func jsonInt(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func invalid(format string, args ...any) error {
	return tracking.Errorf(tracking.InvalidParameterValue, format, args...)
}

// serveMultipart answers the multipart routes:
//
//	POST /mpu/create/<dir>    {path, num_parts} -> {upload_id, credentials}
//	POST /mpu/complete/<dir>  {path, upload_id, parts:[{part_number, etag}]}
//	POST /mpu/abort/<dir>     {path, upload_id}
//	PUT  /mpu/part/<upload_id>/<n>?expires=..&signature=..  (part bytes)
//
// The part route is what the part URLs handed out by create point at. The
// MLflow client PUTs to them with no credentials of its own, so they carry
// an HMAC signature over the upload id, part number and expiry instead.
func (h *Handler) serveMultipart(w http.ResponseWriter, r *http.Request, rest string) {
	mp, ok := h.store.(Multipart)
	if strings.HasPrefix(rest, "/mpu/part/") {
		if r.Method != http.MethodPut {
			methodNotAllowed(w, "PUT")
			return
		}
		if !ok {
			http.Error(w, "Not Found", http.StatusNotFound)
			return
		}
		h.putPart(w, r, mp, strings.TrimPrefix(rest, "/mpu/part/"))
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, "POST")
		return
	}
	if !ok {
		WriteError(w, tracking.Errorf(tracking.NotImplemented,
			"Multipart upload is not supported for the current artifact repository"))
		return
	}
	op, escDir, _ := strings.Cut(strings.TrimPrefix(rest, "/mpu/"), "/")
	dir, err := CleanEscapedPath(escDir)
	if err != nil {
		WriteError(w, err)
		return
	}
	var req mpuRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxMPURequest))
	if err := dec.Decode(&req); err != nil {
		WriteError(w, tracking.Errorf(tracking.BadRequest, "Malformed request body: %v", err))
		return
	}
	target, err := mpuTarget(dir, req.Path)
	if err != nil {
		WriteError(w, err)
		return
	}
	key := h.signingKey()
	switch op {
	case "create":
		err = h.createUpload(w, r, mp, key, target, rest, req)
	case "complete", "abort":
		id, ok := checkUploadID(key, req.UploadID, target)
		if !ok {
			err = tracking.Errorf(tracking.ResourceDoesNotExist, "No such multipart upload for '%s'", target)
			break
		}
		if op == "abort" {
			err = mp.AbortParts(r.Context(), id)
		} else {
			err = h.completeUpload(r.Context(), mp, id, target, req)
		}
		if err == nil {
			writeEmpty(w)
		}
	default:
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if err != nil {
		if IsNotFound(err) {
			err = tracking.Errorf(tracking.ResourceDoesNotExist, "No such multipart upload for '%s'", target)
		}
		h.fail(w, r, err, zap.String("artifact", target), zap.String("operation", "mpu/"+op))
	}
}

// mpuTarget is the file a multipart upload writes: the base name of the
// client's local path (either separator) inside dir.
func mpuTarget(dir, local string) (string, error) {
	if local == "" {
		return "", invalid("Missing value for required parameter 'path'.")
	}
	base := local
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	if base == "" || strings.Contains(base, "/") {
		return "", errInvalidPath()
	}
	target, err := CleanPath(JoinClean(dir, base))
	if err != nil {
		return "", err
	}
	for seg := range strings.SplitSeq(target, "/") {
		if strings.HasPrefix(seg, ReservedPrefix) {
			return "", errInvalidPath()
		}
	}
	return target, nil
}

func (h *Handler) createUpload(w http.ResponseWriter, r *http.Request, mp Multipart, key []byte, target, rest string, req mpuRequest) error {
	n, ok := jsonInt(req.NumParts)
	if !ok || n < 1 || n > MaxParts {
		return invalid("num_parts must be between 1 and %d", MaxParts)
	}
	uploadID := newUploadID(key, target)
	id, _ := checkUploadID(key, uploadID, target)
	if err := mp.CreateUpload(r.Context(), id); err != nil {
		return err
	}
	base := partBaseURL(r, rest)
	expires := time.Now().Add(PartURLTTL).Unix()
	creds := make([]mpuCredential, n)
	for i := range creds {
		part := i + 1
		q := url.Values{}
		q.Set("expires", strconv.FormatInt(expires, 10))
		q.Set("signature", partSignature(key, uploadID, part, expires))
		creds[i] = mpuCredential{
			URL:        fmt.Sprintf("%s/mpu/part/%s/%d?%s", base, uploadID, part, q.Encode()),
			PartNumber: part,
			Headers:    map[string]string{},
		}
	}
	writeJSON(w, struct {
		UploadID    string          `json:"upload_id"`
		Credentials []mpuCredential `json:"credentials"`
	}{uploadID, creds})
	return nil
}

// partBaseURL is the absolute URL of this service's prefix as the client
// reached it (scheme and Host of the request, and the path before rest).
// The scheme is r.URL.Scheme when the server set it (the Caddy module
// does, from a trusted balancer's X-Forwarded-Proto), else that of the
// connection.
func partBaseURL(r *http.Request, rest string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if r.URL.Scheme == "http" || r.URL.Scheme == "https" {
		scheme = r.URL.Scheme
	}
	prefix := strings.TrimSuffix(r.URL.EscapedPath(), rest)
	if !strings.HasSuffix(r.URL.EscapedPath(), rest) {
		prefix = "/api/2.0/mlflow-artifacts"
	}
	return scheme + "://" + r.Host + prefix
}

func (h *Handler) completeUpload(ctx context.Context, mp Multipart, id, target string, req mpuRequest) error {
	if len(req.Parts) == 0 {
		return invalid("Missing value for required parameter 'parts'.")
	}
	parts := make([]Part, 0, len(req.Parts))
	for _, p := range req.Parts {
		n, ok := jsonInt(p.PartNumber)
		if !ok || n < 1 || n > MaxParts {
			return invalid("Invalid part_number in parts")
		}
		parts = append(parts, Part{Number: int(n), ETag: strings.Trim(p.ETag, `"`)})
	}
	slices.SortFunc(parts, func(a, b Part) int { return a.Number - b.Number })
	for i := 1; i < len(parts); i++ {
		if parts[i].Number == parts[i-1].Number {
			return invalid("Part %d is listed more than once", parts[i].Number)
		}
	}
	return mp.CompleteParts(ctx, id, target, parts)
}

// verifyPart checks the signed query of a part URL (expires, signature)
// for the upload id and part number of its path, and returns the upload's
// random id (naming its staging area). A bad or missing signature, a
// malformed upload id or an expired URL is PERMISSION_DENIED.
func verifyPart(key []byte, uploadID string, part int, q url.Values, now time.Time) (string, error) {
	denied := tracking.Errorf(tracking.PermissionDenied, "Invalid part upload signature")
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || strconv.FormatInt(expires, 10) != q.Get("expires") || part < 1 || part > MaxParts {
		return "", denied // only the canonical form that was signed
	}
	want := partSignature(key, uploadID, part, expires)
	if !hmac.Equal([]byte(q.Get("signature")), []byte(want)) {
		return "", denied
	}
	if now.Unix() > expires {
		return "", tracking.Errorf(tracking.PermissionDenied, "The part upload URL has expired")
	}
	id, _, _ := strings.Cut(uploadID, ".")
	if len(id) != 32 || !isLowerHex(id) {
		return "", denied
	}
	return id, nil
}

// putPart answers the PUT of one part to a signed part URL.
func (h *Handler) putPart(w http.ResponseWriter, r *http.Request, mp Multipart, rest string) {
	uploadID, partStr, ok := strings.Cut(rest, "/")
	part, err := strconv.Atoi(partStr)
	if !ok || err != nil || part < 1 || part > MaxParts {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	id, err := verifyPart(h.signingKey(), uploadID, part, r.URL.Query(), time.Now())
	if err != nil {
		WriteError(w, err)
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
	etag, err := mp.PutPart(r.Context(), id, part, counted)
	if err != nil {
		var tl *errTooLarge
		switch {
		case errors.As(err, &tl):
			writeTooLarge(w, h.opts.MaxUploadSize)
		case IsNotFound(err):
			WriteError(w, tracking.Errorf(tracking.ResourceDoesNotExist, "No such multipart upload"))
		case counted.err != nil: // the client's body failed, not the store
			if h.opts.Logger != nil {
				h.opts.Logger.Debug("multipart part: reading the request body failed", zap.String("upload", id),
					zap.Int("part", part), zap.Int64("bytes_received", counted.n), zap.Error(counted.err))
			}
			WriteError(w, tracking.Errorf(tracking.BadRequest, "Failed to read the request body: part %d incomplete.", part))
		default:
			h.fail(w, r, err, zap.String("upload", id), zap.Int("part", part),
				zap.Int64("bytes_received", counted.n), zap.Int64("content_length", r.ContentLength))
		}
		return
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	writeEmpty(w)
}
