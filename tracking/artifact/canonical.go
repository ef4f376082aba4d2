package artifact

import (
	"strings"
	"unicode/utf8"
)

// maxDecodeRounds is MLflow's bound on decoding rounds (mlflow/utils/
// uri.py _decode): a path still changing after that many is refused.
const maxDecodeRounds = 10

// canonical returns MLflow's canonical form of an artifact path that HTTP
// has decoded once: what mlflow/utils/uri.py validate_path_is_safe
// returns, and what MLflow's server stores and looks up. Invalid UTF-8 is
// first replaced as Werkzeug does (U+FFFD per maximal invalid
// subsequence); then the path is decoded until it stops changing, one
// round being Python's urllib.parse.unquote followed by a
// urlparse/urlunparse round trip (which drops leading C0 controls and
// spaces and every tab, CR and LF, lowercases a scheme, and drops an empty
// ";params", "?query" or "#fragment"); last, C0 controls and DEL are
// escaped as lowercase "%xx". ok is false for a path that never settles
// (MLflow fails with a server error) or that urlunparse would make
// absolute (a "//netloc", or a scheme such as "http:" or "file:" that
// gets one).
func canonical(p string) (string, bool) {
	u := pyReplaceInvalid(p)
	for range maxDecodeRounds {
		next, ok := pyURLRoundTrip(pyUnquote(u))
		if !ok {
			return "", false
		}
		if next == u {
			return escapeControls(u), true
		}
		u = next
	}
	return "", false
}

// pyUnquote is urllib.parse.unquote: in every run of ASCII characters,
// each "%XX" becomes the byte XX and the bytes are read as UTF-8 with
// invalid sequences replaced; other characters pass through.
func pyUnquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		j := i
		if s[i] >= utf8.RuneSelf {
			for j < len(s) && s[j] >= utf8.RuneSelf {
				j++
			}
			b.WriteString(s[i:j])
		} else {
			for j < len(s) && s[j] < utf8.RuneSelf {
				j++
			}
			b.WriteString(pyReplaceInvalid(lenientUnescape(s[i:j])))
		}
		i = j
	}
	return b.String()
}

// pyReplaceInvalid replaces each maximal invalid UTF-8 subsequence of s by
// U+FFFD, as Python's bytes.decode("utf-8", "replace") does (Go's
// strings.ToValidUTF8 would merge adjacent ones).
func pyReplaceInvalid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			i++
			continue
		}
		n, lo, hi := 0, byte(0x80), byte(0xBF)
		switch {
		case 0xC2 <= c && c <= 0xDF:
			n = 1
		case c == 0xE0:
			n, lo = 2, 0xA0
		case 0xE1 <= c && c <= 0xEC, c == 0xEE, c == 0xEF:
			n = 2
		case c == 0xED:
			n, hi = 2, 0x9F
		case c == 0xF0:
			n, lo = 3, 0x90
		case 0xF1 <= c && c <= 0xF3:
			n = 3
		case c == 0xF4:
			n, hi = 3, 0x8F
		}
		j := i + 1
		for k := 0; k < n && j < len(s); k++ {
			d := s[j]
			if k == 0 && (d < lo || d > hi) || k > 0 && (d < 0x80 || d > 0xBF) {
				break
			}
			j++
		}
		if n > 0 && j-i == n+1 {
			b.WriteString(s[i:j])
		} else {
			b.WriteRune(utf8.RuneError)
		}
		i = j
	}
	return b.String()
}

// Schemes that urllib.parse treats specially (its uses_params and
// uses_netloc lists).
var (
	pyUsesParams = map[string]bool{"": true, "ftp": true, "hdl": true, "prospero": true, "http": true, "imap": true,
		"https": true, "shttp": true, "rtsp": true, "rtsps": true, "rtspu": true, "sip": true, "sips": true,
		"mms": true, "sftp": true, "tel": true}
	pyUsesNetloc = map[string]bool{"ftp": true, "http": true, "gopher": true, "nntp": true, "telnet": true,
		"imap": true, "wais": true, "file": true, "mms": true, "https": true, "shttp": true, "snews": true,
		"prospero": true, "rtsp": true, "rtsps": true, "rtspu": true, "rsync": true, "svn": true, "svn+ssh": true,
		"sftp": true, "nfs": true, "git": true, "git+ssh": true, "ws": true, "wss": true, "itms-services": true}
)

// pyURLRoundTrip is urlunparse(urlparse(s)) for a relative path. It
// reports false where the result would start with "//" or get one after a
// scheme: such a path is absolute or has an empty segment.
func pyURLRoundTrip(s string) (string, bool) {
	s = strings.TrimLeft(s, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"+
		"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	if strings.ContainsAny(s, "\t\r\n") {
		s = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(s)
	}
	scheme, rest := "", s
	if i := strings.IndexByte(s, ':'); i > 0 && isASCIILetter(s[0]) && schemeChars(s[:i]) {
		scheme, rest = strings.ToLower(s[:i]), s[i+1:]
	}
	if strings.HasPrefix(rest, "//") || scheme != "" && pyUsesNetloc[scheme] {
		return "", false
	}
	rest, fragment, _ := strings.Cut(rest, "#")
	p, query, _ := strings.Cut(rest, "?")
	if pyUsesParams[scheme] {
		last := max(strings.LastIndexByte(p, '/'), 0)
		if j := strings.IndexByte(p[last:], ';'); j >= 0 && last+j == len(p)-1 {
			p = p[:len(p)-1] // an empty ";params" is dropped
		}
	}
	if scheme != "" {
		p = scheme + ":" + p
	}
	if query != "" {
		p += "?" + query
	}
	if fragment != "" {
		p += "#" + fragment
	}
	return p, true
}

func isASCIILetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func schemeChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isASCIILetter(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// escapeControls writes C0 controls and DEL as lowercase "%xx", as
// mlflow/utils/uri.py _escape_control_characters does.
func escapeControls(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	const digits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			b.WriteByte('%')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
