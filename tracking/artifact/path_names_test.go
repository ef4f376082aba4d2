package artifact_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact/artifacttest"
)

// TestCleanPathLegalNames: every name MLflow's clients write, and the
// nasty-but-legal ones, come out as their canonical (stored) form however
// the client escaped them, and as query values; the canonical form is a
// fixed point.
func TestCleanPathLegalNames(t *testing.T) {
	const root = "1/abc/artifacts/"
	for _, name := range artifacttest.LegalNames() {
		want := root + name.Stored
		for _, in := range []string{name.Upload, name.Stored} {
			if got, err := artifact.CleanPath(root + in); err != nil || got != want {
				t.Errorf("CleanPath(%q) = %q, %v; want %q", root+in, got, err, want)
			}
		}
		for _, esc := range []string{artifacttest.EscapeStrict(name.Upload), artifacttest.EscapeLikeRequests(name.Upload),
			artifacttest.EscapeStrict(name.Stored), artifacttest.EscapeLikeRequests(name.Stored)} {
			if got, err := artifact.CleanEscapedPath(root + esc); err != nil || got != want {
				t.Errorf("CleanEscapedPath(%q) = %q, %v; want %q", root+esc, got, err, want)
			}
		}
		if got, err := artifact.CleanEscapedPath(artifacttest.EscapeStrict(name.Upload)); err != nil ||
			got != strings.TrimLeft(name.Stored, " ") {
			t.Errorf("CleanEscapedPath(%q) = %q, %v; want %q", artifacttest.EscapeStrict(name.Upload), got, err, name.Stored)
		}
	}
}

// TestCleanPathAttacks: every attack is refused with MLflow's 400
// INVALID_PARAMETER_VALUE "Invalid path", as a request path and, where it
// decodes, as a query value (decoded once by net/url).
func TestCleanPathAttacks(t *testing.T) {
	for _, esc := range artifacttest.Attacks {
		for _, in := range []string{esc, "1/abc/artifacts/" + esc} {
			got, err := artifact.CleanEscapedPath(in)
			if !isInvalidPath(err) {
				t.Errorf("CleanEscapedPath(%q) = %q, %v; want Invalid path", in, got, err)
			}
		}
		if dec, err := url.PathUnescape(esc); err == nil {
			if got, err := artifact.CleanPath(dec); !isInvalidPath(err) {
				t.Errorf("CleanPath(%q) = %q, %v; want Invalid path", dec, got, err)
			}
		}
	}
	for _, esc := range artifacttest.LeadingAttacks {
		if got, err := artifact.CleanEscapedPath(esc); !isInvalidPath(err) {
			t.Errorf("CleanEscapedPath(%q) = %q, %v; want Invalid path", esc, got, err)
		}
		if got, err := artifact.CleanEscapedPath("1/abc/artifacts/" + esc); err != nil {
			t.Errorf("CleanEscapedPath(1/abc/artifacts/%s) = %q, %v; want a plain name", esc, got, err)
		}
	}
}

// TestURIPathAttacks: an artifact location a client recorded (a trace's
// or logged model's artifact URI, a model version's source) holding an
// attack maps to no store path, so trace and model artifact routes never
// reach outside the store; MLflow's own names map through unchanged.
func TestURIPathAttacks(t *testing.T) {
	for _, esc := range artifacttest.Attacks {
		if strings.HasSuffix(esc, "a/") {
			continue // a trailing slash of a directory URI is dropped
		}
		for _, uri := range []string{"mlflow-artifacts:/1/abc/" + esc, "mlflow-artifacts://host:5000/" + esc,
			"http://h/api/2.0/mlflow-artifacts/artifacts/" + esc} {
			if p, ok := artifact.URIPath(uri); ok {
				t.Errorf("URIPath(%q) = %q, want refused", uri, p)
			}
		}
	}
	for _, esc := range artifacttest.LeadingAttacks {
		if p, ok := artifact.URIPath("mlflow-artifacts:/" + esc); ok {
			t.Errorf("URIPath(mlflow-artifacts:/%s) = %q, want refused", esc, p)
		}
	}
	for _, name := range artifacttest.LegalNames() {
		uri := "mlflow-artifacts:/1/abc/artifacts/" + artifacttest.EscapeStrict(name.Stored)
		if p, ok := artifact.URIPath(uri); !ok || p != "1/abc/artifacts/"+name.Stored {
			t.Errorf("URIPath(%q) = %q, %v", uri, p, ok)
		}
	}
}

func isInvalidPath(err error) bool {
	te, ok := tracking.AsError(err)
	return ok && te.Code == tracking.InvalidParameterValue && te.Message == "Invalid path" &&
		te.Code.HTTPStatus() == 400
}

// FuzzCleanEscapedPath checks the canonicaliser's promises on any input:
// an accepted path is relative, has no empty, "." or ".." segment (nor one
// of dots and spaces), no backslash or control character, is valid UTF-8
// within the length limits, is accepted again by CleanPath unchanged and,
// escaped, by CleanEscapedPath unchanged (idempotent), its only escapes
// left are lowercase control escapes, and it stays free of dot segments
// when those are decoded once more.
func FuzzCleanEscapedPath(f *testing.F) {
	for _, v := range append(artifacttest.Attacks, artifacttest.LeadingAttacks...) {
		f.Add(v)
	}
	for _, n := range artifacttest.LegalNames() {
		f.Add(artifacttest.EscapeStrict(n.Upload))
		f.Add(artifacttest.EscapeLikeRequests(n.Upload))
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := artifact.CleanEscapedPath(in)
		if err != nil {
			if !isInvalidPath(err) {
				t.Fatalf("CleanEscapedPath(%q): %v, want Invalid path", in, err)
			}
			return
		}
		if p == "" {
			return
		}
		if !utf8.ValidString(p) || len(p) > artifact.MaxPathLength || strings.HasPrefix(p, "/") {
			t.Fatalf("CleanEscapedPath(%q) = %q", in, p)
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("CleanEscapedPath(%q) = %q holds %U", in, p, r)
			}
		}
		for seg := range strings.SplitSeq(p, "/") {
			if len(seg) > artifact.MaxSegmentLength {
				t.Fatalf("CleanEscapedPath(%q) = %q has segment %q", in, p, seg)
			}
		}
		for seg := range strings.SplitSeq(strings.ReplaceAll(p, "\\", "/"), "/") {
			if seg == "" || strings.Trim(seg, ". ") == "" {
				t.Fatalf("CleanEscapedPath(%q) = %q has segment %q", in, p, seg)
			}
		}
		if again, err := artifact.CleanPath(p); err != nil || again != p {
			t.Fatalf("CleanPath(%q) = %q, %v; not idempotent", p, again, err)
		}
		if esc := artifacttest.EscapeStrict(p); true {
			if again, err := artifact.CleanEscapedPath(esc); err != nil || again != p {
				t.Fatalf("CleanEscapedPath(%q) = %q, %v; want %q back", esc, again, err, p)
			}
		}
		for i := 0; i+2 < len(p); i++ {
			if p[i] == '%' && isHexDigit(p[i+1]) && isHexDigit(p[i+2]) {
				if b, _ := strconv.ParseUint(p[i+1:i+3], 16, 8); (b >= 0x20 && b != 0x7f) || p[i+1:i+3] != strings.ToLower(p[i+1:i+3]) {
					t.Fatalf("CleanEscapedPath(%q) = %q keeps the escape %q", in, p, p[i:i+3])
				}
			}
		}
		if dec, err := url.PathUnescape(p); err == nil {
			for _, seg := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
				if seg == "." || seg == ".." {
					t.Fatalf("CleanEscapedPath(%q) = %q becomes %q decoded again", in, p, dec)
				}
			}
			if strings.HasPrefix(dec, "/") || strings.HasPrefix(dec, "\\") {
				t.Fatalf("CleanEscapedPath(%q) = %q becomes absolute decoded again: %q", in, p, dec)
			}
		}
	})
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
