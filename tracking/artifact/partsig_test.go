package artifact_test

import (
	"crypto/hmac"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

var (
	testKey   = []byte("0123456789abcdef0123456789abcdef-test")
	testNow   = time.Unix(1_800_000_000, 0)
	testUntil = testNow.Add(artifact.PartURLTTL).Unix()
)

// partURL is a valid part URL's path remainder and query under testKey.
func partURL(upload string, part int, expires int64) (string, url.Values) {
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(expires, 10))
	q.Set("signature", artifact.SignPart(testKey, upload, part, expires))
	return upload + "/" + strconv.Itoa(part), q
}

// tamperedParts are part URLs (path remainder, raw query) that must be
// refused: each changes one thing of a valid URL.
func tamperedParts() [][2]string {
	up := artifact.NewUploadID(testKey, "1/r/artifacts/f.bin")
	rest, q := partURL(up, 3, testUntil)
	sig := q.Get("signature")
	enc := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	exp := strconv.FormatInt(testUntil, 10)
	other := strings.Repeat("f", 32) + up[32:]
	flip := func(s string) string {
		b := []byte(s)
		if b[0] == 'a' {
			b[0] = 'b'
		} else {
			b[0] = 'a'
		}
		return string(b)
	}
	return [][2]string{
		{up + "/4", q.Encode()},                           // another part
		{other + "/3", q.Encode()},                        // another upload
		{rest, enc("expires", exp+"0", "signature", sig)}, // longer validity
		{rest, enc("expires", strconv.FormatInt(testUntil+1, 10), "signature", sig)},
		{rest, enc("expires", exp, "signature", flip(sig))}, // forged signature
		{rest, enc("expires", exp, "signature", strings.ToUpper(sig))},
		{rest, enc("expires", exp, "signature", sig[:63])}, // truncated
		{rest, enc("expires", exp)},                        // unsigned
		{rest, enc("signature", sig)},                      // no expiry
		{rest, enc("expires", " "+exp, "signature", sig)},
		{rest, enc("expires", "+"+exp, "signature", sig)},
		{rest, enc("expires", exp, "signature", "x", "signature", sig)}, // the genuine one second
		{rest, enc("expires", "0"+exp, "signature", sig)},               // non-canonical expiry
		{up + "/03", q.Encode()},
		{up + "/0", q.Encode()},
		{up + "/10001", q.Encode()},
		{"../" + up + "/3", q.Encode()},
		{strings.ToUpper(up[:32]) + up[32:] + "/3", q.Encode()},
	}
}

// verify runs the verifier on a path remainder and raw query at testNow.
func verify(rest, rawQuery string, now time.Time) (string, error) {
	upload, partStr, ok := strings.Cut(rest, "/")
	part, err := strconv.Atoi(partStr)
	if !ok || err != nil {
		return "", tracking.Errorf(tracking.PermissionDenied, "bad path")
	}
	q, _ := url.ParseQuery(rawQuery)
	if strconv.Itoa(part) != partStr {
		return "", tracking.Errorf(tracking.PermissionDenied, "non-canonical part")
	}
	return artifact.VerifyPart(testKey, upload, part, q, now)
}

// TestPartSignatures: a valid part URL is accepted until it expires; every
// tampered one is refused with PERMISSION_DENIED.
func TestPartSignatures(t *testing.T) {
	up := artifact.NewUploadID(testKey, "1/r/artifacts/f.bin")
	rest, q := partURL(up, 3, testUntil)
	if id, err := verify(rest, q.Encode(), testNow); err != nil || id != up[:32] {
		t.Fatalf("valid part URL: %q, %v", id, err)
	}
	if _, err := verify(rest, q.Encode(), time.Unix(testUntil+1, 0)); !tracking.IsCode(err, tracking.PermissionDenied) {
		t.Fatalf("expired part URL: %v", err)
	}
	for _, tc := range tamperedParts() {
		id, err := verify(tc[0], tc[1], testNow)
		if !tracking.IsCode(err, tracking.PermissionDenied) {
			t.Errorf("tampered %s?%s accepted: %q, %v", tc[0], tc[1], id, err)
		}
	}
}

// TestReadSigningKey: the key file's trimmed content, at least 32 bytes.
func TestReadSigningKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	_ = os.WriteFile(good, []byte("  "+strings.Repeat("k", 40)+"\n"), 0o600)
	if k, err := artifact.ReadSigningKey(good); err != nil || string(k) != strings.Repeat("k", 40) {
		t.Fatalf("ReadSigningKey = %q, %v", k, err)
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("short\n"), 0o600)
	if _, err := artifact.ReadSigningKey(short); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := artifact.ReadSigningKey(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing key file accepted")
	}
}

// FuzzPartURLVerifier: whatever the path and query, the verifier never
// panics, and what it accepts is exactly a part URL this key signed: the
// signature is the HMAC of the upload id, part and expiry, the URL has not
// expired, and the upload id starts with 32 lowercase hex digits.
func FuzzPartURLVerifier(f *testing.F) {
	up := artifact.NewUploadID(testKey, "1/r/artifacts/f.bin")
	for _, p := range []int{1, 2, 10000} {
		rest, q := partURL(up, p, testUntil)
		f.Add(rest, q.Encode())
	}
	for _, tc := range tamperedParts() {
		f.Add(tc[0], tc[1])
	}
	f.Fuzz(func(t *testing.T, rest, rawQuery string) {
		id, err := verify(rest, rawQuery, testNow)
		if err != nil {
			if !tracking.IsCode(err, tracking.PermissionDenied) {
				t.Fatalf("refusal %v is not PERMISSION_DENIED", err)
			}
			return
		}
		upload, partStr, _ := strings.Cut(rest, "/")
		part, _ := strconv.Atoi(partStr)
		q, _ := url.ParseQuery(rawQuery)
		expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
		if err != nil || strconv.FormatInt(expires, 10) != q.Get("expires") || testNow.Unix() > expires ||
			part < 1 || part > artifact.MaxParts {
			t.Fatalf("accepted %s?%s: expiry %q part %d", rest, rawQuery, q.Get("expires"), part)
		}
		if !hmac.Equal([]byte(q.Get("signature")), []byte(artifact.SignPart(testKey, upload, part, expires))) {
			t.Fatalf("accepted %s?%s without the right signature", rest, rawQuery)
		}
		if len(id) != 32 || !strings.HasPrefix(upload, id) || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("accepted %s?%s with upload id %q", rest, rawQuery, id)
		}
	})
}
