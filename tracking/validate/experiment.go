package validate

import (
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// ExperimentName checks an experiment name as MLflow's
// _validate_experiment_name does: non-empty (MLflow's message is "Invalid
// experiment name: " followed by the empty name in single quotes) and at
// most 500 code points ("'name' exceeds the maximum length of 500
// characters"). The handlers' required-field check ("Missing value for
// required parameter 'name'") runs before it, so the empty case is only a
// safety net.
func ExperimentName(name string) error {
	if name == "" {
		return &tracking.Error{Code: invalidParamValue, Message: "Invalid experiment name: ''"}
	}
	if exceedsRunes(name, MaxExperimentNameLength) {
		return exceedsMaxLength("name", MaxExperimentNameLength)
	}
	return nil
}

// ExperimentTag checks an experiment tag as MLflow's
// _validate_experiment_tag does: the name rules on the key (parameter
// 'key'; an empty key is "Missing value for required parameter 'key'"),
// then key ≤ 250 ("'key' exceeds the maximum length of 250 characters") and
// value ≤ 5000 code points ("'value' exceeds the maximum length of 5000
// characters"). Values are never truncated.
func ExperimentTag(key, value string) error {
	if err := checkName(key, elemPath{}, "key"); err != nil {
		return err
	}
	if exceedsRunes(key, MaxExperimentTagKeyLength) {
		return exceedsMaxLength("key", MaxExperimentTagKeyLength)
	}
	if exceedsRunes(value, MaxExperimentTagValueLength) {
		return exceedsMaxLength("value", MaxExperimentTagValueLength)
	}
	return nil
}

// ArtifactLocation checks the artifact_location of a create-experiment
// request, in MLflow's order:
//
//   - parsed as Python's urllib.parse.urlparse does, it may have no fragment
//     and no ;params ("'artifact_location' URL can't include fragments or
//     params.");
//   - its query, percent-decoded until it stops changing, may not contain
//     ".." ("Invalid query string");
//   - it may not be a runs: URI ("Artifact location cannot be a runs:/ URI.
//     Given: '<loc>'"). MLflow 2.22.1 checks this in the client only;
//     later servers check it too.
//
// An empty location is valid (the server picks one). The length limit needs
// the resolved location; see ArtifactLocationLength.
func ArtifactLocation(loc string) error {
	u := pyURLParse(loc)
	if u.fragment != "" || u.params != "" {
		return &tracking.Error{Code: invalidParamValue, Message: "'artifact_location' URL can't include fragments or params."}
	}
	if queryHasTraversal(u.query) {
		return &tracking.Error{Code: invalidParamValue, Message: "Invalid query string"}
	}
	if strings.HasPrefix(loc, "runs:") {
		return tracking.Errorf(invalidParamValue, "Artifact location cannot be a runs:/ URI. Given: '%s'", loc)
	}
	return nil
}

// ArtifactLocationLength checks that an explicit artifact location, after
// local paths have been made absolute, has at most 2048 code points
// (MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH's default), with MLflow's message.
// MLflow applies it after ExperimentName.
func ArtifactLocationLength(loc string) error {
	if exceedsRunes(loc, MaxArtifactLocationLength) {
		return &tracking.Error{
			Code: invalidParamValue,
			Message: "Invalid artifact path length. The length of the artifact path cannot be greater than " +
				strconv.Itoa(MaxArtifactLocationLength) + " characters. To configure this limit, please set the " +
				"MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH environment variable.",
		}
	}
	return nil
}

// pyURL holds the parts of urllib.parse.urlparse this package needs.
type pyURL struct {
	scheme, netloc, path, params, query, fragment string
}

// usesParams is urllib.parse.uses_params: the schemes whose last path
// segment may carry ;params.
var usesParams = map[string]bool{
	"": true, "ftp": true, "hdl": true, "prospero": true, "http": true, "imap": true,
	"https": true, "shttp": true, "rtsp": true, "rtspu": true, "sip": true, "sips": true,
	"mms": true, "sftp": true, "tel": true,
}

// pyURLParse splits s as Python 3.11's urllib.parse.urlparse does.
func pyURLParse(s string) pyURL {
	var u pyURL
	// Leading C0 controls and spaces are stripped; tab, CR and LF removed.
	s = strings.TrimLeft(s, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	if strings.ContainsAny(s, "\t\r\n") {
		s = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(s)
	}
	if i := strings.IndexByte(s, ':'); i > 0 && isASCIILetter(s[0]) {
		ok := true
		for j := 0; j < i; j++ {
			c := s[j]
			if !(isASCIILetter(c) || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
				ok = false
				break
			}
		}
		if ok {
			u.scheme, s = strings.ToLower(s[:i]), s[i+1:]
		}
	}
	if strings.HasPrefix(s, "//") {
		end := len(s)
		if i := strings.IndexAny(s[2:], "/?#"); i >= 0 {
			end = 2 + i
		}
		u.netloc, s = s[2:end], s[end:]
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s, u.fragment = s[:i], s[i+1:]
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s, u.query = s[:i], s[i+1:]
	}
	if usesParams[u.scheme] && strings.IndexByte(s, ';') >= 0 {
		i := strings.IndexByte(s, ';')
		if slash := strings.LastIndexByte(s, '/'); slash >= 0 {
			i = strings.IndexByte(s[slash:], ';')
			if i >= 0 {
				i += slash
			}
		}
		if i >= 0 {
			s, u.params = s[:i], s[i+1:]
		}
	}
	u.path = s
	return u
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// queryHasTraversal reports whether q, percent-decoded repeatedly (at most
// ten times, as MLflow's _decode), contains "..". A '.' is never consumed
// by decoding, so ".." seen at any stage stays. A query that still changes
// after ten rounds is refused too (MLflow fails with a 500 there).
func queryHasTraversal(q string) bool {
	for range 10 {
		if strings.Contains(q, "..") {
			return true
		}
		d := percentDecode(q)
		if d == q {
			return false
		}
		q = d
	}
	return true
}

// percentDecode replaces each valid %XX with its byte, leaving malformed
// escapes as they are (urllib.parse.unquote, minus its UTF-8 repair, which
// cannot create or remove a '.').
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
