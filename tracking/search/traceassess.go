package search

import (
	"encoding/json"
	"regexp"
	"strings"
)

// Assessment and prompt clauses of the trace grammar (MLflow 3's
// SearchTraceUtils.is_assessment / is_issue with SqlAlchemyStore's
// _get_filter_clauses_for_search_traces):
//
//   - feedback.<name> and expectation.<name> compare the value of the
//     trace's valid assessments of that kind and name, as the text MLflow
//     stores (json.dumps of the value): = and != match the text or the
//     JSON string of the operand ('true' and '5.0' match the boolean and the
//     number, 'yes' the string "yes"), LIKE ILIKE RLIKE match the text, IS
//     NULL and IS NOT NULL ask whether such an assessment exists. An
//     assessment whose metadata has the mlflow.trace.session key covers
//     every trace of its trace's session;
//   - issue.id = '<issue>' matches traces with an issue reference of that
//     name;
//   - prompt = 'name/version' matches traces linked to the prompt version.

// Entities of trace clauses beyond tags, metadata and spans.
const (
	// EntityFeedback is a feedback assessment, by name.
	EntityFeedback Entity = 18
	// EntityExpectation is an expectation assessment, by name.
	EntityExpectation Entity = 19
	// EntityIssue is an issue reference (key "id").
	EntityIssue Entity = 20
	// EntityPrompt is a linked prompt version (Str "name/version").
	EntityPrompt Entity = 21
)

var traceEntityNames = map[Entity]string{
	EntityRequestMetadata: "request_metadata", EntitySpan: "span", EntityFeedback: "feedback",
	EntityExpectation: "expectation", EntityIssue: "issue", EntityPrompt: "prompt",
}

const (
	traceInKeysText  = "{'name', 'status', 'request_id', 'run_id', 'client_request_id'}"
	traceNumericText = "{'timestamp_ms', 'timestamp', 'execution_time_ms', 'execution_time', 'end_time_ms', 'end_time'}"
	// TraceMetadataSession is the request metadata key of a trace's
	// session; a session-scoped assessment names it in its metadata.
	TraceMetadataSession = "mlflow.trace.session"
)

// IsAssessmentClause reports whether c is a feedback, expectation or issue
// clause.
func IsAssessmentClause(c *Clause) bool {
	return c.Entity == EntityFeedback || c.Entity == EntityExpectation || c.Entity == EntityIssue
}

// AssessmentClauses returns the assessment clauses of a trace filter.
func AssessmentClauses(clauses []Clause) []Clause {
	var out []Clause
	for i := range clauses {
		if IsAssessmentClause(&clauses[i]) {
			out = append(out, clauses[i])
		}
	}
	return out
}

// AssessmentType is the assessment kind a clause reads: "feedback",
// "expectation" or "issue".
func AssessmentType(c *Clause) string { return c.Entity.String() }

// parseAssessmentClause fills c (entity, key and op set) from the raw
// value, with the checks in MLflow's order: the value (_get_value), then
// the key and comparator (is_assessment, is_issue).
func parseAssessmentClause(c *Clause, v rawValue, null bool) *Error {
	if !null {
		if v.kind != vString && v.kind != vIdent {
			return errorf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", c.Entity, v.text)
		}
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		c.Str = s
	}
	if c.Entity == EntityIssue {
		if c.Key != "id" {
			return errorf("Invalid issue attribute '%s'. Supported attributes: id", c.Key)
		}
		if c.Op != OpEq {
			return errorf("issue.%s comparator '%s' not one of '{'='}'", c.Key, c.Op)
		}
		return nil
	}
	if c.Key == "" {
		return errorf("Assessment field name cannot be empty")
	}
	switch c.Op {
	case OpIsNull, OpIsNotNull:
		return nil
	case OpEq, OpNe:
		// The stored text is json.dumps of the value: the operand matches
		// a boolean or number as written, a string as its JSON.
		c.List = []string{c.Str, PyJSONString(c.Str)}
	case OpLike, OpILike:
		compile(c)
	case OpRLike:
		re, err := compileRLike(c.Str)
		if err != nil {
			return err
		}
		c.re = re
	default:
		return errorf("assessment.%s comparator '%s' not one of '%s'", c.Key, c.Op, traceKeyedOpsText)
	}
	return nil
}

// parsePromptClause checks a prompt clause as MLflow does: a string
// attribute value, a tag comparator, then "=" and a name/version operand.
func parsePromptClause(c *Clause, v rawValue, null bool) *Error {
	if !null {
		switch v.kind {
		case vString, vIdent:
		case vList:
			return errorf("Only attributes in %s supports comparison with a list of quoted string values.", traceInKeysText)
		case vNumber:
			return errorf("Only the '%s' attributes support comparison with numeric values.", traceNumericText)
		default:
			return errorf("Expected a quoted string value or a list of quoted string values for attributes. Got value %s", v.text)
		}
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		c.Str = s
	}
	switch c.Op {
	case OpEq, OpNe, OpLike, OpILike, OpRLike, OpIsNull, OpIsNotNull:
	default:
		// MLflow's is_tag message lacks the closing quote.
		return errorf("Invalid comparator '%s' not one of '%s", c.Op, traceKeyedOpsText)
	}
	if c.Op != OpEq {
		return errorf("Invalid comparator '%s' for prompts filter. Only '=' is supported with format: prompt = \"name/version\"", c.Op)
	}
	if strings.Count(c.Str, "/") != 1 {
		return errorf("Invalid prompts filter value '%s'. Expected format: prompt = \"name/version\"", c.Str)
	}
	return nil
}

// linksPrompt reports whether the linked prompts tag value (a JSON list
// of {"name", "version"}) holds the prompt version "name/version".
func linksPrompt(tag, want string) bool {
	if tag == "" {
		return false
	}
	var refs []struct {
		Name    string          `json:"name"`
		Version json.RawMessage `json:"version"`
	}
	if json.Unmarshal([]byte(tag), &refs) != nil {
		return false
	}
	for _, r := range refs {
		v := string(r.Version)
		var s string
		if json.Unmarshal(r.Version, &s) == nil {
			v = s
		}
		if r.Name+"/"+v == want {
			return true
		}
	}
	return false
}

// AssessmentFields is what an assessment clause reads of one assessment.
type AssessmentFields struct {
	// Type is "feedback", "expectation" or "issue".
	Type string
	Name string
	// Value is the text MLflow stores: json.dumps of the value.
	Value string
	Valid bool
	// SessionScoped is set when the assessment's metadata names the
	// session key: it then covers its trace's whole session.
	SessionScoped bool
}

// MatchAssessment reports whether one assessment satisfies an assessment
// clause; for IS NULL and IS NOT NULL, whether it is one of the kind and
// name asked for (the caller negates for IS NULL).
func MatchAssessment(c *Clause, a *AssessmentFields) bool {
	if a.Type != AssessmentType(c) {
		return false
	}
	if c.Entity == EntityIssue {
		return a.Name == c.Str
	}
	if a.Name != c.Key || !a.Valid {
		return false
	}
	switch c.Op {
	case OpIsNull, OpIsNotNull:
		return true
	case OpEq:
		return a.Value == c.List[0] || a.Value == c.List[1]
	case OpNe:
		return a.Value != c.List[0] && a.Value != c.List[1]
	}
	return matchString(c, a.Value)
}

func compileRLike(p string) (*regexp.Regexp, *Error) {
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, errorf("Invalid regular expression '%s': %v", p, err)
	}
	return re, nil
}
