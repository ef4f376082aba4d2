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
	q.Set("signature", partSignature(signingKey(), upload, n, expires.Unix()))
	u.RawQuery = q.Encode()
	return u.String()
}
