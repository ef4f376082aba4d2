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

// CleanEscapedPath decodes a percent-encoded artifact path once, as it
// appears in a request URL after the route prefix (the decoding net/http
// does for MLflow's server), and passes the result to CleanPath.
func CleanEscapedPath(escaped string) (string, error) {
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return "", errInvalidPath()
	}
	return CleanPath(decoded)
}

// CleanPath canonicalizes an artifact path that HTTP has decoded once (a
// request path after CleanEscapedPath, a query value, a path from a JSON
// body) the way MLflow does, validates the canonical form, and returns it
// as a relative slash-separated path ("" for the root). Stores only ever
// see canonical paths, so every route stores, lists and finds a name
// under the same form as MLflow's server does.
//
// The canonical form is what mlflow/utils/uri.py validate_path_is_safe
// returns, and both MLflow's server (for every artifact path it takes)
// and its clients (for every name a listing returns, before requesting
// it) use it: the path is decoded until it stops changing (up to ten
// rounds; see canonical), and C0 controls and DEL are then escaped as
// lowercase "%xx". So "%2e" is ".", "%41" is "A", "%c8" is U+FFFD, a tab,
// CR or LF disappears, and "%10" or "%00" is that text. MLflow's log_image
// names ("images/<key>%step%<n>%timestamp%<ms>%<uuid>.png", '#' for '/'
// in the key; "+" instead of "%" from MLflow 3.11) come out as MLflow's
// server stores them: "%step%10" stays, a uuid starting "72" becomes "r".
// '%' before non-hex, '#', '?', ';', '+', '&', '=', quotes, spaces,
// colons and Unicode letters are ordinary name characters.
//
// The canonical form is refused, with MLflow's 400 INVALID_PARAMETER_VALUE
// "Invalid path", when it has:
//   - "." and ".." segments, segments made only of dots and spaces (Windows
//     drops trailing ones), and ".." with a path parameter ("..;x");
//   - empty segments (a leading, doubled or trailing slash), so nothing is
//     absolute;
//   - a backslash that leads, ends, doubles or delimits a dot-only part
//     ("..\\x", "\\\\server", "a\\"), and on Windows any backslash; C1
//     controls, invisible format characters (zero-width, bidi overrides,
//     BOM);
//   - a drive letter or a bare URI scheme as the first segment ("C:",
//     "c:x", "file:"), and on Windows any colon (NTFS streams);
//   - Unicode look-alikes of '.', '/' and '\' that would make one of the
//     above once folded to ASCII (NFKC, best-fit code pages);
//   - more than MaxPathLength bytes, or a segment over MaxSegmentLength.
//
// A path that does not settle within MLflow's ten decoding rounds, or that
// the URL round trip makes absolute, is refused too. Unlike MLflow, a '#'
// that the client sent as such is accepted (MLflow's own log_histogram
// and log_image write it); one that only further decoding produces
// ("%23" left after HTTP's decoding, as in a log_image name for step 23)
// is refused as MLflow refuses it, because MLflow's Python client refuses
// to list a directory holding such a name.
//
// Decoding the canonical form once more can only turn its "%xx" control
// escapes back into control characters (every other escape was decoded),
// which are neither dots nor separators; so a further decoding by another
// layer cannot make it a traversal. survivesRedecoding checks that.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if len(p) > 4*MaxPathLength {
		return "", errInvalidPath()
	}
	c, ok := canonical(p)
	if !ok || c == "" || len(c) > MaxPathLength || strings.Count(c, "#") > strings.Count(p, "#") {
		return "", errInvalidPath()
	}
	for _, r := range c {
		switch {
		case r == '\\' && runtime.GOOS == "windows":
			return "", errInvalidPath()
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return "", errInvalidPath()
		case r == ':' && runtime.GOOS == "windows":
			return "", errInvalidPath()
		case invisible(r):
			return "", errInvalidPath()
		}
	}
	if first, _, _ := strings.Cut(c, "/"); driveOrScheme(first) {
		return "", errInvalidPath()
	}
	for seg := range strings.SplitSeq(c, "/") {
		if seg == "" || len(seg) > MaxSegmentLength || dotSegment(seg) {
			return "", errInvalidPath()
		}
		// A backslash is a name character here (MLflow on Linux stores
		// it; a log_image uuid starting "5c" makes one), but it must not
		// make anything that a Windows reader would take as a traversal,
		// a root or an empty segment.
		if !strings.Contains(seg, "\\") {
			continue
		}
		if len(seg) >= 2 && seg[1] == ':' && isASCIILetter(seg[0]) { // C:\x
			return "", errInvalidPath()
		}
		for part := range strings.SplitSeq(seg, "\\") {
			if part == "" || dotSegment(part) {
				return "", errInvalidPath()
			}
		}
	}
	if !survivesRedecoding(c) {
		return "", errInvalidPath()
	}
	return c, nil
}

// dotSegment reports a segment that some layer may resolve as "." or
// "..": only dots and spaces (Windows trims trailing ones, so "..." and
// ". ." are ".."), also before a path parameter (";x", which servlet
// containers strip).
func dotSegment(seg string) bool {
	head, _, _ := strings.Cut(seg, ";")
	return strings.Trim(head, ". ") == ""
}

// maxRedecode bounds the extra decoding rounds of survivesRedecoding;
// every round removes at least one escape. On a canonical path the first
// round already finds nothing but control escapes.
const maxRedecode = 4

// survivesRedecoding checks p, folded, and each further decoding of what
// is left of its escapes (see CleanPath) for traversal: a leading '/' or
// '\', a dot-only segment between any separators, or a drive letter first.
func survivesRedecoding(p string) bool {
	s := p
	for round := 0; ; round++ {
		if f := fold(s); !structurallySafe(f) {
			return false
		}
		if round == maxRedecode || !strings.Contains(s, "%") {
			return true
		}
		next := lenientUnescape(s)
		if next == s {
			return true
		}
		s = next
	}
}

// structurallySafe is the part of CleanPath's check that matters once a
// name has been decoded again: nothing absolute, no dot-only segment
// between '/' or '\' separators, and no drive letter in front.
func structurallySafe(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == '/' || s[0] == '\\' {
		return false
	}
	if len(s) >= 2 && s[1] == ':' && ('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return false
	}
	for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' }) {
		if dotSegment(seg) {
			return false
		}
	}
	return true
}

// lenientUnescape decodes every valid %XX escape of s and leaves any other
// '%' as it is (url.PathUnescape would give up on the first "%st").
func lenientUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// fold maps what lenient decoders and best-fit code pages turn into '.',
// '/' or '\' to those ASCII characters: Unicode look-alikes, overlong UTF-8
// forms (C0 AE, C0 AF, C1 9C, E0 80 AE, ...) and any other invalid byte
// left as it is.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] == 0xC0 || s[i] == 0xC1 || s[i] == 0xE0 {
			if r, n := overlong(s[i:]); n > 0 {
				b.WriteByte(r)
				i += n
				continue
			}
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			b.WriteByte(s[i])
			i++
			continue
		}
		if a, ok := lookAlike(r); ok {
			b.WriteString(a)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// overlong decodes an overlong (invalid) UTF-8 encoding of an ASCII
// character at the start of s, as lenient decoders do; n is 0 when there
// is none.
func overlong(s string) (byte, int) {
	cont := func(c byte) bool { return c&0xC0 == 0x80 }
	switch {
	case len(s) >= 2 && (s[0] == 0xC0 || s[0] == 0xC1) && cont(s[1]):
		return (s[0]&0x1F)<<6 | s[1]&0x3F, 2
	case len(s) >= 3 && s[0] == 0xE0 && s[1]&0xE0 == 0x80 && cont(s[2]):
		return (s[1]&0x3F)<<6 | s[2]&0x3F, 3
	}
	return 0, 0
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

// lookAlike maps runes that Unicode normalisation (NFKC), a Windows
// best-fit code page or a browser may turn into '.', '/' or '\' to
// those characters.
func lookAlike(r rune) (string, bool) {
	switch r {
	case '\u2024', '\uFE52', '\uFF0E', '\u3002', '\uFF61': // one-dot leader, small/fullwidth/ideographic stops
		return ".", true
	case '\u2025': // two-dot leader
		return "..", true
	case '\u2026': // ellipsis
		return "...", true
	case '\u2215', '\u2044', '\uFF0F', '\u29F8', '\u2571', '\u1735': // slashes
		return "/", true
	case '\uFF3C', '\u29F9', '\u2216', '\uFE68', '\u2572': // backslashes
		return "\\", true
	}
	return "", false
}

// invisible reports characters that make two different names look the
// same (zero-width joiners and spaces, word joiner, BOM). U+FFFD is a
// plain character: MLflow's decoding writes it for an invalid escape.
func invisible(r rune) bool {
	switch r {
	case '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF':
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
