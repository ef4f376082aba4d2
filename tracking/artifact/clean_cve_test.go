package artifact

import (
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// cveVectors are the path-traversal shapes of MLflow's CVE history, as
// they arrive in a request path (escaped) after the route prefix. Each
// must be refused by CleanEscapedPath with 400 INVALID_PARAMETER_VALUE
// "Invalid path".
var cveVectors = []struct{ cve, escaped string }{
	{"CVE-2023-1177 (.. in artifact paths)", "../../../../etc/passwd"},
	{"CVE-2023-1177", "1/r/artifacts/../../../../etc/passwd"},
	{"CVE-2023-1177 (encoded)", "..%2F..%2F..%2Fetc%2Fpasswd"},
	{"CVE-2023-2780 (backslash bypass)", "..%5C..%5C..%5Cwindows%5Cwin.ini"},
	{"CVE-2023-2780", `..\..\windows\win.ini`},
	{"CVE-2023-2780", "1/r/artifacts/..%5c..%5c..%5c"},
	{"CVE-2023-3765 (absolute path)", "%2Fetc%2Fpasswd"},
	{"CVE-2023-3765", "/etc/passwd"},
	{"CVE-2023-3765 (Windows absolute)", "C:%5CWindows%5Cwin.ini"},
	{"CVE-2023-3765 (Windows drive-relative)", "C:Windows"},
	{"CVE-2023-3765 (UNC)", "%5C%5Cserver%5Cshare%5Cx"},
	{"CVE-2023-3765 (UNC device)", `\\?\C:\x`},
	{"CVE-2023-6018 (upload overwrite)", "1/r/artifacts/../../../../tmp/pwned"},
	{"CVE-2023-6909 (fragment)", "x%23/../../../etc/passwd"},
	{"CVE-2023-6909", "x#/../../etc"},
	{"CVE-2024-1483 (query part)", "x%3F/../../../etc/passwd"},
	{"CVE-2024-1483", "x?/../../etc"},
	{"CVE-2024-1558 (encoded dot-dot)", "%2e%2e/%2e%2e/etc/passwd"},
	{"CVE-2024-1558", "%2E%2E%2F%2E%2E%2Fetc"},
	{"CVE-2024-1560 (double encoding)", "%252e%252e%252f%252e%252e%252fetc%252fpasswd"},
	{"CVE-2024-1560 (triple encoding)", "%25252e%25252e%25252f"},
	{"CVE-2024-1560 (mixed)", "%2e%252e/x"},
	{"CVE-2024-1594 (fragment in location)", "1%23/../../etc"},
	{"CVE-2024-3573 (file URI)", "file:///etc/passwd"},
	{"CVE-2024-3573", "file:%2F%2F%2Fetc%2Fpasswd"},
	{"CVE-2024-3573", "file:/etc/passwd"},
	{"CVE-2024-3848 (fragment bypass)", "%23..%2F..%2Fetc"},
	{"path params", "..;/..;/etc/passwd"},
	{"one-dot-leader", "%E2%80%A4%E2%80%A4/etc"},
	{"fullwidth full stop", "%EF%BC%8E%EF%BC%8E/etc"},
	{"division slash", "..%E2%88%95etc"},
	{"fullwidth solidus", "..%EF%BC%8Fetc"},
	{"big solidus", "..%E2%A7%B8etc"},
	{"fullwidth reverse solidus", "..%EF%BC%BCetc"},
	{"zero-width space", "a%E2%80%8B/b"},
	{"bidi override", "a%E2%80%AEtxt.exe"},
	{"BOM", "%EF%BB%BFa"},
	{"dots and spaces (Windows)", ". ./x"},
	{"triple dot (Windows)", ".../x"},
	{"empty segment", "a//b"},
	{"trailing slash", "a/b/"},
	{"dot segment", "a/./b"},
	{"C1 control", "a%C2%85b"},
	{"never settles (MLflow: server error)", "%" + strings.Repeat("25", 10) + "41"},
	{"empty netloc after a scheme", "ttp://x"},
	{"# from a further decoding", "a%2523b"},
	{"log_image step 23 (MLflow refuses it too)", "images/dog%25step%2523%25timestamp%251796501552107%2500aa11bb.png"},
	{"file URI, double-encoded", "file%253a%252f%252f%252fetc"},
	{"bad escape", "a%zz"},
	{"truncated escape", "a%2"},
	{"too long", strings.Repeat("abcdefgh/", 120)},
	{"segment too long", strings.Repeat("a", 256)},
}

func TestCleanEscapedPathCVEs(t *testing.T) {
	for _, c := range cveVectors {
		got, err := CleanEscapedPath(c.escaped)
		if err == nil {
			t.Errorf("%s: CleanEscapedPath(%q) = %q, want Invalid path", c.cve, c.escaped, got)
			continue
		}
		te, ok := tracking.AsError(err)
		if !ok || te.Code != tracking.InvalidParameterValue || te.Message != "Invalid path" ||
			te.Code.HTTPStatus() != 400 {
			t.Errorf("%s: CleanEscapedPath(%q): %v, want 400 INVALID_PARAMETER_VALUE Invalid path", c.cve, c.escaped, err)
		}
	}
}

// defusedVectors are attack shapes that MLflow's canonical form turns into
// harmless names, as MLflow's server stores them: a NUL or other control
// character is the text "%xx", tab/CR/LF disappear, invalid or overlong
// UTF-8 is U+FFFD (one per maximal invalid subsequence, as Python decodes).
var defusedVectors = []struct{ name, escaped, canonical string }{
	{"NUL truncation", "x.txt%00.png", "x.txt%00.png"},
	{"NUL, double-encoded", "x.txt%2500.png", "x.txt%00.png"},
	{"overlong UTF-8 dot", "%c0%ae%c0%ae/etc", "\uFFFD\uFFFD\uFFFD\uFFFD/etc"},
	{"overlong UTF-8 slash", "..%c0%afetc", "..\uFFFD\uFFFDetc"},
	{"3-byte overlong", "%e0%80%ae", "\uFFFD\uFFFD\uFFFD"},
	{"truncated 3-byte sequence", "a%e2%82b", "a\uFFFDb"},
	{"CR/LF", "a%0d%0aSet-Cookie:x", "aset-cookie:x"}, // and the scheme lowercased
	{"CR/LF inside", "x/a%0d%0aSet-Cookie:x", "x/aSet-Cookie:x"},
	{"DEL", "a%7f", "a%7f"},
	{"ESC", "a%1Bb", "a%1bb"},
	{"invalid UTF-8", "a%ff%fe", "a\uFFFD\uFFFD"},
	{"leading space and controls", "%20%01x/y", "x/y"},
	{"escaped dot-dot inside a name", "a%252e%252eb", "a..b"},
	{"settles in MLflow's last round", "%" + strings.Repeat("25", 9) + "41", "A"},
}

func TestCleanEscapedPathDefused(t *testing.T) {
	for _, c := range defusedVectors {
		if got, err := CleanEscapedPath(c.escaped); err != nil || got != c.canonical {
			t.Errorf("%s: CleanEscapedPath(%q) = %q, %v; want %q", c.name, c.escaped, got, err, c.canonical)
		}
		if got, err := CleanPath(c.canonical); err != nil || got != c.canonical {
			t.Errorf("%s: CleanPath(%q) = %q, %v; want it unchanged", c.name, c.canonical, got, err)
		}
	}
}

// TestCleanPathColons: colons are ordinary name characters except for a
// drive letter or a bare scheme as the first segment.
func TestCleanPathColons(t *testing.T) {
	ok := []string{
		"2024-01-01T10:00:00.json", "1/r/artifacts/epoch:3.txt", "run:1x/file",
		"a/C:", "a/file:", "1/r/artifacts/s3:",
	}
	bad := []string{"C:", "c:x", "Z:/x", "file:", "file:/x", "s3:", "s3:/bucket", "mlflow-artifacts:", "a+b.c-d:"}
	for _, p := range ok {
		if got, err := CleanPath(p); err != nil || got != p {
			t.Errorf("CleanPath(%q) = %q, %v; want it accepted", p, got, err)
		}
	}
	for _, p := range bad {
		if got, err := CleanPath(p); err == nil {
			t.Errorf("CleanPath(%q) = %q; want Invalid path", p, got)
		}
	}
}

// TestCleanPathDecodedValues: CleanPath takes values that were already
// decoded once (query parameters) and canonicalizes them as MLflow does:
// the escapes left are decoded until nothing changes, and the result is
// checked.
func TestCleanPathDecodedValues(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"", "", true},
		{"data/a.json", "data/a.json", true},
		{"a b/c", "a b/c", true},
		{"100%", "100%", true},
		{"50% off.txt", "50% off.txt", true},
		{"%2e%2e/x", "", false},    // ".." once decoded again
		{"a%2f..", "", false},      // "a/.." once decoded again
		{"%5c%5cs%5cx", "", false}, // `\\s\x` once decoded again
		{"a%2fb", "a/b", true},
		{"a%5cb", "a\\b", true}, // a name character (not on Windows)
		{"a%5c", "", false},     // but never leading, trailing, doubled
		{"a\\\\b", "", false},
		{"a\\..\\b", "", false},
		{"a%41", "aA", true},
		{"a%2541", "aA", true},
		{"a%step%10", "a%step%10", true},
		{"a%10", "a%10", true},
		{"a\x10", "a%10", true},
		{"a#b?c;d", "a#b?c;d", true},
		{"a%23b", "", false}, // '#' only after a further decoding
		{"a#", "a", true},    // urlunparse drops an empty fragment,
		{"a?", "a", true},    // query
		{"a;", "a", true},    // and path parameter
		{"a;/b", "a;/b", true},
		{"a\tb\nc", "abc", true},
		{"Ab-1:x", "ab-1:x", true},     // a scheme is lowercased
		{"a/Ab-1:x", "a/Ab-1:x", true}, // not after a slash
		{"a\uFFFDb", "a\uFFFDb", true},
		{"%00", "", false}, // nothing left
		{"../x", "", false},
		{"/x", "", false},
	}
	for _, c := range cases {
		got, err := CleanPath(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestContentType: the media types the real server answered in the
// conformance transcripts, and Python mimetypes' suffix rules.
func TestContentType(t *testing.T) {
	cases := map[string]string{
		// artifacts_client.jsonl, log_model.jsonl, registry_versions.jsonl, traces.jsonl
		"hello.txt": "text/plain", "data/a.json": "text/plain", "data/b.csv": "text/plain",
		"c.yaml": "text/plain", "d.yaml": "text/plain", "img.png": "image/png",
		"blob.bin": "application/octet-stream", "empty.txt": "text/plain",
		"no_ext": "application/octet-stream", "page.html": "text/html",
		"space name.txt": "text/plain", "model/MLmodel": "text/plain", "traces.json": "text/plain",
		"report.md": "text/plain", "python_model.pkl": "application/octet-stream",
		"requirements.txt": "text/plain", "conda.yaml": "text/plain",
		// MLflow's text list and Python's table
		"MLproject": "application/octet-stream", "mlproject": "text/plain", "x.toml": "text/plain",
		"run.log": "text/plain", "x.py": "text/plain", "x.tsv": "text/plain",
		"x.PNG": "image/png", "x.jpg": "image/jpeg", "x.svg": "image/svg+xml", "x.pdf": "application/pdf",
		"x.parquet": "application/octet-stream", "x.npy": "application/octet-stream",
		"x.gz": "application/octet-stream", "x.tar.gz": "application/x-tar", "x.tgz": "application/x-tar",
		"x.json.gz": "application/json", "x.txt.gz": "text/plain", "x.csv.bz2": "text/csv",
		".hidden": "application/octet-stream", "x.": "application/octet-stream",
	}
	for name, want := range cases {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}
