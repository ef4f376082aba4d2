package api

import (
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// Declarations for nested and repeated messages (logged models, traces).
//
// A nested message is declared like a request, with short field names
// ("dataset_name"); decodeMessage applies the declaration at a path, so its
// errors name each field by its full path ("datasets[0].dataset_name"), as
// MLflow's do. messageList declares a repeated message field whose elements
// are decoded that way, optMessage a singular one. The other declarations
// here are field kinds of these requests: optInt64 (presence matters),
// looseBool, queryBool, paramList, and the checks nonEmptyList and entityTags.

// decodeMessage decodes raw, the nested message at path (a JSON object;
// anything else is an invalid value for path), with q's declaration and
// validate method.
func decodeMessage(raw []byte, path string, q request) error {
	m, err := message(raw, path)
	if err != nil {
		return err
	}
	prefix := path + "."
	obj := make(object, len(m.obj))
	for i, fl := range m.obj {
		obj[i] = field{name: []byte(prefix + string(fl.name)), raw: fl.raw}
	}
	return decodeFields(&fields{obj: obj}, prefixedRequest{q, prefix})
}

// prefixedRequest is a request whose declared names carry a path prefix.
type prefixedRequest struct {
	q      request
	prefix string
}

func (a prefixedRequest) decl() []spec {
	d := a.q.decl()
	for i := range d {
		d[i].name = a.prefix + d[i].name
	}
	return d
}

func (a prefixedRequest) validate() error {
	if v, ok := a.q.(validator); ok {
		return v.validate()
	}
	return nil
}

// messageList declares a repeated message field (_assert_array): each
// element, name[i], is decoded with the declaration of *P. A query string
// cannot carry it: there it counts as absent.
func messageList[T any, P interface {
	*T
	request
}](name string, dst *[]T) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		elems, present, err := f.array(name)
		if err != nil {
			return present, false, err
		}
		var out []T
		if len(elems) > 0 {
			out = make([]T, len(elems))
		}
		for i, raw := range elems {
			if err := decodeMessage(raw, name+"["+strconv.Itoa(i)+"]", P(&out[i])); err != nil {
				return true, false, err
			}
		}
		*dst = out
		return present, false, nil
	}}
}

// optMessage declares a singular message field decoded, when present,
// into a new *P at *dst (nil when absent or null).
func optMessage[T any, P interface {
	*T
	request
}](name string, dst **T) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		v, ok := f.lookup(name)
		if !ok || v.query {
			return false, false, nil
		}
		m := new(T)
		*dst = m
		return true, false, decodeMessage(v.raw, name, P(m))
	}}
}

// looseBool declares a bool field that also takes "true"/"false" (any
// case) as a string; def is its value when absent. Anything else is an
// invalid value.
func looseBool(name string, dst *bool, def bool) spec {
	*dst = def
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		b, ok := (&Params{f: f}).Bool(name)
		if f.has(name) && !ok {
			v, _ := f.lookup(name)
			return true, false, invalidType(name, v)
		}
		if ok {
			*dst = b
		}
		return ok, false, nil
	}}
}

// queryBool declares a bool field as MLflow's _get_request_message reads
// it: in a GET query string "true" or "false" in any case, anything else
// being "Invalid boolean value: <v>, must be 'true' or 'false'."; in a JSON
// body a JSON bool (_assert_bool).
func queryBool(name string, dst *bool) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		v, ok := f.lookup(name)
		if !ok {
			return false, false, nil
		}
		if !v.query {
			b, err := f.boolean(name)
			*dst = b
			return true, false, err
		}
		switch strings.ToLower(v.q[0]) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			return true, false, invalidParam("Invalid boolean value: %s, must be 'true' or 'false'.", v.q[0])
		}
		return true, false, nil
	}}
}

// nonEmptyList is a check refusing an empty list as a missing value
// (where we read a required list as "at least one").
func nonEmptyList(l *[]string) check {
	return func(_ value, path string) error {
		if len(*l) == 0 {
			return missingValue(path)
		}
		return nil
	}
}

// entityTags checks tags of a trace or logged model in place: keys follow
// MLflow's name rules and are at most 250 code points; values are
// truncated to 8000 code points, as MLflow does.
func entityTags(tags []tracking.Tag) error {
	for i := range tags {
		if err := checkTraceTagKey(tags[i].Key); err != nil {
			return err
		}
		tags[i].Value = validate.TruncateTagValue(tags[i].Value)
	}
	return nil
}

// paramList declares a repeated {key, value} param field (logged model
// params), checked as run params are (values longer than 6000 code points
// are truncated) once read.
func paramList(name string, dst *[]tracking.Param) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		present := f.has(name)
		tags, err := readTags(f, name)
		if err != nil {
			return present, false, err
		}
		params := make([]tracking.Param, 0, len(tags))
		for i, t := range tags {
			p := tracking.Param{Key: t.Key, Value: t.Value}
			if err := validate.Param(&p, name+"["+strconv.Itoa(i)+"]."); err != nil {
				return present, false, err
			}
			params = append(params, p)
		}
		*dst = params
		return present, false, nil
	}}
}
