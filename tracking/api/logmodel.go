package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pyjson"
)

// logModel is the legacy runs/log-model: model_json is an MLmodel dict; its
// tag form (Model.get_tags_dict: run_id, artifact_path, utc_time_created,
// model_uuid, then flavors without their "config") is appended to the
// run's mlflow.log-model.history tag, serialized as Python's json.dumps
// writes it, because clients read that tag back verbatim.
func (s *Server) logModel(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *logModelRequest) error {
		return answerEmpty(w, s.store.AppendModelHistory(r.Context(), q.ID, q.tagsDict))
	})
}

// logModelRequest is LogModel.
type logModelRequest struct {
	ID, ModelJSON string
	tagsDict      []byte
}

func (q *logModelRequest) decl() []spec {
	return []spec{runIDField(&q.ID), str("model_json", &q.ModelJSON).req()}
}

// validate parses model_json as MLflow's handler does (a JSON object with
// the mandatory fields) and builds its tag form.
func (q *logModelRequest) validate() error {
	raw, perr := parseJSONValue([]byte(q.ModelJSON))
	if perr != nil {
		return invalidParam("Malformed model info. \n %s \n is not a valid JSON.", q.ModelJSON)
	}
	if kindOf(raw) != kindObject {
		return invalidParam("Malformed model info. \n %s \n is not a JSON object.", q.ModelJSON)
	}
	model, err := parseObject(raw)
	if err != nil {
		return invalidParam("Malformed model info. \n %s \n is not a valid JSON.", q.ModelJSON)
	}
	var missing []string
	for _, k := range []string{"artifact_path", "flavors", "run_id", "utc_time_created"} {
		if _, ok := model.get(k); !ok {
			missing = append(missing, "'"+k+"'")
		}
	}
	if len(missing) > 0 {
		return invalidParam("Model json is missing mandatory fields: {%s}", strings.Join(missing, ", "))
	}
	q.tagsDict, err = modelTagsDict(model)
	return err
}

// modelTagsDict builds Model.from_dict(model).get_tags_dict() in Python's
// json.dumps form.
func modelTagsDict(model object) ([]byte, error) {
	b := make([]byte, 0, 512)
	b = append(b, '{')
	first := true
	sep := func() {
		if !first {
			b = append(b, ", "...)
		}
		first = false
	}
	for _, k := range []string{"run_id", "artifact_path", "utc_time_created", "model_uuid"} {
		v, ok := model.get(k)
		if k == "utc_time_created" {
			sep()
			b = pyjson.AppendString(b, k)
			b = append(b, ": "...)
			b = pyjson.AppendString(b, pyStrTime(v, ok))
			continue
		}
		if !ok || kindOf(v) == kindNull {
			continue // to_dict drops None values
		}
		sep()
		b = pyjson.AppendString(b, k)
		b = append(b, ": "...)
		b = appendPyJSON(b, v, 0)
	}
	sep()
	b = append(b, `"flavors": `...)
	fl, _ := model.get("flavors")
	switch kindOf(fl) {
	case kindNull:
		b = append(b, "{}"...)
	case kindObject:
		flavors, err := parseObject(fl)
		if err != nil {
			return nil, invalidParam("Malformed model info: 'flavors' is not valid JSON.")
		}
		b = append(b, '{')
		for i, fv := range dedupe(flavors) {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = pyjson.AppendString(b, fv.key())
			b = append(b, ": "...)
			if kindOf(fv.raw) == kindObject {
				cfg, err := parseObject(fv.raw)
				if err != nil {
					return nil, invalidParam("Malformed model info: flavor %q is not valid JSON.", fv.key())
				}
				b = appendPyObject(b, cfg, "config", 1)
			} else {
				b = appendPyJSON(b, fv.raw, 1)
			}
		}
		b = append(b, '}')
	default:
		return nil, invalidParam("Invalid model info: 'flavors' must be a JSON object, got %s.", pyValueText(fl))
	}
	return append(b, '}'), nil
}

// pyStrTime is str(utc_time_created or datetime.utcnow()).
func pyStrTime(v []byte, ok bool) string {
	if !ok || pyFalsy(v) {
		return time.Now().UTC().Format("2006-01-02 15:04:05.000000")
	}
	switch kindOf(v) {
	case kindString:
		s, _ := decodeString(v)
		return s
	case kindBool:
		return "True"
	case kindNumber, kindNonFinite:
		return string(appendPyJSON(nil, v, 0))
	}
	return string(appendPyJSON(nil, v, 0))
}

func pyFalsy(v []byte) bool {
	switch kindOf(v) {
	case kindNull:
		return true
	case kindBool:
		return string(v) == "false"
	case kindString:
		return string(v) == `""`
	case kindNumber:
		f, err := strconv.ParseFloat(string(v), 64)
		return err == nil && f == 0
	case kindArray:
		a, err := parseArray(v)
		return err == nil && len(a) == 0
	case kindObject:
		o, err := parseObject(v)
		return err == nil && len(o) == 0
	}
	return false
}

// dedupe keeps each key once: at its first position with its last value,
// as a Python dict built by json.loads does.
func dedupe(o object) object {
	seen := make(map[string]int, len(o))
	out := make(object, 0, len(o))
	for _, f := range o {
		if i, ok := seen[f.key()]; ok {
			out[i].raw = f.raw
			continue
		}
		seen[f.key()] = len(out)
		out = append(out, f)
	}
	return out
}

// appendPyJSON appends a raw JSON value as Python's json.dumps (default
// separators, ensure_ascii) would write json.loads of it.
func appendPyJSON(b []byte, raw []byte, depth int) []byte {
	switch kindOf(raw) {
	case kindObject:
		o, err := parseObject(raw)
		if err != nil {
			return append(b, raw...)
		}
		return appendPyObject(b, o, "", depth)
	case kindArray:
		elems, err := parseArray(raw)
		if err != nil {
			return append(b, raw...)
		}
		b = append(b, '[')
		for i, e := range elems {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendPyJSON(b, e, depth+1)
		}
		return append(b, ']')
	case kindString:
		s, err := decodeString(raw)
		if err != nil {
			return append(b, raw...)
		}
		return pyjson.AppendString(b, s)
	case kindNumber:
		text := string(raw)
		if !strings.ContainsAny(text, ".eE") {
			if text == "-0" {
				return append(b, '0')
			}
			return append(b, text...)
		}
		f, _ := strconv.ParseFloat(text, 64) // ±Inf on overflow, as Python
		return pyjson.AppendFloat(b, f)
	}
	return append(b, raw...) // true, false, null, NaN, Infinity, -Infinity
}

func appendPyObject(b []byte, o object, skip string, depth int) []byte {
	b = append(b, '{')
	n := 0
	for _, f := range dedupe(o) {
		if skip != "" && f.key() == skip {
			continue
		}
		if n > 0 {
			b = append(b, ", "...)
		}
		n++
		b = pyjson.AppendString(b, f.key())
		b = append(b, ": "...)
		b = appendPyJSON(b, f.raw, depth+1)
	}
	return append(b, '}')
}
