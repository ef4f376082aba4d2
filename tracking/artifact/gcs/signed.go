package gcs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/storage"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

var _ artifact.Signer = (*Store)(nil)

// signing is what SignedURL signs with and where its URLs point.
type signing struct {
	accessID string // "" lets the library detect the account
	key      []byte // PEM; nil signs with the client's credentials
	host     string // host[:port] of the URLs; "" is the client's (storage.googleapis.com)
	insecure bool   // http:// URLs (an emulator endpoint)
}

// newSigning derives the signing settings of a store: the explicit key,
// and the endpoint (Options.Endpoint, else STORAGE_EMULATOR_HOST) as the
// host and scheme of signed URLs, so that they point at an emulator when
// the store talks to one.
func newSigning(opts Options) (signing, error) {
	sg := signing{accessID: opts.GoogleAccessID}
	if len(opts.PrivateKey) > 0 {
		if opts.GoogleAccessID == "" {
			return signing{}, errors.New("gcs: a signing private key needs the GoogleAccessID (service account email) it belongs to")
		}
		sg.key = slices.Clone(opts.PrivateKey)
	}
	ep := opts.Endpoint
	if ep == "" {
		ep = EmulatorHost()
	}
	if ep == "" {
		return sg, nil
	}
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return signing{}, fmt.Errorf("gcs: endpoint %q: want http(s)://host[:port]", ep)
	}
	sg.host = u.Host
	sg.insecure = u.Scheme == "http"
	return sg, nil
}

// SignedURL implements artifact.Signer: a V4 signed URL (GOOG4-RSA-SHA256)
// for the object of the artifact path p in the store's bucket, path-style,
// on the store's endpoint. opts.ContentType and opts.ContentDisposition
// become the signed response-content-type and
// response-content-disposition parameters. Signing with a private key is
// local; signing with IAM SignBlob is a network call, abandoned (though
// not stopped) when ctx ends.
func (s *Store) SignedURL(ctx context.Context, p string, opts artifact.SignOptions) (string, error) {
	if p == "" || reserved(p) {
		return "", errInvalidPath()
	}
	method := strings.ToUpper(opts.Method)
	if method != http.MethodGet && method != http.MethodHead {
		return "", fmt.Errorf("gcs: signed URLs are for GET or HEAD, not %q", opts.Method)
	}
	if opts.Expiry < time.Second || opts.Expiry > artifact.MaxSignedExpiry {
		return "", fmt.Errorf("gcs: signed URL expiry %s is outside 1s..%s", opts.Expiry, artifact.MaxSignedExpiry)
	}
	q := url.Values{}
	if opts.ContentType != "" {
		q.Set("response-content-type", opts.ContentType)
	}
	if opts.ContentDisposition != "" {
		q.Set("response-content-disposition", opts.ContentDisposition)
	}
	so := &storage.SignedURLOptions{
		Scheme:          storage.SigningSchemeV4,
		Method:          method,
		Expires:         time.Now().Add(opts.Expiry),
		GoogleAccessID:  s.sign.accessID,
		PrivateKey:      s.sign.key,
		QueryParameters: q,
		Hostname:        s.sign.host,
		Insecure:        s.sign.insecure,
	}
	type result struct {
		url string
		err error
	}
	done := make(chan result, 1)
	go func() {
		u, err := s.bucket.SignedURL(s.object(p), so)
		done <- result{u, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", fmt.Errorf("gcs: signing a URL for %s: %w", p, r.err)
		}
		return r.url, nil
	case <-ctx.Done():
		return "", fmt.Errorf("gcs: signing a URL for %s: %w", p, ctx.Err())
	}
}
