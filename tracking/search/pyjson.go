package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pyjson"
)

// Python's json.dumps text of JSON values. MLflow's SQL store keeps an
// assessment's value as json.dumps of the Python value
// (SqlAssessments.from_mlflow_entity) and feedback and expectation
// clauses compare that text, so the stores rebuild it: separators ", " and
// ": ", non-ASCII escaped as \uXXXX (ensure_ascii), floats in Python's
// repr.

// PyJSONString is json.dumps of a Python string.
func PyJSONString(s string) string { return string(pyjson.AppendString(nil, s)) }

// PyJSON re-renders the JSON text raw as json.dumps renders the Python
// value json.loads (floatNumbers false) or protobuf's MessageToDict of a
// google.protobuf.Value (floatNumbers true: every number is a double,
// shown as a float) makes of it. Object keys keep their order.
func PyJSON(raw []byte, floatNumbers bool) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := decodeOrdered(dec, &v); err != nil {
		return "", fmt.Errorf("decode JSON value: %w", err)
	}
	var b strings.Builder
	if err := writePy(&b, v, floatNumbers); err != nil {
		return "", err
	}
	return b.String(), nil
}

// pyObject is a JSON object with its keys in document order.
type pyObject struct {
	keys []string
	vals []any
}

// decodeOrdered reads one JSON value, keeping object key order.
func decodeOrdered(dec *json.Decoder, out *any) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := &pyObject{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, ok := kt.(string)
				if !ok {
					return fmt.Errorf("object key %v", kt)
				}
				var v any
				if err := decodeOrdered(dec, &v); err != nil {
					return err
				}
				// A repeated key keeps its first position, the last value
				// (Python's dict).
				replaced := false
				for i, ek := range obj.keys {
					if ek == k {
						obj.vals[i], replaced = v, true
						break
					}
				}
				if !replaced {
					obj.keys = append(obj.keys, k)
					obj.vals = append(obj.vals, v)
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			*out = obj
		case '[':
			list := []any{}
			for dec.More() {
				var v any
				if err := decodeOrdered(dec, &v); err != nil {
					return err
				}
				list = append(list, v)
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			*out = list
		default:
			return fmt.Errorf("unexpected %v", t)
		}
	default:
		*out = tok
	}
	return nil
}

func writePy(b *strings.Builder, v any, floatNumbers bool) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		b.Write(pyjson.AppendString(nil, x))
	case json.Number:
		s := string(x)
		if !floatNumbers && !strings.ContainsAny(s, ".eE") {
			// A Python int: arbitrary precision, written as is ("-0" is 0).
			if s == "-0" {
				s = "0"
			}
			b.WriteString(s)
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !math.IsInf(f, 0) {
			return fmt.Errorf("number %s: %w", s, err)
		}
		b.Write(pyjson.AppendFloat(nil, f))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writePy(b, e, floatNumbers); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case *pyObject:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.Write(pyjson.AppendString(nil, k))
			b.WriteString(": ")
			if err := writePy(b, x.vals[i], floatNumbers); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("unexpected JSON value %T", v)
	}
	return nil
}
