package gcstest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SigningAccount is the service account email tests sign URLs as.
const SigningAccount = "mlflow-signer@test-project.iam.gserviceaccount.com"

// NewSigningKey generates an RSA key for signing URLs in a test and
// returns it with its PKCS #8 PEM encoding (what a private_key_file
// holds). Keys are made at test time and never written to the repository.
func NewSigningKey(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("gcstest: generating an RSA key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("gcstest: encoding the RSA key: %v", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// V4 is what VerifyV4 read from a valid signed URL.
type V4 struct {
	// Account is the service account of the credential.
	Account string
	// Date is when the URL was signed; Expires how long it is valid.
	Date    time.Time
	Expires time.Duration
	// Object is the object name (decoded), Bucket its bucket.
	Bucket, Object string
}

// VerifyV4 checks a path-style V4 signed URL (GOOG4-RSA-SHA256) for
// method without the storage library: it rebuilds the canonical request
// and the string to sign from the URL as Google's documentation of V4
// signing describes (https://cloud.google.com/storage/docs/authentication/signatures),
// and verifies X-Goog-Signature, an RSASSA-PKCS1-v1_5 SHA-256 signature,
// with pub. The only signed header it accepts is host, taken as the URL's
// host name without the port, which is what the Go storage library signs
// (Google's endpoint has no port).
func VerifyV4(rawURL, method string, pub *rsa.PublicKey) (*V4, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parsing the URL: %w", err)
	}
	q := u.Query()
	get := func(k string) (string, error) {
		if len(q[k]) != 1 || q[k][0] == "" {
			return "", fmt.Errorf("want one %s parameter, got %q", k, q[k])
		}
		return q[k][0], nil
	}
	var v V4
	alg, err := get("X-Goog-Algorithm")
	if err != nil {
		return nil, err
	}
	if alg != "GOOG4-RSA-SHA256" {
		return nil, fmt.Errorf("X-Goog-Algorithm = %q", alg)
	}
	cred, err := get("X-Goog-Credential")
	if err != nil {
		return nil, err
	}
	date, err := get("X-Goog-Date")
	if err != nil {
		return nil, err
	}
	if v.Date, err = time.Parse("20060102T150405Z", date); err != nil {
		return nil, fmt.Errorf("X-Goog-Date %q: %w", date, err)
	}
	account, scope, ok := strings.Cut(cred, "/")
	if !ok || scope != v.Date.Format("20060102")+"/auto/storage/goog4_request" {
		return nil, fmt.Errorf("X-Goog-Credential %q: want <account>/<date>/auto/storage/goog4_request", cred)
	}
	v.Account = account
	exp, err := get("X-Goog-Expires")
	if err != nil {
		return nil, err
	}
	secs, err := strconv.Atoi(exp)
	if err != nil || secs <= 0 || secs > 7*24*3600 {
		return nil, fmt.Errorf("X-Goog-Expires = %q", exp)
	}
	v.Expires = time.Duration(secs) * time.Second
	signed, err := get("X-Goog-SignedHeaders")
	if err != nil {
		return nil, err
	}
	if signed != "host" {
		return nil, fmt.Errorf("X-Goog-SignedHeaders = %q, want host", signed)
	}
	sigHex, err := get("X-Goog-Signature")
	if err != nil {
		return nil, err
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return nil, fmt.Errorf("X-Goog-Signature is not hex: %w", err)
	}

	// The canonical path: each segment percent-encoded, keeping only the
	// unreserved characters. The URL must carry exactly that form.
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(segs) < 2 {
		return nil, fmt.Errorf("path %q names no object", u.Path)
	}
	v.Bucket, v.Object = segs[0], strings.Join(segs[1:], "/")
	enc := make([]string, len(segs))
	for i, s := range segs {
		enc[i] = encodeV4(s)
	}
	canonPath := "/" + strings.Join(enc, "/")
	if u.EscapedPath() != canonPath {
		return nil, fmt.Errorf("path %q is not in canonical form %q", u.EscapedPath(), canonPath)
	}
	// The canonical query: every parameter but the signature, sorted.
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "X-Goog-Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, val := range vals {
			pairs = append(pairs, encodeV4(k)+"="+encodeV4(val))
		}
	}
	canonical := strings.Join([]string{
		method,
		canonPath,
		strings.Join(pairs, "&"),
		"host:" + u.Hostname() + "\n",
		signed,
		"UNSIGNED-PAYLOAD",
	}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"GOOG4-RSA-SHA256", date, scope, hex.EncodeToString(sum[:])}, "\n")
	digest := sha256.Sum256([]byte(toSign))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, fmt.Errorf("the signature does not verify over the canonical request:\n%s\nerror: %w", canonical, err)
	}
	return &v, nil
}

// encodeV4 percent-encodes s for V4 canonical requests: everything but
// A-Z a-z 0-9 - . _ ~, with upper-case hex digits.
func encodeV4(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
