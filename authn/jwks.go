package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

// jwk is the subset of RFC 7517/7518/8037 members used for verification.
// golang-jwt does not parse JWKs, so this is done here with the standard
// library.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS parses a JSON Web Key Set and returns its signature keys.
// RSA, EC (P-256/384/521) and OKP (Ed25519) keys are used; symmetric (oct)
// keys, encryption keys (use "enc") and unknown key types are skipped. A
// key's algorithm is its "alg" member, checked against the key, or when
// absent RS256 for RSA, the curve's ES* for EC and EdDSA for Ed25519.
// A set with no usable key is an error.
func ParseJWKS(data []byte) ([]Key, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("authn: parsing JWKS: %w", err)
	}
	var keys []Key
	var skipped []error
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.key()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		if k != nil {
			keys = append(keys, *k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("authn: JWKS has no usable signature key: %w", errors.Join(skipped...))
	}
	return keys, nil
}

func (j *jwk) key() (*Key, error) {
	var pub any
	switch j.Kty {
	case "RSA":
		n, err := b64int(j.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := b64int(j.E)
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("unsupported RSA exponent")
		}
		pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported EC curve %q", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64fixed(j.X, size)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		y, err := b64fixed(j.Y, size)
		if err != nil {
			return nil, fmt.Errorf("y: %w", err)
		}
		k, err := ecdsa.ParseUncompressedPublicKey(curve, slices.Concat([]byte{4}, x, y))
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		pub = k
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", j.Crv)
		}
		x, err := b64fixed(j.X, ed25519.PublicKeySize)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		pub = ed25519.PublicKey(x)
	default:
		// oct and anything unknown: not a key we verify with.
		return nil, nil
	}
	alg := j.Alg
	if alg == "" {
		if _, ok := pub.(*rsa.PublicKey); ok {
			alg = "RS256"
		} else {
			var err error
			if alg, err = defaultAlg(pub); err != nil {
				return nil, err
			}
		}
	}
	if err := checkKeyAlg(pub, alg); err != nil {
		return nil, err
	}
	return &Key{ID: j.Kid, Alg: alg, Key: pub}, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}

func b64fixed(s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("want %d bytes, got %d", n, len(b))
	}
	return b, nil
}

// LoadJWKSFile reads a JWKS file once and returns its keys.
func LoadJWKSFile(path string) (StaticKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authn: reading JWKS file: %w", err)
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("authn: JWKS file %q: %w", path, err)
	}
	return keys, nil
}

// Defaults for RemoteJWKSOptions.
const (
	DefaultJWKSTTL                = 15 * time.Minute
	DefaultJWKSMinRefreshInterval = 30 * time.Second
	DefaultJWKSTimeout            = 10 * time.Second
	DefaultJWKSMaxBytes           = 1 << 20
)

// RemoteJWKSOptions configures a RemoteJWKS. The zero value uses the
// defaults.
type RemoteJWKSOptions struct {
	// TTL is how long fetched keys are used before refetching. Stale keys
	// keep being used while refetching fails.
	TTL time.Duration
	// MinRefreshInterval is the least time between two fetches, whatever
	// triggers them (expiry or a token with an unknown kid), so that tokens
	// with made-up kids cannot make the gateway hammer the identity provider.
	MinRefreshInterval time.Duration
	// Timeout bounds one fetch.
	Timeout time.Duration
	// MaxBytes bounds the response body.
	MaxBytes int64
	// Client is the HTTP client; nil means a client with Timeout that
	// follows at most 3 redirects and none to plain http (unless AllowHTTP or
	// loopback). A given client's own redirect and proxy policy apply.
	Client *http.Client
	// AllowHTTP permits a plain http:// URL. Without it only https:// is
	// accepted, except for loopback hosts (tests, sidecars).
	AllowHTTP bool
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// RemoteJWKS is a KeySet fetched from an operator-configured URL, cached for
// TTL, refetched when a token names an unknown kid, with at most one fetch
// per MinRefreshInterval and one fetch in flight. Safe for concurrent use.
type RemoteJWKS struct {
	url  string
	opts RemoteJWKSOptions

	mu          sync.Mutex
	keys        []Key
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time
	lastErr     error
	inflight    chan struct{} // closed when the current fetch ends
}

// NewRemoteJWKS returns a RemoteJWKS for rawURL. Nothing is fetched until
// the first Keys or Refresh call.
func NewRemoteJWKS(rawURL string, opts RemoteJWKSOptions) (*RemoteJWKS, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("authn: JWKS URL: %w", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (opts.AllowHTTP || isLoopback(u.Hostname())):
	default:
		return nil, fmt.Errorf("authn: JWKS URL must be https (got scheme %q)", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("authn: JWKS URL has no host")
	}
	if u.User != nil {
		return nil, errors.New("authn: JWKS URL must not carry credentials")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultJWKSTTL
	}
	if opts.MinRefreshInterval <= 0 {
		opts.MinRefreshInterval = DefaultJWKSMinRefreshInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultJWKSTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultJWKSMaxBytes
	}
	if opts.Client == nil {
		allowHTTP := opts.AllowHTTP
		opts.Client = &http.Client{
			Timeout: opts.Timeout,
			// Follow a few redirects, never from https down to http.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				if req.URL.Scheme != "https" && !allowHTTP && !isLoopback(req.URL.Hostname()) {
					return fmt.Errorf("redirect to scheme %q refused", req.URL.Scheme)
				}
				return nil
			},
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &RemoteJWKS{url: u.String(), opts: opts}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Algorithms returns every asymmetric algorithm; each fetched key is still
// pinned to its own.
func (r *RemoteJWKS) Algorithms() []string { return slices.Clone(asymmetricAlgs) }

// Keys returns the cached keys matching kid, fetching first when the cache
// is empty, expired, or lacks kid and the rate limit allows.
func (r *RemoteJWKS) Keys(ctx context.Context, kid string) ([]Key, error) {
	return r.get(ctx, kid, false)
}

func (r *RemoteJWKS) get(ctx context.Context, kid string, force bool) ([]Key, error) {
	for range 3 {
		r.mu.Lock()
		now := r.opts.Now()
		matched := matchKID(r.keys, kid)
		fresh := !r.fetchedAt.IsZero() && now.Sub(r.fetchedAt) < r.opts.TTL
		canFetch := r.lastAttempt.IsZero() || now.Sub(r.lastAttempt) >= r.opts.MinRefreshInterval
		if !force && fresh && len(matched) > 0 {
			r.mu.Unlock()
			return matched, nil
		}
		// A fetch in flight may bring what we lack: wait for it. Callers
		// that only hold stale keys keep using them meanwhile.
		if ch := r.inflight; ch != nil {
			r.mu.Unlock()
			if !force && len(matched) > 0 {
				return matched, nil
			}
			select {
			case <-ch:
				force = false // someone else just fetched
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("authn: waiting for JWKS: %w", ctx.Err())
			}
		}
		if !canFetch {
			err := r.lastErr
			r.mu.Unlock()
			if err != nil && (force || len(matched) == 0) {
				return matched, fmt.Errorf("authn: JWKS unavailable: %w", err)
			}
			return matched, nil
		}
		ch := make(chan struct{})
		r.inflight, r.lastAttempt = ch, now
		r.mu.Unlock()

		keys, err := r.fetch(ctx)

		r.mu.Lock()
		if err == nil {
			r.keys, r.fetchedAt, r.lastErr = keys, r.opts.Now(), nil
		} else {
			r.lastErr = err
		}
		r.inflight = nil
		close(ch)
		matched = matchKID(r.keys, kid)
		r.mu.Unlock()
		if err != nil && (force || len(matched) == 0) {
			return matched, err
		}
		return matched, nil
	}
	return nil, errors.New("authn: JWKS refresh contention")
}

// Refresh fetches the JWKS now, subject to the rate limit, and reports the
// fetch error if any. Callers may use it to warm the cache at start-up.
func (r *RemoteJWKS) Refresh(ctx context.Context) error {
	_, err := r.get(ctx, "", true)
	return err
}

// fetch GETs the JWKS with the caller's values but not its cancellation
// (one caller giving up must not fail the fetch for the others), bounded by
// Timeout and MaxBytes.
func (r *RemoteJWKS) fetch(ctx context.Context) ([]Key, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("authn: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("authn: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("authn: fetching JWKS: HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("authn: reading JWKS: %w", err)
	}
	if int64(len(body)) > r.opts.MaxBytes {
		return nil, fmt.Errorf("authn: JWKS response larger than %d bytes", r.opts.MaxBytes)
	}
	return ParseJWKS(body)
}
