package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/validate"
)

// Declared request decoding.
//
// MLflow's handlers declare each request message's checks as a table next
// to the handler (`_get_request_message(Msg(), schema={"name":
// [_assert_string, _assert_required], ...})`) and let the store check the
// rest. This file is the same idea in Go: a request message is a struct
// whose decl method lists its fields, in MLflow's schema order, each bound
// to the struct field it fills; decode applies the list to a JSON body or a
// GET query string through the fields/value machinery of decode.go (which
// already reproduces MLflow's messages); an optional validate method then
// runs the store-level checks, in the store's order.
//
// For each declared field, in declaration order, decode:
//
//  1. reads it if present: a value of the wrong type is MLflow's "Invalid
//     value ... Hint: Value was of type ..." (_assert_string,
//     _assert_intlike, _assert_array, ...); an absent field keeps the
//     declared default;
//  2. if declared required (req), refuses it absent or empty ("Missing value
//     for required parameter '<name>'.", MLflow's _assert_required);
//  3. runs its checks, in order (MLflow's other schema functions, e.g.
//     `lambda x: _assert_less_than_or_equal(int(x), 1000)` is atMost(1000)).
//
// MLflow lists _assert_required before or after the type check depending
// on the handler; the only value both of the wrong type and empty is a
// blank string where a number or a list belongs: req makes it missing
// ([_assert_required, <type>]), reqAfterType the invalid-value hint
// ([<type>, _assert_required]). The first failure is the answer. After every field,
// decode calls the request's validate method if it has one (the checks
// MLflow's store makes: name rules, length limits, alias rules, version
// numbers).
//
// A nested message (msg, msgList) is declared the same way and read with
// the same steps; its errors name the field by its path
// ("metrics[3].timestamp", "datasets[0].dataset.name").
//
// Declaring a request:
//
//	// setModelVersionTagRequest is SetModelVersionTag.
//	type setModelVersionTagRequest struct {
//		Name    string
//		Version versionNumber
//		Key     string
//		Value   string
//	}
//
//	func (q *setModelVersionTagRequest) decl() []spec {
//		return []spec{
//			str("name", &q.Name).req(),
//			version(&q.Version),
//			str("key", &q.Key).req(),
//			str("value", &q.Value),
//		}
//	}
//
//	func (q *setModelVersionTagRequest) validate() error {
//		if err := q.Version.parse(); err != nil {
//			return err
//		}
//		return validate.ModelVersionTag(q.Key, q.Value)
//	}
//
// and the handler reads "decode, call the store, answer" (with decodes
// into a new request value and hands it over):
//
//	func (s *Server) setModelVersionTag(w http.ResponseWriter, r *http.Request) error {
//		return with(r, func(q *setModelVersionTagRequest) error {
//			tag := tracking.Tag{Key: q.Key, Value: q.Value}
//			return answerEmpty(w, s.store.SetModelVersionTag(r.Context(), q.Name, q.Version.n, tag))
//		})
//	}
//
// A handler that sets knobs on the request first (below) passes it to
// decodeThen.
//
// decl is called once per decode, on a fresh request value: constructors
// that take a default (int64Field, enumField) store it right away, and a
// handler may set unexported knobs first (registrySearchRequest's limits,
// the set flag shared by set-tag and delete-tag requests).
//
// Field kinds: str (a JSON string), idStr (a string, or a number taken as its
// text: experiment ids), optStr (a string whose presence matters),
// int64Field, boolField, enumField / enumStrField, strList / idList (repeated strings:
// repeated keys in a query), tagList ({key, value} messages), version (a
// model version number), runIDField (run_id or run_uuid), batchRunIDField,
// optInt64, float64Field, msg (a nested message) and msgList (repeated
// messages, each with its own declaration, and the element's validate
// method when it has one; keyValue is the {key, value} one), optMsg (a
// nested message whose presence matters), and custom for anything else (it gets the *fields and the name,
// and reports presence and emptiness). A nested message's errors name its
// fields by path ("metrics[3].key").

// request is a request message that declares its fields.
type request interface {
	// decl lists the message's fields in the order MLflow checks them,
	// each bound to the receiver's field it fills.
	decl() []spec
}

// validator is a request with checks beyond its fields' own: the ones
// MLflow's store makes once the message is parsed.
type validator interface {
	validate() error
}

// spec is one declared field of a request message.
type spec struct {
	name      string
	required  bool
	typeFirst bool // required is checked after the type (reqAfterType)
	// read decodes the field into its destination. present is false when
	// the field is absent (the destination keeps its default); empty is
	// true for a present value that _assert_required refuses (a blank
	// string, also where a number belongs). A required field that is
	// absent or empty is missing even when read also failed.
	read   func(f *fields, name string) (present, empty bool, err error)
	checks []check
}

// check is a schema check on a present field, run after it is read: v is
// its raw value (for MLflow's messages that quote it), path its name.
type check func(v value, path string) error

// req declares the field required: absent or empty is "Missing value for
// required parameter '<name>'." (after the type check, as MLflow's
// [_assert_string, _assert_required]).
func (s spec) req() spec {
	s.required = true
	return s
}

// reqAfterType is req for a field MLflow checks with the type first
// ([_assert_intlike, _assert_required], log-metric's timestamp): a blank
// string where a number belongs is then the invalid-value hint, not
// missing.
func (s spec) reqAfterType() spec {
	s.required, s.typeFirst = true, true
	return s
}

// check appends checks run, in order, after the field is read when it is
// present (MLflow's schema functions beyond type and required-ness).
func (s spec) check(fns ...check) spec {
	s.checks = append(s.checks[:len(s.checks):len(s.checks)], fns...)
	return s
}

// decode reads r's request message (the query string of a GET that has
// one, else the JSON body) into q, then validates it.
func decode(r *http.Request, q request) error {
	f, err := requestFields(r)
	if err != nil {
		return err
	}
	return decodeFields(f, q)
}

// decodeFields applies q's declaration to f, then q's validate method.
func decodeFields(f *fields, q request) error {
	if err := apply(f, q.decl()); err != nil {
		return err
	}
	if v, ok := q.(validator); ok {
		return v.validate()
	}
	return nil
}

// apply reads each declared field from f, in order (see decode).
func apply(f *fields, specs []spec) error {
	for _, s := range specs {
		present, empty, err := s.read(f, s.name)
		if err != nil && s.typeFirst {
			return err
		}
		if s.required && (!present || empty) {
			return missingValue(s.name)
		}
		if err != nil {
			return err
		}
		if !present {
			continue
		}
		if len(s.checks) > 0 {
			v, _ := f.lookup(s.name)
			for _, c := range s.checks {
				if err := c(v, s.name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// str declares a string field (MLflow's _assert_string): a JSON string, or
// a query value.
func str(name string, dst *string) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		s, ok, err := f.str(name)
		*dst = s
		return ok, err == nil && s == "", err
	}}
}

// idStr declares a string field that also takes a JSON number as its text, as
// MLflow does for experiment ids (_stringify_all_experiment_ids) and model
// version numbers.
func idStr(name string, dst *string) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		s, ok, err := f.strAt(name, name, true)
		*dst = s
		return ok, err == nil && s == "", err
	}}
}

// optStr declares a string field whose presence matters (protobuf's
// HasField): *dst is nil when absent.
func optStr(name string, dst **string) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		s, ok, err := f.str(name)
		if ok && err == nil {
			*dst = &s
		}
		return ok, err == nil && s == "", err
	}}
}

// int64Field declares an int64 field (_assert_intlike): a JSON number or a
// string holding an integer, as protobuf's JSON parser takes. def is its
// value when absent.
//
// A blank value ("" in a body or a query) is empty: a required number given
// as "" is missing, as for a string; an optional one fails the type check.
func int64Field(name string, dst *int64, def int64) spec {
	*dst = def
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		n, ok, err := f.int64(name)
		if ok && err == nil {
			*dst = n
		}
		return ok, isBlank(f, name), err
	}}
}

// optInt64 is int64Field for a field whose presence matters (protobuf's
// HasField): *dst is nil when absent.
func optInt64(name string, dst **int64) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		n, ok, err := f.int64(name)
		if ok && err == nil {
			*dst = &n
		}
		return ok, isBlank(f, name), err
	}}
}

// float64Field declares a double field (_assert_floatlike): a JSON number,
// or a string Python's float() or protobuf's parser takes ("NaN",
// "Infinity", " 1.5 "). A blank value is empty, as for int64Field.
func float64Field(name string, dst *float64) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		x, ok, err := f.float(name, name)
		if ok && err == nil {
			*dst = x
		}
		return ok, isBlank(f, name), err
	}}
}

// isBlank reports whether the field is the empty string.
func isBlank(f *fields, name string) bool {
	v, ok := f.lookup(name)
	if !ok {
		return false
	}
	if v.query {
		return v.q[0] == ""
	}
	return string(v.raw) == `""`
}

// atMost is MLflow's `lambda x: _assert_less_than_or_equal(int(x), limit)`
// without a message: a larger value is refused with the invalid-value hint
// ("Invalid value 1001 for parameter 'max_results' supplied:  Hint: Value
// was of type 'int'.").
func atMost(n *int64, limit int64) check {
	return func(v value, path string) error {
		if *n <= limit {
			return nil
		}
		return invalidType(path, v)
	}
}

// boolField declares a bool field: a JSON bool in a body (_assert_bool);
// in a GET query "true" or "false" in any case, anything else being
// "Invalid boolean value: <v>, must be 'true' or 'false'." as MLflow's
// _get_request_message answers.
func boolField(name string, dst *bool) spec { return boolSpec(name, dst, false) }

// looseBool is boolField for a nested field that also takes "true" or
// "false" (any case) as a JSON string; def is its value when absent.
func looseBool(name string, dst *bool, def bool) spec {
	*dst = def
	return boolSpec(name, dst, true)
}

func boolSpec(name string, dst *bool, stringsOK bool) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		v, ok := f.lookup(name)
		if !ok {
			return false, false, nil
		}
		text := string(v.raw)
		switch {
		case v.query:
			text = v.q[0]
		case stringsOK && kindOf(v.raw) == kindString:
			text, _ = decodeString(v.raw)
		case kindOf(v.raw) != kindBool:
			return true, false, invalidType(name, v)
		}
		switch strings.ToLower(text) {
		case "true", "false":
			*dst = strings.EqualFold(text, "true")
			return true, false, nil
		}
		if v.query {
			return true, false, invalidParam("Invalid boolean value: %s, must be 'true' or 'false'.", text)
		}
		return true, false, invalidType(name, v)
	}}
}

// enumField declares an enum field given by name or number (see
// fields.enum); def is its value when absent or ignored. An unknown name is
// ignored (parse_dict's ignore_unknown_fields). An unknown number fails
// MLflow's parse, leaving the field unset; the schema's type check then
// decides: declare it with enumField where MLflow's schema has
// _assert_intlike or nothing for the field (the number is ignored), with
// enumStrField where it has _assert_string (the number is refused).
func enumField(name string, dst *int, names map[string]int, def int) spec {
	return enumSpec(name, dst, names, def, true)
}

// enumStrField is enumField for a field MLflow's schema checks with
// _assert_string: an unknown number is "Invalid value 9 for parameter
// '<name>' supplied:  Hint: Value was of type 'int'.".
func enumStrField(name string, dst *int, names map[string]int, def int) spec {
	return enumSpec(name, dst, names, def, false)
}

func enumSpec(name string, dst *int, names map[string]int, def int, ignoreUnknownNumber bool) spec {
	*dst = def
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		n, ok, err := f.enum(name, names)
		if err != nil && ignoreUnknownNumber && isIntText(f, name) {
			return false, false, nil
		}
		if ok && err == nil {
			*dst = n
		}
		return ok, false, err
	}}
}

// isIntText reports whether the field is an integer: a JSON number without
// a fraction or a query value int() parses.
func isIntText(f *fields, name string) bool {
	v, ok := f.lookup(name)
	if !ok {
		return false
	}
	text := ""
	switch {
	case v.query:
		text = v.q[0]
	case kindOf(v.raw) == kindNumber:
		text = string(v.raw)
	}
	_, err := strconv.Atoi(strings.TrimSpace(text))
	return err == nil
}

// strList declares a repeated string field (_assert_array,
// _assert_item_type_string): a JSON array of strings, or the key repeated
// in a query string.
//
// A blank string in a body is empty: a required list given as "" is
// missing (MLflow's [_assert_required, _assert_array]).
func strList(name string, dst *[]string) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		l, ok, err := f.strList(name, false)
		*dst = l
		return ok, f.query == nil && isBlank(f, name), err
	}}
}

// idList is strList whose elements may also be JSON numbers (experiment
// ids).
func idList(name string, dst *[]string) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		l, ok, err := f.strList(name, true)
		*dst = l
		return ok, false, err
	}}
}

// tagList declares a repeated {key, value} message field (_assert_array;
// each element's key and value must be strings, neither required).
func tagList(name string, dst *[]tracking.Tag) spec {
	return msgList(name, dst, func(t *tracking.Tag) []spec {
		return []spec{str("key", &t.Key), str("value", &t.Value)}
	})
}

// runIDField declares the required run_id of the run requests, read as
// MLflow's handlers do: run_id, else the legacy run_uuid (see
// fields.runID); both absent or empty is a missing run_id.
func runIDField(dst *string) spec {
	return spec{name: "run_id", read: func(f *fields, _ string) (bool, bool, error) {
		id, err := f.runID()
		*dst = id
		return true, false, err
	}}
}

// batchRunIDField is runIDField for log-batch and log-inputs: MLflow's
// presence check takes run_uuid for run_id, but these handlers then use
// run_id alone, so *dst is run_id (possibly "", which the store's run-id
// check refuses) and run_uuid only has to be a non-empty string.
func batchRunIDField(dst *string) spec {
	return spec{name: "run_id", required: true, read: func(f *fields, name string) (bool, bool, error) {
		id, _, err := f.str(name)
		*dst = id
		if err != nil || id != "" {
			return true, false, err
		}
		legacy, _, err := f.strAt("run_uuid", name, false)
		return true, err == nil && legacy == "", err
	}}
}

// msgList declares a repeated message field (_assert_array): a JSON array
// of objects, each read by the declaration elem returns for its element.
// A field of an element is named in messages by its path
// ("metrics[3].timestamp"); an element that is not an object is an invalid
// value for "<name>[i]". A query string cannot carry messages: there the
// field is absent. elem is called once per list, on a scratch element that
// is reset to its declared defaults before each element is read, so a long
// list costs no declaration per element. An element whose type has a
// validate method is validated once read (its errors are not qualified).
func msgList[T any](name string, dst *[]T, elem func(*T) []spec) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		raws, present, err := f.array(name)
		if err != nil || len(raws) == 0 {
			return present, false, err
		}
		var scratch T
		specs := elem(&scratch)
		zero := scratch
		out := make([]T, len(raws))
		elem := &fields{}
		for i, raw := range raws {
			obj, err := parseObject(raw)
			if err != nil {
				return true, false, invalidType(elemPath(name, i), value{raw: raw})
			}
			scratch, elem.obj = zero, obj
			if err := apply(elem, specs); err != nil {
				return true, false, qualify(err, elemPath(name, i)+".")
			}
			if v, ok := any(&scratch).(validator); ok {
				if err := v.validate(); err != nil {
					return true, false, err
				}
			}
			out[i] = scratch
		}
		*dst = out
		return true, false, nil
	}}
}

// msg declares a nested message field: a JSON object read by decl (null
// is absent; anything else is an invalid value for name). Its fields are
// named by their path ("dataset.name") in messages.
func msg(name string, decl []spec) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		v, ok := f.lookup(name)
		if !ok || v.query {
			return false, false, nil
		}
		obj, err := parseObject(v.raw)
		if err != nil {
			return true, false, invalidType(name, v)
		}
		if err := apply(&fields{obj: obj}, decl); err != nil {
			return true, false, qualify(err, name+".")
		}
		return true, false, nil
	}}
}

// optMsg is msg for a field whose presence matters (protobuf's HasField):
// *dst is a new message read by decl, nil when absent.
func optMsg[T any](name string, dst **T, decl func(*T) []spec) spec {
	return spec{name: name, read: func(f *fields, name string) (bool, bool, error) {
		if v, ok := f.lookup(name); !ok || v.query {
			return false, false, nil
		}
		*dst = new(T)
		return msg(name, decl(*dst)).read(f, name)
	}}
}

func elemPath(list string, i int) string { return list + "[" + strconv.Itoa(i) + "]" }

// qualify prefixes the parameter an error of a nested message names
// ("parameter 'key'" becomes "parameter 'metrics[3].key'"). The parameter
// is the last one quoted: a value quoted in the message comes before it.
func qualify(err error, prefix string) error {
	te, ok := tracking.AsError(err)
	if !ok {
		return err
	}
	const mark = "parameter '"
	i := strings.LastIndex(te.Message, mark)
	if i < 0 {
		return err
	}
	i += len(mark)
	return &tracking.Error{Code: te.Code, Message: te.Message[:i] + prefix + te.Message[i:]}
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

// paramList declares a repeated {key, value} param field (logged model
// params), checked as run params are (values longer than 6000 code points
// are truncated) once read.
func paramList(name string, dst *[]tracking.Param) spec {
	return msgList(name, dst, func(p *tracking.Param) []spec {
		return []spec{str("key", &p.Key), str("value", &p.Value)}
	}).check(func(_ value, path string) error {
		for i := range *dst {
			if err := validate.Param(&(*dst)[i], elemPath(path, i)+"."); err != nil {
				return err
			}
		}
		return nil
	})
}

// keyValue declares the fields of a {key, value} message whose key is
// required (params and tags of log-batch, set-tag, log-parameter).
func keyValue(key, val *string) []spec {
	return []spec{str("key", key).req(), str("value", val)}
}

// custom declares a field read by fn, for what the kinds above do not
// cover (fn reports presence and emptiness as spec.read does).
func custom(name string, fn func(f *fields, name string) (present, empty bool, err error)) spec {
	return spec{name: name, read: fn}
}

// versionNumber is a model version number as MLflow reads it: the request
// carries it as a string (a number is taken as its text), and the store
// parses it (_validate_model_version) after the schema checks.
type versionNumber struct {
	text string
	n    int64
}

// version declares the required "version" field of the registry requests.
func version(dst *versionNumber) spec {
	return idStr("version", &dst.text).req()
}

// parse is MLflow's _validate_model_version: "Parameter 'version' must be
// an integer, got '<text>'."
func (v *versionNumber) parse() error {
	n, err := strconv.ParseInt(v.text, 10, 64)
	if err != nil {
		return invalidParam("Parameter 'version' must be an integer, got '%s'.", v.text)
	}
	v.n = n
	return nil
}

// with decodes r's request message into a new Q (see decode) and calls fn
// with it: a handler is "return with(r, func(q *xRequest) error { ... })".
func with[Q any, P interface {
	*Q
	request
}](r *http.Request, fn func(P) error) error {
	return decodeThen(r, P(new(Q)), fn)
}

// decodeThen is with for a request value the handler has set knobs on
// (&experimentTagRequest{set: true}).
func decodeThen[P request](r *http.Request, q P, fn func(P) error) error {
	if err := decode(r, q); err != nil {
		return err
	}
	return fn(q)
}
