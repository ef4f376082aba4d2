package artifact

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ResignPartURL re-signs a part URL with the given expiry, for tests of
// the expiry check.
func ResignPartURL(raw string, expires time.Time) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	parts := strings.Split(u.Path, "/")
	n, _ := strconv.Atoi(parts[len(parts)-1])
	upload := parts[len(parts)-2]
	q := u.Query()
	q.Set("expires", strconv.FormatInt(expires.Unix(), 10))
	q.Set("signature", partSignature(processKey(), upload, n, expires.Unix()))
	u.RawQuery = q.Encode()
	return u.String()
}

// VerifyPart exposes verifyPart to the fuzz target.
var VerifyPart = verifyPart

// SignPart exposes partSignature to tests.
var SignPart = partSignature

// NewUploadID exposes newUploadID to tests.
var NewUploadID = newUploadID
