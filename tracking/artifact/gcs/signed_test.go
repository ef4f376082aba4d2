package gcs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/gcs/gcstest"
)

// signingStore returns a store on the emulator that signs with a fresh
// test key, and the key's public half.
func signingStore(t *testing.T, emu *gcstest.Emulator, bucket, prefix string) (*gcs.Store, func(string, string) (*gcstest.V4, error)) {
	t.Helper()
	key, pemKey := gcstest.NewSigningKey(t)
	s, err := gcs.New(context.Background(), gcs.Options{
		Bucket: bucket, Prefix: prefix, Endpoint: emu.URL,
		GoogleAccessID: gcstest.SigningAccount, PrivateKey: pemKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, func(u, method string) (*gcstest.V4, error) { return gcstest.VerifyV4(u, method, &key.PublicKey) }
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// fetch sends method to u with optional headers and returns the answer
// with its body read.
func fetch(t *testing.T, c *http.Client, method, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestSignedURL signs URLs for an object under a prefix, with characters
// that need encoding in its name, checks them as V4 signed URLs against
// the public key with an independent verifier, and follows them on the
// emulator (GET, Range, HEAD).
func TestSignedURL(t *testing.T) {
	emu := gcstest.Start(t, "sign-bkt")
	s, verify := signingStore(t, emu, "sign-bkt", "team/arts")
	ctx := context.Background()
	p := "1/run/artifacts/dir/model weights+v1 é.bin"
	data := randomBytes(t, 300<<10+7)
	if err := s.Put(ctx, p, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": "model weights+v1 é.bin"})
	u, err := s.SignedURL(ctx, p, artifact.SignOptions{
		Method: http.MethodGet, Expiry: 15 * time.Minute,
		ContentType: "application/octet-stream", ContentDisposition: disp,
	})
	if err != nil {
		t.Fatal(err)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	emuURL, _ := url.Parse(emu.URL)
	if pu.Scheme != "http" || pu.Host != emuURL.Host {
		t.Fatalf("signed URL %s does not point at the emulator %s", u, emu.URL)
	}
	v, err := verify(u, http.MethodGet)
	if err != nil {
		t.Fatalf("VerifyV4(%s): %v", u, err)
	}
	if v.Bucket != "sign-bkt" || v.Object != "team/arts/"+p || v.Account != gcstest.SigningAccount {
		t.Fatalf("signed for %+v", v)
	}
	if v.Expires < 15*time.Minute-2*time.Second || v.Expires > 15*time.Minute {
		t.Fatalf("X-Goog-Expires = %s, want 15m", v.Expires)
	}
	if d := time.Since(v.Date); d < -time.Minute || d > time.Minute {
		t.Fatalf("X-Goog-Date %s is not now", v.Date)
	}
	q := pu.Query()
	if q.Get("response-content-disposition") != disp || q.Get("response-content-type") != "application/octet-stream" {
		t.Fatalf("response overrides: %v", q)
	}
	// The verifier is not a rubber stamp: the same signature does not
	// verify for another method, another object or another expiry.
	if _, err := verify(u, http.MethodHead); err == nil {
		t.Fatal("a GET URL verified as HEAD")
	}
	if _, err := verify(strings.Replace(u, "/dir/", "/dir2/", 1), http.MethodGet); err == nil {
		t.Fatal("a URL for another object verified")
	}
	if _, err := verify(strings.Replace(u, "X-Goog-Expires=", "X-Goog-Expires=1", 1), http.MethodGet); err == nil {
		t.Fatal("a URL with a longer expiry verified")
	}

	c := &http.Client{Timeout: time.Minute}
	resp, body := fetch(t, c, http.MethodGet, u)
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET signed URL = %d (%d bytes)", resp.StatusCode, len(body))
	}
	if resp.Header.Get("Content-Disposition") != disp || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET signed URL headers: %v", resp.Header)
	}
	resp, body = fetch(t, c, http.MethodGet, u, "Range", "bytes=1000-1099")
	if resp.StatusCode != 206 || !bytes.Equal(body, data[1000:1100]) {
		t.Fatalf("Range GET signed URL = %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	hu, err := s.SignedURL(ctx, p, artifact.SignOptions{Method: http.MethodHead, Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(hu, http.MethodHead); err != nil {
		t.Fatalf("HEAD URL: %v", err)
	}
	resp, _ = fetch(t, c, http.MethodHead, hu)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD signed URL = %d, length %d", resp.StatusCode, resp.ContentLength)
	}
}

func TestSignedURLErrors(t *testing.T) {
	emu := gcstest.Start(t, "sign-bkt")
	s, _ := signingStore(t, emu, "sign-bkt", "")
	ctx := context.Background()
	ok := artifact.SignOptions{Method: http.MethodGet, Expiry: time.Minute}
	for name, c := range map[string]struct {
		p    string
		opts artifact.SignOptions
	}{
		"root":          {"", ok},
		"staging area":  {"1/r/.mlflow-upload-mpu-x/1", ok},
		"PUT":           {"a.bin", artifact.SignOptions{Method: http.MethodPut, Expiry: time.Minute}},
		"no expiry":     {"a.bin", artifact.SignOptions{Method: http.MethodGet}},
		"over 7 days":   {"a.bin", artifact.SignOptions{Method: http.MethodGet, Expiry: artifact.MaxSignedExpiry + time.Second}},
		"under 1s":      {"a.bin", artifact.SignOptions{Method: http.MethodGet, Expiry: time.Millisecond}},
		"empty method":  {"a.bin", artifact.SignOptions{Expiry: time.Minute}},
		"DELETE method": {"a.bin", artifact.SignOptions{Method: http.MethodDelete, Expiry: time.Minute}},
	} {
		if u, err := s.SignedURL(ctx, c.p, c.opts); err == nil {
			t.Errorf("%s: signed %s", name, u)
		}
	}
	// Seven days exactly is V4's limit and allowed.
	if _, err := s.SignedURL(ctx, "a.bin", artifact.SignOptions{Method: http.MethodGet, Expiry: artifact.MaxSignedExpiry}); err != nil {
		t.Errorf("7 days: %v", err)
	}
	// A cancelled context abandons signing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.SignedURL(cctx, "a.bin", ok); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// A key without its account is refused up front.
	_, pemKey := gcstest.NewSigningKey(t)
	if _, err := gcs.New(ctx, gcs.Options{Bucket: "sign-bkt", Endpoint: emu.URL, PrivateKey: pemKey}); err == nil || !strings.Contains(err.Error(), "GoogleAccessID") {
		t.Errorf("key without account: %v", err)
	}
	// A key that is not one fails at signing.
	bad, err := gcs.New(ctx, gcs.Options{Bucket: "sign-bkt", Endpoint: emu.URL, GoogleAccessID: gcstest.SigningAccount, PrivateKey: []byte("not a key")})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.SignedURL(ctx, "a.bin", ok); err == nil {
		t.Error("signed with a bad key")
	}
}

// TestSignedURLEmulatorHost: with STORAGE_EMULATOR_HOST instead of an
// endpoint, signed URLs point at the emulator too.
func TestSignedURLEmulatorHost(t *testing.T) {
	emu := gcstest.Start(t, "env-bkt")
	host := strings.TrimPrefix(emu.URL, "http://")
	t.Setenv("STORAGE_EMULATOR_HOST", host)
	_, pemKey := gcstest.NewSigningKey(t)
	ctx := context.Background()
	s, err := gcs.New(ctx, gcs.Options{Bucket: "env-bkt", GoogleAccessID: gcstest.SigningAccount, PrivateKey: pemKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(ctx, "x/y.txt", strings.NewReader("via env")); err != nil {
		t.Fatal(err)
	}
	u, err := s.SignedURL(ctx, "x/y.txt", artifact.SignOptions{Method: http.MethodGet, Expiry: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "http://"+host+"/env-bkt/x/y.txt?") {
		t.Fatalf("signed URL %s does not point at %s", u, host)
	}
	resp, body := fetch(t, http.DefaultClient, http.MethodGet, u)
	if resp.StatusCode != 200 || string(body) != "via env" {
		t.Fatalf("GET = %d %q", resp.StatusCode, body)
	}
}

// TestSignedDownloadsHandler serves the mlflow-artifacts handler over a
// GCS store with signed downloads: large objects redirect (GET, HEAD,
// Range), small ones, conditional requests and other methods are served
// by the handler, and uploads in parts still work through the wrapper.
func TestSignedDownloadsHandler(t *testing.T) {
	emu := gcstest.Start(t, "h-bkt")
	s, verify := signingStore(t, emu, "h-bkt", "root")
	ctx := context.Background()
	store, err := artifact.WithSignedDownloads(ctx, s, artifact.SignedDownloads{MinSize: 64 << 10, Expiry: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := store.(artifact.Multipart); !ok {
		t.Fatal("the wrapper hides Multipart")
	}
	if _, ok := store.(io.Closer); !ok {
		t.Fatal("the wrapper hides Close")
	}
	h := artifact.NewHandler(store, artifact.HandlerOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, _ := strings.CutPrefix(r.URL.EscapedPath(), "/api/2.0/mlflow-artifacts")
		h.ServeArtifacts(w, r, rest)
	}))
	defer srv.Close()
	noFollow := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	follow := &http.Client{Timeout: time.Minute}

	base := srv.URL + "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts"
	big := randomBytes(t, 64<<10)
	small := randomBytes(t, 64<<10-1)
	for name, b := range map[string][]byte{"big.bin": big, "small.bin": small} {
		if err := s.Put(ctx, "1/r/artifacts/"+name, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}

	// At the threshold: a redirect to a signed URL for the object.
	resp, body := fetch(t, noFollow, http.MethodGet, base+"/big.bin")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Cache-Control") != "no-store" || len(body) != 0 {
		t.Fatalf("GET big = %d %v %q", resp.StatusCode, resp.Header, body)
	}
	v, err := verify(loc, http.MethodGet)
	if err != nil {
		t.Fatalf("Location %s: %v", loc, err)
	}
	if v.Bucket != "h-bkt" || v.Object != "root/1/r/artifacts/big.bin" || v.Expires > 10*time.Minute || v.Expires < 10*time.Minute-2*time.Second {
		t.Fatalf("Location signed for %+v", v)
	}
	resp, body = fetch(t, follow, http.MethodGet, base+"/big.bin")
	if resp.StatusCode != 200 || sha256.Sum256(body) != sha256.Sum256(big) {
		t.Fatalf("GET big followed = %d (%d bytes)", resp.StatusCode, len(body))
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=big.bin` {
		t.Fatalf("followed Content-Disposition = %q", cd)
	}
	// Range: redirected, and the range is honoured at the target.
	resp, _ = fetch(t, noFollow, http.MethodGet, base+"/big.bin", "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("Range GET big = %d", resp.StatusCode)
	}
	resp, body = fetch(t, follow, http.MethodGet, base+"/big.bin", "Range", "bytes=10-19")
	if resp.StatusCode != 206 || !bytes.Equal(body, big[10:20]) {
		t.Fatalf("Range GET big followed = %d %q", resp.StatusCode, body)
	}
	// HEAD: a URL signed for HEAD.
	resp, _ = fetch(t, noFollow, http.MethodHead, base+"/big.bin")
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("HEAD big = %d", resp.StatusCode)
	}
	if _, err := verify(resp.Header.Get("Location"), http.MethodHead); err != nil {
		t.Fatalf("HEAD Location: %v", err)
	}
	resp, _ = fetch(t, follow, http.MethodHead, base+"/big.bin")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(big)) {
		t.Fatalf("HEAD big followed = %d %d", resp.StatusCode, resp.ContentLength)
	}
	// Conditional requests are the handler's: it knows its validators.
	resp, _ = fetch(t, noFollow, http.MethodGet, base+"/small.bin")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" {
		t.Fatalf("GET small = %d etag %q", resp.StatusCode, etag)
	}
	resp, body = fetch(t, noFollow, http.MethodGet, base+"/big.bin", "If-None-Match", `"nope"`)
	if resp.StatusCode != 200 || !bytes.Equal(body, big) {
		t.Fatalf("conditional GET big = %d", resp.StatusCode)
	}
	resp, _ = fetch(t, noFollow, http.MethodGet, base+"/big.bin", "If-None-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("matching If-None-Match = %d", resp.StatusCode)
	}
	// Below the threshold: streamed.
	resp, body = fetch(t, noFollow, http.MethodGet, base+"/small.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, small) || resp.Header.Get("Location") != "" {
		t.Fatalf("GET small = %d", resp.StatusCode)
	}
	// Missing: 404 as before, no redirect.
	resp, _ = fetch(t, noFollow, http.MethodGet, base+"/missing.bin")
	if resp.StatusCode != 404 {
		t.Fatalf("GET missing = %d", resp.StatusCode)
	}
	// Uploads in parts go through the wrapper; the result redirects.
	mp := randomBytes(t, 200<<10)
	if err := artifacttest.Upload(follow, srv.URL, "1/r/artifacts", "/tmp/mp.bin", mp, 64<<10); err != nil {
		t.Fatal(err)
	}
	resp, body = fetch(t, follow, http.MethodGet, base+"/mp.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, mp) || resp.Request.URL.Host == strings.TrimPrefix(srv.URL, "http://") {
		t.Fatalf("GET multipart result = %d from %s", resp.StatusCode, resp.Request.URL.Host)
	}
	// Deleting is not redirected.
	if resp, body := fetch(t, noFollow, http.MethodDelete, base+"/big.bin"); resp.StatusCode != 200 {
		t.Fatalf("DELETE = %d %s", resp.StatusCode, body)
	}
}

// TestSignedDownloadsOptions: the wrapper's defaults and the options it
// refuses.
func TestSignedDownloadsOptions(t *testing.T) {
	emu := gcstest.Start(t, "o-bkt")
	s, _ := signingStore(t, emu, "o-bkt", "")
	ctx := context.Background()
	for name, o := range map[string]artifact.SignedDownloads{
		"negative size": {MinSize: -1},
		"short expiry":  {Expiry: time.Millisecond},
		"long expiry":   {Expiry: artifact.MaxSignedExpiry + time.Second},
	} {
		if _, err := artifact.WithSignedDownloads(ctx, s, o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// Without credentials to sign with (the emulator client has none, and
	// a bad key is no key), the wrapper is refused up front.
	bad, err := gcs.New(ctx, gcs.Options{Bucket: "o-bkt", Endpoint: emu.URL, GoogleAccessID: gcstest.SigningAccount, PrivateKey: []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := artifact.WithSignedDownloads(ctx, bad, artifact.SignedDownloads{}); err == nil || !strings.Contains(err.Error(), "cannot sign URLs") {
		t.Errorf("bad key: %v", err)
	}
	// Zero options take the defaults: a 1 MiB object streams.
	store, err := artifact.WithSignedDownloads(ctx, s, artifact.SignedDownloads{})
	if err != nil {
		t.Fatal(err)
	}
	emu.Server.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "o-bkt", Name: "d/mid.bin"}, Content: make([]byte, 1<<20)})
	rec := httptest.NewRecorder()
	if err := artifact.ServeFile(rec, httptest.NewRequest(http.MethodHead, "/x", nil), store, "d/mid.bin"); err != nil || rec.Code != http.StatusOK {
		t.Errorf("HEAD of 1 MiB with the default minimum = %d %v, want 200", rec.Code, err)
	}
}
