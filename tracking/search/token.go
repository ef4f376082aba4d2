package search

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// EncodePageToken returns MLflow's offset page token: standard base64 of
// {"offset": N} as Python's json.dumps writes it (with the space).
func EncodePageToken(offset int) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"offset": ` + strconv.Itoa(offset) + `}`))
}

// DecodePageToken parses an offset page token. The empty token means
// offset 0. Errors carry MLflow's messages ("Invalid page token, could not
// base64-decode", "..., decoded value=...", "..., parsed value=...",
// "..., not stringable ..."). Like MLflow, an offset of 0 is refused (it
// is never issued); so is a negative one.
func DecodePageToken(token string) (int, error) {
	if token == "" {
		return 0, nil
	}
	raw, obj, err := decodeTokenObject(token)
	if err != nil {
		return 0, err
	}
	return offsetOf(raw, obj)
}

// decodeTokenObject base64-decodes a page token and parses it as one JSON
// object, with MLflow's messages for each failure.
func decodeTokenObject(token string) ([]byte, map[string]any, error) {
	raw, ok := pyB64Decode(token)
	if !ok {
		return nil, nil, errorf("Invalid page token, could not base64-decode")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, errorf("Invalid page token, decoded value=%s", pyBytesRepr(raw))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errorf("Invalid page token, decoded value=%s", pyBytesRepr(raw))
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return nil, nil, errorf("Invalid page token, parsed value=%s", string(raw))
	}
	return raw, obj, nil
}

// offsetOf reads the offset of a decoded MLflow offset token.
func offsetOf(raw []byte, obj map[string]any) (int, error) {
	off, present := obj["offset"]
	if !present || isFalsy(off) {
		return 0, errorf("Invalid page token, parsed value=%s", string(raw))
	}
	var n int64
	switch o := off.(type) {
	case json.Number:
		i, err := strconv.ParseInt(string(o), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(o), 64)
			if ferr != nil || math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) > math.MaxInt64/2 {
				return 0, errorf("Invalid page token, not stringable %s", o)
			}
			i = int64(f) // Python's int() truncates floats.
		}
		n = i
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(o), 10, 64)
		if err != nil {
			return 0, errorf("Invalid page token, not stringable %s", o)
		}
		n = i
	case bool:
		n = 1 // only true gets here; Python's int(True) is 1
	default:
		return 0, errorf("Invalid page token, not stringable %s", fmt.Sprint(o))
	}
	if n <= 0 || n > math.MaxInt32*1024 {
		return 0, errorf("Invalid page token, parsed value=%s", string(raw))
	}
	return int(n), nil
}

func isFalsy(v any) bool {
	switch o := v.(type) {
	case nil:
		return true
	case bool:
		return !o
	case string:
		return o == ""
	case json.Number:
		f, err := strconv.ParseFloat(string(o), 64)
		return err == nil && f == 0
	case []any:
		return len(o) == 0
	case map[string]any:
		return len(o) == 0
	}
	return false
}

// pyB64Decode decodes like Python's base64.b64decode without validation:
// characters outside the standard alphabet are discarded, and padding is
// optional at the end.
func pyB64Decode(s string) ([]byte, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return nil, false // Python refuses non-ASCII input
		}
		if isB64Alpha(c) {
			b.WriteByte(c)
		}
	}
	clean := b.String()
	if len(clean)%4 == 1 {
		return nil, false
	}
	// Python requires '=' padding to complete the last quantum.
	pad := 0
	for i := len(s) - 1; i >= 0 && !isB64Alpha(s[i]); i-- {
		if s[i] == '=' {
			pad++
		}
	}
	if need := (4 - len(clean)%4) % 4; pad < need {
		return nil, false
	}
	out, err := base64.RawStdEncoding.DecodeString(clean)
	if err != nil {
		return nil, false
	}
	return out, true
}

// pyBytesRepr renders bytes roughly as Python's repr(bytes) does.
func pyBytesRepr(b []byte) string {
	var sb strings.Builder
	sb.WriteString("b'")
	for _, c := range b {
		switch {
		case c == '\\' || c == '\'':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte('\'')
	return sb.String()
}

func isB64Alpha(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}
