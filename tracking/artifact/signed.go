package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"time"

	"go.uber.org/zap"
)

// Defaults and limits of signed downloads (WithSignedDownloads).
const (
	// DefaultSignedMinSize is the smallest artifact, in bytes, whose
	// download is redirected when SignedDownloads.MinSize is 0.
	DefaultSignedMinSize = 32 << 20
	// DefaultSignedExpiry is how long a signed download URL stays valid
	// when SignedDownloads.Expiry is 0.
	DefaultSignedExpiry = 15 * time.Minute
	// MaxSignedExpiry is the longest validity a V4 signed URL may have.
	MaxSignedExpiry = 7 * 24 * time.Hour
	// signTimeout bounds one signing call (IAM SignBlob is a network call).
	signTimeout = 30 * time.Second
	// signProbePath is the artifact path WithSignedDownloads signs a URL for
	// to check that signing works; nothing is read or written there.
	signProbePath = "signed-url-probe"
)

// Signer is implemented by stores whose objects a client can download
// directly from the storage service through a time-limited signed URL (the
// GCS store). The URL grants opts.Method on exactly the object that holds
// the artifact at the cleaned path p, in the store's own bucket, for
// opts.Expiry. Signing reads no object: it does not check that p exists.
type Signer interface {
	SignedURL(ctx context.Context, p string, opts SignOptions) (string, error)
}

// SignOptions describe one signed URL.
type SignOptions struct {
	// Method is the HTTP method the URL is valid for: GET or HEAD.
	Method string
	// Expiry is how long the URL stays valid, at most MaxSignedExpiry.
	Expiry time.Duration
	// ContentType and ContentDisposition, when set, are the headers the
	// storage service answers the signed URL with (overriding the object's
	// metadata), so that a redirected download looks like a streamed one.
	ContentType        string
	ContentDisposition string
}

// SignedDownloads configures WithSignedDownloads.
type SignedDownloads struct {
	// MinSize is the smallest artifact, in bytes, that is redirected;
	// smaller ones stream through the server. 0 means
	// DefaultSignedMinSize; empty artifacts always stream.
	MinSize int64
	// Expiry is the validity of each signed URL; 0 means
	// DefaultSignedExpiry. It must be at least a second and at most
	// MaxSignedExpiry.
	Expiry time.Duration
	// Logger, when set, receives signing failures: the download is then
	// streamed through the server instead.
	Logger *zap.Logger
}

// WithSignedDownloads returns store with ServeFile answering downloads of
// large artifacts with a redirect to a signed URL instead of streaming
// them. store must implement Signer; its other optional interfaces
// (Multipart, io.Closer, Sweeper) are kept. Before returning, it signs one URL (for
// an object that need not exist, with ctx bounding the call) so that
// missing signing credentials fail here, at start-up, rather than on the
// first large download.
//
// ServeFile redirects a request when all of these hold:
//
//   - the method is GET or HEAD (the URL is signed for that method);
//   - the artifact has at least MinSize bytes (and is not empty);
//   - the request is not conditional (no If-Match, If-None-Match,
//     If-Modified-Since, If-Unmodified-Since, If-Range): the storage
//     service's validators differ from the ones the server hands out, so
//     those requests are answered by the server itself.
//
// A Range request is redirected like a plain GET: the Range header goes
// along with the client to the signed URL, which honours it. The answer is
// 307 Temporary Redirect (the method is kept) with Cache-Control: no-store,
// since the URL expires. The URL's target is built by the store from the
// cleaned artifact path, never from anything else in the request.
func WithSignedDownloads(ctx context.Context, store Store, opts SignedDownloads) (Store, error) {
	signer, ok := store.(Signer)
	if !ok {
		return nil, fmt.Errorf("artifact: signed downloads: the store (%T) cannot sign URLs", store)
	}
	if opts.MinSize < 0 {
		return nil, fmt.Errorf("artifact: signed downloads: negative minimum size %d", opts.MinSize)
	}
	if opts.MinSize == 0 {
		opts.MinSize = DefaultSignedMinSize
	}
	if opts.Expiry == 0 {
		opts.Expiry = DefaultSignedExpiry
	}
	if opts.Expiry < time.Second || opts.Expiry > MaxSignedExpiry {
		return nil, fmt.Errorf("artifact: signed downloads: expiry %s is outside 1s..%s", opts.Expiry, MaxSignedExpiry)
	}
	sctx, cancel := context.WithTimeout(ctx, signTimeout)
	defer cancel()
	if _, err := signer.SignedURL(sctx, signProbePath, SignOptions{Method: http.MethodGet, Expiry: opts.Expiry}); err != nil {
		return nil, fmt.Errorf("artifact: signed downloads: cannot sign URLs: %w", err)
	}
	s := &signedStore{Store: store, signer: signer, opts: opts}
	if mp, ok := store.(Multipart); ok {
		return &signedMultipartStore{signedStore: s, Multipart: mp}, nil
	}
	return s, nil
}

// redirector is implemented by the stores WithSignedDownloads returns.
type redirector interface {
	// downloadRedirect returns the signed URL a download of the artifact
	// p, described by info, is redirected to, or false to stream it.
	downloadRedirect(r *http.Request, p string, info ObjectInfo) (string, bool)
}

// signedStore is a Store whose large downloads are redirected.
type signedStore struct {
	Store
	signer Signer
	opts   SignedDownloads
}

// signedMultipartStore is a signedStore over a store that also takes
// uploads in parts.
type signedMultipartStore struct {
	*signedStore
	Multipart
}

var (
	_ redirector = (*signedStore)(nil)
	_ redirector = (*signedMultipartStore)(nil)
	_ Multipart  = (*signedMultipartStore)(nil)
	_ io.Closer  = (*signedStore)(nil)
)

// Close closes the wrapped store when it has a Close method.
// Sweep passes on to the wrapped store when it is a Sweeper.
func (s *signedStore) Sweep(ctx context.Context, opts SweepOptions) (SweepResult, error) {
	if sw, ok := s.Store.(Sweeper); ok {
		return sw.Sweep(ctx, opts)
	}
	return SweepResult{}, nil
}

func (s *signedStore) Close() error {
	if c, ok := s.Store.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// conditionalHeaders are the request headers that make a download
// conditional (RFC 9110 section 13.1).
var conditionalHeaders = []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"}

func (s *signedStore) downloadRedirect(r *http.Request, p string, info ObjectInfo) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	if info.Size <= 0 || info.Size < s.opts.MinSize {
		return "", false
	}
	for _, h := range conditionalHeaders {
		if r.Header.Get(h) != "" {
			return "", false
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), signTimeout)
	defer cancel()
	u, err := s.signer.SignedURL(ctx, p, SignOptions{
		Method:             r.Method,
		Expiry:             s.opts.Expiry,
		ContentType:        ContentType(p),
		ContentDisposition: attachment(p),
	})
	if err != nil {
		if s.opts.Logger != nil && !errors.Is(r.Context().Err(), context.Canceled) {
			s.opts.Logger.Warn("signing a download URL failed; streaming the artifact instead",
				zap.String("path", p), zap.Int64("size", info.Size), zap.Error(err))
		}
		return "", false
	}
	return u, true
}

// attachment is the Content-Disposition of a download of p.
func attachment(p string) string {
	return mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(p)})
}

// writeRedirect answers with a redirect to the signed URL u. The answer is
// not cached: the URL expires.
func writeRedirect(w http.ResponseWriter, u string) {
	hdr := w.Header()
	hdr.Set("Location", u)
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTemporaryRedirect)
}
