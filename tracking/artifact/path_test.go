package artifact

import (
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// traversalVectors are escaped request paths drawn from MLflow's
// path-traversal CVE history and the usual encoding tricks. Each must be
// refused by CleanEscapedPath.
var traversalVectors = []string{
	"..", "../", "../x", "a/../../x", "a/..", "./a", "a/./b", "a/.",
	"%2e%2e", "%2e%2e/x", "%2E%2E%2Fx", "a/%2e%2e/%2e%2e/etc/passwd", "%2e", "%2e/x",
	"%252e%252e", "%252e%252e%252fx", "%25252e%25252e", "a%252f..%252f..",
	"..%2fx", "..%2Fx", "a%2f..%2f..%2fx", "%2fetc%2fpasswd",
	"..\\x", "a\\..\\..\\x", "%5c..%5cx", "..%5c..%5cx", "%255c",
	"/etc/passwd", "//etc/passwd", "%2F%2Fetc", "a//b", "a/", "/",
	"C:", "C:/Windows", "c:%5cwindows", "C%3A%5CWindows", "file:/etc/passwd", "file:%2F%2F%2Fetc",
	"\\\\server\\share", "%5c%5cserver%5cshare",
	"..;/x", "a/..;/..;/x", "..%3bx/y",
	"%00", "%0a", "%20", "a%5c", "%252e%252e/x", "%2525252e%2525252e",
	"\u2024\u2024/x", "%e2%80%a4%e2%80%a4", "\uff0e\uff0e/x", "a\u2215..\u2215b", "a\uff0f..", "a\u29f8..",
	"a\u200bb", "...", ". .", "a/... /b", "a/ ./b",
	"%", "%2", "%zz",
	strings.Repeat("a/", 600) + "b",
	strings.Repeat("x", 256),
}

func TestCleanEscapedPathRefusesTraversal(t *testing.T) {
	for _, v := range traversalVectors {
		got, err := CleanEscapedPath(v)
		if err == nil {
			t.Errorf("CleanEscapedPath(%q) = %q, want an error", v, got)
			continue
		}
		if te, ok := tracking.AsError(err); !ok || te.Code != tracking.InvalidParameterValue {
			t.Errorf("CleanEscapedPath(%q): error %v, want INVALID_PARAMETER_VALUE", v, err)
		}
	}
}

func TestCleanEscapedPathAccepts(t *testing.T) {
	cases := map[string]string{
		"":                                   "",
		"a":                                  "a",
		"1/abc/artifacts/model/MLmodel":      "1/abc/artifacts/model/MLmodel",
		"data/space%20name.txt":              "data/space name.txt",
		"unicode/%C3%A9t%C3%A9.txt":          "unicode/été.txt",
		"a/..b/c..":                          "a/..b/c..",
		"a/.hidden":                          "a/.hidden",
		"a/100%25 done":                      "a/100% done",
		"a/2024-01-01T10:00:00.json":         "a/2024-01-01T10:00:00.json",
		"x/" + strings.Repeat("y", 255):      "x/" + strings.Repeat("y", 255),
		"a%2Fb":                              "a/b",
		"runs/é/%E6%BC%A2%E5%AD%97/file.bin": "runs/é/漢字/file.bin",
		"a;b":                                "a;b",
		"a%23b":                              "a#b",
		"a%3Fb":                              "a?b",
		"a%E2%A7%B8b":                        "a\u29f8b",
		"a%00b":                              "a%00b",
		"a%0ab":                              "ab",
		"a%7fb":                              "a%7fb",
		"a%80b":                              "a\uFFFDb",
		"a%2541":                             "aA",
		"a%25step%2510":                      "a%step%10",
		"img/dog%25step%2510%25timestamp%251796501552107%257203c8d2.png": "img/dog%step%10%timestamp%1796501552107r03c8d2.png",
		"img/dog%25step%2526%25timestamp%251796501552107%25c8a1.png":     "img/dog%step&%timestamp%1796501552107\uFFFDa1.png",
	}
	for in, want := range cases {
		got, err := CleanEscapedPath(in)
		if err != nil || got != want {
			t.Errorf("CleanEscapedPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestURIPath(t *testing.T) {
	cases := []struct {
		uri  string
		want string
		ok   bool
	}{
		{"mlflow-artifacts:/1/abc/artifacts", "1/abc/artifacts", true},
		{"mlflow-artifacts:/0", "0", true},
		{"mlflow-artifacts:/", "", true},
		{"mlflow-artifacts://host:5000/1/abc/artifacts", "1/abc/artifacts", true},
		{"mlflow-artifacts://host:5000", "", true},
		{"http://h:5000/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts", "1/r/artifacts", true},
		{"https://h/pfx/api/2.0/mlflow-artifacts/artifacts/1/a%20b", "1/a b", true},
		{"mlflow-artifacts:/1/../../etc", "", false},
		{"mlflow-artifacts:/1/%2e%2e/x", "", false},
		{"s3://bucket/x", "", false},
		{"file:///etc/passwd", "", false},
		{"/abs/path", "", false},
		{"http://h/other/path", "", false},
	}
	for _, c := range cases {
		got, ok := URIPath(c.uri)
		if got != c.want || ok != c.ok {
			t.Errorf("URIPath(%q) = %q, %v; want %q, %v", c.uri, got, ok, c.want, c.ok)
		}
	}
}
