package artifacttest

import (
	"net/url"
	"strings"
)

// Name is a legal artifact name under a run's artifact root: Upload as a
// client sends it (before URL escaping), and Stored as MLflow's server
// stores and lists it, which is its canonical form (see
// artifact.CleanPath): the name decoded until it stops changing, tab, CR
// and LF dropped, invalid UTF-8 as U+FFFD, and C0 controls and DEL
// escaped as "%xx". MLflow's clients request a listed name in that form
// too.
type Name struct{ Upload, Stored string }

// same is a Name stored as it is uploaded.
func same(n string) Name { return Name{n, n} }

// MLflowNames are artifact paths that MLflow's own clients write:
//
//   - log_image(key=..., step=...) in MLflow up to 3.10 (mlflow/tracking/
//     client.py): "images/<key>%step%<step>%timestamp%<ms>%<uuid>.png" and
//     "...%compressed.webp", with '/' in the key written as '#'. Clients
//     before the fix for mlflow#14136 let the uuid start with a hex digit,
//     so "%0a", "%2e", "%2f", "%72", "%c8", "%00", "%25" appear; a step
//     of 10, 20 or 26 gives "%10", "%20", "%26"; the timestamp always
//     gives "%17".
//   - log_image in later MLflow (mlflow#21269): the same with '+'.
//   - log_histogram: "histograms/<name with # for />.json".
//
// A uuid starting "5c" gives a backslash once decoded: a name character,
// as on MLflow's server on Linux (refused on Windows).
var MLflowNames = []Name{
	same("images/dog%step%3%timestamp%1733400000000%g2c8e6a1-4f0b-4c1e-9d3a-1b2c3d4e5f60.png"),
	same("images/dog%step%3%timestamp%1733400000000%g2c8e6a1-4f0b-4c1e-9d3a-1b2c3d4e5f60%compressed.webp"),
	{"images/dog%step%10%timestamp%1733400000000%0a1b2c3d-aaaa-4bbb-8ccc-123456789012.png",
		"images/dog%step%10%timestamp%17334000000001b2c3d-aaaa-4bbb-8ccc-123456789012.png"},
	{"images/dog%step%20%timestamp%1733400000000%2e5f3c1a-aaaa-4bbb-8ccc-123456789012.png",
		"images/dog%step %timestamp%1733400000000.5f3c1a-aaaa-4bbb-8ccc-123456789012.png"},
	{"images/dog%step%26%timestamp%1733400000000%2f00aa11-aaaa-4bbb-8ccc-123456789012%compressed.webp",
		"images/dog%step&%timestamp%1733400000000/00aa11-aaaa-4bbb-8ccc-123456789012%compressed.webp"},
	{"images/dog%step%10%timestamp%1796501552107%7203c8d2-aaaa-4bbb-8ccc-123456789012.png",
		"images/dog%step%10%timestamp%1796501552107r03c8d2-aaaa-4bbb-8ccc-123456789012.png"},
	{"images/dog%step%26%timestamp%1796501552107%c8a1b2c3-aaaa-4bbb-8ccc-123456789012.png",
		"images/dog%step&%timestamp%1796501552107\uFFFDa1b2c3-aaaa-4bbb-8ccc-123456789012.png"},
	same("images/dog%step%10%timestamp%1796501552107%00aa11bb-aaaa-4bbb-8ccc-123456789012.png"),
	{"images/dog%step%10%timestamp%1796501552107%2541a1b2-aaaa-4bbb-8ccc-123456789012.png",
		"images/dog%step%10%timestamp%1796501552107Aa1b2-aaaa-4bbb-8ccc-123456789012.png"},
	{"images/dog%step%27%timestamp%1733400000000%5c00aa11-aaaa-4bbb-8ccc-123456789012.png",
		"images/dog%step'%timestamp%1733400000000\\00aa11-aaaa-4bbb-8ccc-123456789012.png"},
	same("images/train#loss%step%0%timestamp%1733400000000%h1b2c3d4-aaaa-4bbb-8ccc-123456789012.png"),
	same("images/my key.v2%step%5%timestamp%1733400000000%k1b2c3d4-aaaa-4bbb-8ccc-123456789012.png"),
	same("images/dog+step+3+timestamp+1733400000000+3f2a1b0c-aaaa-4bbb-8ccc-123456789012.png"),
	same("images/dog+step+3+timestamp+1733400000000+3f2a1b0c-aaaa-4bbb-8ccc-123456789012+compressed.webp"),
	same("images/train#loss+step+20+timestamp+1733400000000+00aa11bb-aaaa-4bbb-8ccc-123456789012.png"),
	same("histograms/weights#layer1.json"),
	same("table_images/eval/6b8f3c1a-aaaa-4bbb-8ccc-123456789012.png"),
}

// NastyNames are legal names with every character a file name may hold
// that URL handling tends to get wrong.
var NastyNames = []Name{
	same("a b.txt"),
	same("100% done.txt"),
	same("50%.txt"),
	{"%41.txt", "A.txt"},
	{"a%2Fb.txt", "a/b.txt"},
	{"%252e.txt", "..txt"},
	{"x%09y%0D%0A.txt", "xy.txt"},
	{"bell%07%7F", "bell%07%7f"},
	same("%zz%"),
	same("q?x=1&y=2.txt"),
	{"empty query?", "empty query"},
	same("semi;colon.txt"),
	same("a;b/c"),
	same("plus+sign+.txt"),
	same("eq=amp&.txt"),
	same(`it's "quoted".txt`),
	same("hash#tag.txt"),
	same("#start"),
	same("ünïcødé/漢字/файл.txt"),
	same("emoji 🐶.png"),
	same("bad \uFFFD utf-8"),
	same("wait….txt"),
	same("C++/main.cc"),
	same("a..b/..c/d.."),
	same(".hidden"),
	same("2024-01-01T10:00:00.json"),
	same("[brackets]{braces}(parens).txt"),
	same("tilde~!$@,'.txt"),
	same("trailing space "),
	same(" leading space"), // only the whole path's leading spaces are dropped
	same("x/" + strings.Repeat("y", 255)),
}

// LegalNames is MLflowNames followed by NastyNames.
func LegalNames() []Name {
	return append(append([]Name{}, MLflowNames...), NastyNames...)
}

// EscapeStrict percent-encodes a decoded path for a URL path the way Go's
// url package does (each segment with url.PathEscape): '%', '#', '?', ';',
// spaces and non-ASCII are escaped.
func EscapeStrict(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// EscapeLikeRequests percent-encodes a decoded path as little as the
// Python client does: MLflow's http_request builds the URL by string
// concatenation, and requests' requote_uri escapes only what is not a URI
// character (it keeps "!$&'()*+,;=:@[]~" as they are). '#' and '?' must be
// escaped by any client that wants them in a name (requests itself would
// cut the URL there), and so must '%' (requests escapes every '%' as %25
// once one of them does not start an escape, as in "%step%").
func EscapeLikeRequests(p string) string {
	const keep = "-._~!$&'()*+,;=:@[]/"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(hex2(c)))
	}
	return b.String()
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// Attacks are escaped request paths (as they appear in a URL after the
// route prefix) that must be refused with 400 INVALID_PARAMETER_VALUE
// "Invalid path" on every route that takes a path: traversal, absolute
// and drive paths, backslashes, C1 controls, double and triple encodings,
// paths that never settle or decode to nothing, and Unicode look-alikes.
// (A NUL, a C0 control, invalid or overlong UTF-8 are no attack: they are
// stored as the text "%00", or dropped, or as U+FFFD; see NastyNames.)
var Attacks = []string{
	"..", "../x", "a/../../x", "a/..", "./a", "a/./b",
	"%2e%2e", "%2e%2e/x", "%2E%2E%2Fx", "a/%2e%2e/%2e%2e/etc/passwd", "%2e", "..%2fx", "..%2Fetc%2Fpasswd",
	"%252e%252e", "%252e%252e/x", "%252e%252e%252fetc", "a/%252e%252e", "..%252fx", "%25252e%25252e",
	"%2e%252e/x", "a%252f..%252f..", "%255c..%255cx",
	`..\x`, "..%5cx", "a%5c..%5c..%5cx", "%5c%5cserver%5cshare",
	"/etc/passwd", "%2fetc%2fpasswd", "a//b", "a/",
	"C:%5cWindows", "file:%2F%2F%2Fetc%2Fpasswd",
	"..;/x", "a/..;x/b", "x%23/../../etc", "x%3F/../../etc", "%23..%2F..%2Fetc",
	"a%C2%85b",
	"images/dog%25step%2523%25timestamp%251733400000000%2500aa11bb.png", // '#' once decoded again (step 23)
	"%250a", "%20", "x/%252e%252e", "%" + strings.Repeat("25", 10) + "41", "ttp:%2F%2Fx",
	"%E2%80%A4%E2%80%A4/x", "%EF%BC%8E%EF%BC%8E/x", "a%E2%88%95..%E2%88%95b", "a%EF%BC%8F..",
	"%E2%80%A5/x", "a%E2%80%8Bb", "a%E2%80%AEgnp.exe", "%EF%BB%BFa",
	"...", ". .", "a/.../b", "a/ ./b",
	"%", "a%2", "a%zz",
	strings.Repeat("a/", 600) + "b",
	strings.Repeat("x", 256),
}

// LeadingAttacks are refused as the first segment of a path (the store
// root of the mlflow-artifacts routes, or the start of a run-relative
// path), where they would name a drive, a URI scheme or, decoded once
// more, the file system root. Under a directory they are plain names
// ("1/abc/artifacts/C:" is a file called "C:").
var LeadingAttacks = []string{
	"C:", "c:x", "Z:/x", "file:", "file:/etc/passwd", "s3:", "mlflow-artifacts:",
	"http:x", "FILE:x", // the URL round trip gives them a "//" (http:///x)
	"%2500", // a leading NUL is dropped, as are spaces and C0 controls: nothing left
}
