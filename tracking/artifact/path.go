package artifact

import (
	"net/url"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Limits on artifact paths.
const (
	// MaxPathLength is the longest accepted artifact path, in bytes.
	MaxPathLength = 1024
	// MaxSegmentLength is the longest accepted path segment, in bytes
	// (the usual file-name limit of local file systems).
	MaxSegmentLength = 255
)

// errInvalidPath is MLflow's answer to an unsafe artifact path.
func errInvalidPath() error {
	return &tracking.Error{Code: tracking.InvalidParameterValue, Message: "Invalid path"}
}

// CleanEscapedPath decodes a percent-encoded artifact path exactly once, as
// it appears in a request URL after the route prefix, and validates the
// result with CleanPath.
func CleanEscapedPath(escaped string) (string, error) {
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return "", errInvalidPath()
	}
	return CleanPath(decoded)
}

// CleanPath validates an already-decoded artifact path and returns it as a
// relative slash-separated path ("" for the root). It never decodes: a path
// that still contains a percent-encoding after the one decoding its caller
// did is refused, which defeats double-encoding tricks such as %252e%252e.
//
// Refused: ".." and "." segments, empty segments (a leading, doubled or
// trailing slash), backslashes, NUL and other control characters, invisible
// format characters (zero-width, bidi overrides), '#', '?', ';', a drive
// letter or a bare URI scheme as the first segment ("C:", "c:x", "file:"),
// residual percent-encodings, Unicode look-alikes of dots and slashes,
// invalid UTF-8, and paths or segments longer than MaxPathLength or
// MaxSegmentLength. Other colons are ordinary file-name characters
// ("2024-01-01T10:00.json"), except on Windows, where any colon is refused
// (NTFS alternate data streams).
//
// Callers: the HTTP handler passes the escaped request path through
// CleanEscapedPath; query values (already decoded once by net/url) and
// artifact URIs from the store go straight to CleanPath.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if len(p) > MaxPathLength || !utf8.ValidString(p) {
		return "", errInvalidPath()
	}
	for i, r := range p {
		switch {
		case r == '\\', r == '#', r == '?', r == ';':
			return "", errInvalidPath()
		case r == '%':
			if i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
				return "", errInvalidPath()
			}
		case r < 0x20 || r == 0x7f || unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return "", errInvalidPath()
		case r == ':' && runtime.GOOS == "windows":
			return "", errInvalidPath()
		case lookAlike(r):
			return "", errInvalidPath()
		}
	}
	if first, _, _ := strings.Cut(p, "/"); driveOrScheme(first) {
		return "", errInvalidPath()
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." || len(seg) > MaxSegmentLength {
			return "", errInvalidPath()
		}
		// Windows drops trailing dots and spaces ("..." or ". ." can
		// resolve to ".."); refuse segments made only of dots and spaces.
		if strings.Trim(seg, ". ") == "" {
			return "", errInvalidPath()
		}
	}
	return p, nil
}

// JoinClean joins a cleaned base and a cleaned relative path.
func JoinClean(base, rel string) string {
	switch {
	case base == "":
		return rel
	case rel == "":
		return base
	}
	return base + "/" + rel
}

// driveOrScheme reports a first segment that Windows or MLflow's own
// file-URI handling would not take as a plain name: a drive letter ("C:",
// "C:x", i.e. drive-relative) or a bare URI scheme ("file:", "s3:").
func driveOrScheme(seg string) bool {
	if len(seg) >= 2 && seg[1] == ':' && ('a' <= seg[0]|0x20 && seg[0]|0x20 <= 'z') {
		return true
	}
	scheme, ok := strings.CutSuffix(seg, ":")
	if !ok || scheme == "" {
		return false
	}
	for i, c := range []byte(scheme) {
		letter := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// lookAlike reports runes that some layer (Unicode normalisation, a
// Windows code page, a browser) may turn into '.', '/' or '\'.
func lookAlike(r rune) bool {
	switch r {
	case '\u2024', '\u2025', '\u2026', '\uFE52', '\uFF0E', '\u3002', '\uFF61', // dots
		'\u2215', '\u2044', '\uFF0F', '\u29F8', '\u2571', '\u1735', // slashes
		'\uFF3C', '\u29F9', '\u2216', '\uFE68', '\u2572', // backslashes
		'\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', // invisible
		'\uFFFD':
		return true
	}
	return false
}

// URIPath maps an artifact URI that points into the proxied artifact store
// to its cleaned store path: mlflow-artifacts:/<p>,
// mlflow-artifacts://host:port/<p>, and
// http(s)://host/.../api/2.0/mlflow-artifacts/artifacts/<p>. It reports
// false for any other URI (another scheme, or an unsafe path).
func URIPath(uri string) (string, bool) {
	var escaped string
	switch {
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		rest := strings.TrimPrefix(uri, "mlflow-artifacts:")
		if h, ok := strings.CutPrefix(rest, "//"); ok {
			i := strings.IndexByte(h, '/')
			if i < 0 {
				return "", true
			}
			rest = h[i:]
		}
		escaped = strings.TrimPrefix(rest, "/")
	case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
		u, err := url.Parse(uri)
		if err != nil {
			return "", false
		}
		const marker = "/api/2.0/mlflow-artifacts/artifacts"
		ep := u.EscapedPath()
		i := strings.Index(ep, marker)
		if i < 0 {
			return "", false
		}
		escaped = strings.TrimPrefix(ep[i+len(marker):], "/")
	default:
		return "", false
	}
	escaped = strings.TrimSuffix(escaped, "/")
	p, err := CleanEscapedPath(escaped)
	if err != nil {
		return "", false
	}
	return p, true
}
