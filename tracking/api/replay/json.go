package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Value is a JSON value that keeps the order of object members, so that a
// request body is re-sent the way it was recorded (Python's json.dumps
// order and spacing) and diagnostics show fields in document order.
type Value struct {
	Kind Kind
	Obj  []Member    // KindObject
	Arr  []*Value    // KindArray
	Str  string      // KindString
	Num  json.Number // KindNumber
	Bool bool        // KindBool
}

// Member is one member of a JSON object.
type Member struct {
	Key   string
	Value *Value
}

// Kind is a JSON type.
type Kind int

// JSON types.
const (
	KindNull Kind = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

func (k Kind) String() string {
	return [...]string{"null", "bool", "number", "string", "array", "object"}[k]
}

// Get returns the value of member key (the last one if repeated).
func (v *Value) Get(key string) (*Value, bool) {
	if v == nil || v.Kind != KindObject {
		return nil, false
	}
	for i := len(v.Obj) - 1; i >= 0; i-- {
		if v.Obj[i].Key == key {
			return v.Obj[i].Value, true
		}
	}
	return nil, false
}

// ParseJSON parses one JSON document into a Value.
func ParseJSON(b []byte) (*Value, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (*Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	return fromToken(dec, tok)
}

func fromToken(dec *json.Decoder, tok json.Token) (*Value, error) {
	switch t := tok.(type) {
	case nil:
		return &Value{Kind: KindNull}, nil
	case bool:
		return &Value{Kind: KindBool, Bool: t}, nil
	case json.Number:
		return &Value{Kind: KindNumber, Num: t}, nil
	case string:
		return &Value{Kind: KindString, Str: t}, nil
	case json.Delim:
		switch t {
		case '{':
			v := &Value{Kind: KindObject, Obj: []Member{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				val, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				v.Obj = append(v.Obj, Member{key, val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		case '[':
			v := &Value{Kind: KindArray, Arr: []*Value{}}
			for dec.More() {
				val, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				v.Arr = append(v.Arr, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	return nil, errors.New("unexpected JSON token")
}

// Dumps serializes v as Python's json.dumps does by default (", " and ": "
// separators, non-ASCII escaped), which is how the recordings' request
// bodies were sent.
func (v *Value) Dumps() []byte { return v.appendPy(nil) }

func (v *Value) appendPy(b []byte) []byte {
	switch v.Kind {
	case KindNull:
		return append(b, "null"...)
	case KindBool:
		if v.Bool {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case KindNumber:
		return append(b, v.Num...)
	case KindString:
		return appendPyString(b, v.Str)
	case KindArray:
		b = append(b, '[')
		for i, e := range v.Arr {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = e.appendPy(b)
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i, m := range v.Obj {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyString(b, m.Key)
			b = append(b, ": "...)
			b = m.Value.appendPy(b)
		}
		return append(b, '}')
	}
}

func appendPyString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, `\"`...)
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			b = append(b, '\\', 'u', hexd[r>>12&0xf], hexd[r>>8&0xf], hexd[r>>4&0xf], hexd[r&0xf])
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			for _, x := range []rune{r1, r2} {
				b = append(b, '\\', 'u', hexd[x>>12&0xf], hexd[x>>8&0xf], hexd[x>>4&0xf], hexd[x&0xf])
			}
		default:
			b = append(b, byte(r))
		}
	}
	return append(b, '"')
}

// numEqual compares JSON numbers numerically (1 equals 1.0).
func numEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	ai, aerr := strconv.ParseInt(string(a), 10, 64)
	bi, berr := strconv.ParseInt(string(b), 10, 64)
	if aerr == nil && berr == nil {
		return ai == bi
	}
	af, aerr := strconv.ParseFloat(string(a), 64)
	bf, berr := strconv.ParseFloat(string(b), 64)
	return aerr == nil && berr == nil && af == bf
}

// canon is a canonical text of v with object keys sorted, volatile fields
// masked and numbers normalized, for multiset comparisons.
func canon(v *Value) string {
	var sb strings.Builder
	writeCanon(&sb, v)
	return sb.String()
}

func writeCanon(sb *strings.Builder, v *Value) {
	switch v.Kind {
	case KindObject:
		ms := make([]Member, len(v.Obj))
		copy(ms, v.Obj)
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].Key < ms[j].Key })
		sb.WriteByte('{')
		for i, m := range ms {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.Write(appendPyString(nil, m.Key))
			sb.WriteByte(':')
			if volatileKeys[m.Key] {
				sb.WriteString(`"<volatile>"`)
				continue
			}
			writeCanon(sb, m.Value)
		}
		sb.WriteByte('}')
	case KindArray:
		sb.WriteByte('[')
		for i, e := range v.Arr {
			if i > 0 {
				sb.WriteByte(',')
			}
			writeCanon(sb, e)
		}
		sb.WriteByte(']')
	case KindNumber:
		if f, err := strconv.ParseFloat(string(v.Num), 64); err == nil && !math.IsInf(f, 0) {
			sb.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		} else {
			sb.WriteString(string(v.Num))
		}
	default:
		sb.Write(v.appendPy(nil))
	}
}

// short renders v for diagnostics, cut to n bytes.
func short(v *Value, n int) string {
	if v == nil {
		return "<absent>"
	}
	s := string(v.appendPy(nil))
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func (v *Value) clone() *Value {
	if v == nil {
		return nil
	}
	c := *v
	if v.Obj != nil {
		c.Obj = make([]Member, len(v.Obj))
		for i, m := range v.Obj {
			c.Obj[i] = Member{m.Key, m.Value.clone()}
		}
	}
	if v.Arr != nil {
		c.Arr = make([]*Value, len(v.Arr))
		for i, e := range v.Arr {
			c.Arr[i] = e.clone()
		}
	}
	return &c
}
