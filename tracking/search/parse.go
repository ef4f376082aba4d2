package search

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Entity is the kind of thing a clause or order key refers to.
type Entity int

// Entities of clause and order keys.
const (
	// EntityAttribute is a run or experiment attribute (run_id, name, ...).
	EntityAttribute Entity = iota
	// EntityMetric is a run metric (its latest value).
	EntityMetric
	// EntityParam is a run param.
	EntityParam
	// EntityTag is a run or experiment tag.
	EntityTag
	// EntityDataset is a field of a dataset input of a run.
	EntityDataset
)

// String returns MLflow's canonical name of the entity.
func (e Entity) String() string {
	switch e {
	case EntityAttribute:
		return "attribute"
	case EntityMetric:
		return "metric"
	case EntityParam:
		return "parameter"
	case EntityTag:
		return "tag"
	case EntityDataset:
		return "dataset"
	}
	if n, ok := traceEntityNames[e]; ok {
		return n
	}
	return "unknown"
}

// Comparison operators, in their canonical (upper-case) spelling.
const (
	OpEq        = "="
	OpNe        = "!="
	OpGt        = ">"
	OpGe        = ">="
	OpLt        = "<"
	OpLe        = "<="
	OpLike      = "LIKE"
	OpILike     = "ILIKE"
	OpIn        = "IN"
	OpNotIn     = "NOT IN"
	OpIsNull    = "IS NULL"
	OpIsNotNull = "IS NOT NULL"
	OpRLike     = "RLIKE"
)

// Clause is one comparison of a filter.
//
// Key is canonical: for run attributes one of run_id, run_name, user_id,
// status, artifact_uri, start_time, end_time ("created"/"Created" become
// start_time, "run name"/"Run name"/"Run Name" become run_name); for
// experiment attributes name, creation_time or last_update_time; for datasets
// name, digest or context; otherwise the metric, param or tag key.
//
// Clauses built by the parsers carry a pre-compiled LIKE pattern and, for
// long IN lists, a lookup set; hand-built clauses work too (compiled lazily,
// with allocations).
type Clause struct {
	Entity Entity
	Key    string
	// Op is the canonical upper-case comparator: "=", "!=", ">", ">=", "<",
	// "<=", "LIKE", "ILIKE", "RLIKE" (traces only), "IN", "NOT IN",
	// "IS NULL" or "IS NOT NULL".
	Op string
	// Str is the string operand (for numeric operands, the literal as written).
	Str string
	// Num is the numeric operand (metrics and numeric attributes).
	Num float64
	// List holds the IN / NOT IN operands.
	List []string

	attr attrCode            // attribute code, resolved at parse time
	pat  *likePattern        // compiled LIKE / ILIKE pattern
	re   *regexp.Regexp      // compiled RLIKE pattern
	set  map[string]struct{} // lookup set for long IN lists
}

// RunFilter is a parsed search_runs filter: clauses joined by AND. An empty
// filter matches every run.
type RunFilter []Clause

type attrCode uint8

const (
	attrNone attrCode = iota
	attrRunID
	attrRunName
	attrUserID
	attrStatus
	attrArtifactURI
	attrStartTime
	attrEndTime
	attrName
	attrDigest
	attrContext
	attrExpName
	attrCreationTime
	attrLastUpdateTime
	attrExperimentID
)

// Run attribute keys accepted in filters (aliases included), as MLflow lists
// them (RunInfo searchable attributes plus the alternate names).
var runFilterAttrs = map[string]string{
	"artifact_uri": "artifact_uri",
	"end_time":     "end_time",
	"run_id":       "run_id",
	"run_name":     "run_name",
	"start_time":   "start_time",
	"status":       "status",
	"user_id":      "user_id",
	"created":      "start_time",
	"Created":      "start_time",
	"run name":     "run_name",
	"Run name":     "run_name",
	"Run Name":     "run_name",
}

const runFilterAttrsText = "{'artifact_uri', 'end_time', 'run_id', 'run_name', 'start_time', 'status', 'user_id', 'created', 'Created', 'run name', 'Run name', 'Run Name'}"

// Run attribute keys accepted in order_by (the "run name" aliases are not).
var runOrderAttrs = map[string]string{
	"artifact_uri": "artifact_uri",
	"end_time":     "end_time",
	"run_id":       "run_id",
	"run_name":     "run_name",
	"start_time":   "start_time",
	"status":       "status",
	"user_id":      "user_id",
	"created":      "start_time",
	"Created":      "start_time",
}

const runOrderAttrsText = "{'artifact_uri', 'end_time', 'run_id', 'run_name', 'start_time', 'status', 'user_id', 'created', 'Created'}"

var attrCodes = map[string]attrCode{
	"run_id":       attrRunID,
	"run_name":     attrRunName,
	"user_id":      attrUserID,
	"status":       attrStatus,
	"artifact_uri": attrArtifactURI,
	"start_time":   attrStartTime,
	"end_time":     attrEndTime,
}

var datasetCodes = map[string]attrCode{
	"name":    attrName,
	"digest":  attrDigest,
	"context": attrContext,
}

var expFilterAttrs = map[string]attrCode{
	"name":             attrExpName,
	"creation_time":    attrCreationTime,
	"last_update_time": attrLastUpdateTime,
}

const expFilterAttrsText = "{'name', 'creation_time', 'last_update_time'}"

var entityAliases = map[string]Entity{
	"metric":     EntityMetric,
	"metrics":    EntityMetric,
	"parameter":  EntityParam,
	"parameters": EntityParam,
	"param":      EntityParam,
	"params":     EntityParam,
	"tag":        EntityTag,
	"tags":       EntityTag,
	"attribute":  EntityAttribute,
	"attributes": EntityAttribute,
	"attr":       EntityAttribute,
	"run":        EntityAttribute,
	"dataset":    EntityDataset,
	"datasets":   EntityDataset,
}

const validEntitiesText = "['metric', 'parameter', 'tag', 'attribute', 'dataset']"

// ---------------------------------------------------------------------------
// Structural parse: tokens -> raw clauses.

type valueKind int

const (
	vString valueKind = iota // 'single quoted'
	vIdent                   // identifier used as a value: "double quoted", bare word, `backtick`
	vNumber
	vList // parenthesised group
)

type rawValue struct {
	kind valueKind
	text string  // raw text
	toks []token // inner tokens of a parenthesised group
}

type rawClause struct {
	ident string // raw identifier text
	op    string // raw comparator (or IN / NOT IN / IS NULL / IS NOT NULL)
	val   rawValue
	null  bool // IS [NOT] NULL: no value
}

func isKeyword(t token, kw string) bool {
	return t.kind == tkWord && strings.EqualFold(t.text, kw)
}

// reserved words that cannot start an identifier.
func isReservedWord(t token) bool {
	if t.kind != tkWord {
		return false
	}
	switch strings.ToUpper(t.text) {
	case "AND", "OR", "NOT", "IN", "IS", "NULL":
		return true
	}
	return false
}

// parseIdent reads part ('.' part)* starting at i (no whitespace inside).
func parseIdent(toks []token, i int) (string, int) {
	var b strings.Builder
	b.WriteString(toks[i].text)
	j := i + 1
	for j+1 < len(toks) && toks[j].kind == tkDot && !toks[j].ws &&
		isPartKind(toks[j+1].kind) && !toks[j+1].ws {
		b.WriteByte('.')
		b.WriteString(toks[j+1].text)
		j += 2
	}
	// sqlparse keeps a trailing '.' in the identifier ("metrics." has the
	// empty key).
	if j < len(toks) && toks[j].kind == tkDot && !toks[j].ws {
		b.WriteByte('.')
		j++
	}
	return b.String(), j
}

// parseGroup reads a parenthesised group starting at the '(' at i. It
// returns the inner tokens and the index after the matching ')', or ok=false
// when unbalanced.
func parseGroup(toks []token, i int) (inner []token, next int, ok bool) {
	depth := 0
	for j := i; j < len(toks); j++ {
		switch toks[j].kind {
		case tkLParen:
			depth++
		case tkRParen:
			depth--
			if depth == 0 {
				return toks[i+1 : j], j + 1, true
			}
		}
	}
	return nil, len(toks), false
}

func groupText(src string, toks []token, i, next int) string {
	end := toks[next-1].pos + len(toks[next-1].text)
	return src[toks[i].pos:end]
}

// structure turns a filter string into raw clauses, reporting sqlparse-style
// structural errors.
func structure(filter string) ([]rawClause, *Error) {
	toks := lex(filter)
	if len(toks) == 0 && filter != "" {
		// sqlparse yields no statement for a blank string.
		return nil, errorf("Invalid filter '%s'. Could not be parsed.", filter)
	}
	for k, t := range toks {
		if t.kind == tkSemicolon && k+1 < len(toks) {
			return nil, errorf("Search filter contained multiple expression '%s'. Provide AND-ed expression list.", filter)
		}
	}
	var clauses []rawClause
	var invalid []string
	i := 0
	for i < len(toks) {
		t := toks[i]
		if isKeyword(t, "AND") {
			i++
			continue
		}
		if !isPartKind(t.kind) || isReservedWord(t) {
			invalid = append(invalid, t.text)
			i++
			continue
		}
		ident, j := parseIdent(toks, i)
		if j >= len(toks) {
			invalid = append(invalid, ident)
			i = j
			continue
		}
		nt := toks[j]
		switch {
		case nt.kind == tkCompare:
			if j+1 >= len(toks) {
				invalid = append(invalid, ident, nt.text)
				i = j + 1
				continue
			}
			v, next, ok := parseValue(filter, toks, j+1)
			if !ok {
				invalid = append(invalid, ident, nt.text)
				i = j + 1
				continue
			}
			clauses = append(clauses, rawClause{ident: ident, op: nt.text, val: v})
			i = next
		case isKeyword(nt, "IN") || (isKeyword(nt, "NOT") && j+1 < len(toks) && isKeyword(toks[j+1], "IN")):
			op := OpIn
			k := j + 1
			if isKeyword(nt, "NOT") {
				op = OpNotIn
				k = j + 2
			}
			if k >= len(toks) || toks[k].kind != tkLParen {
				invalid = append(invalid, ident)
				i = j
				continue
			}
			inner, next, ok := parseGroup(toks, k)
			if !ok {
				invalid = append(invalid, ident)
				i = j
				continue
			}
			clauses = append(clauses, rawClause{ident: ident, op: op,
				val: rawValue{kind: vList, text: groupText(filter, toks, k, next), toks: inner}})
			i = next
		case isKeyword(nt, "IS"):
			if j+1 < len(toks) && isKeyword(toks[j+1], "NULL") {
				clauses = append(clauses, rawClause{ident: ident, op: OpIsNull, null: true})
				i = j + 2
				continue
			}
			if j+2 < len(toks) && isKeyword(toks[j+1], "NOT") && isKeyword(toks[j+2], "NULL") {
				clauses = append(clauses, rawClause{ident: ident, op: OpIsNotNull, null: true})
				i = j + 3
				continue
			}
			invalid = append(invalid, ident)
			i = j
		default:
			invalid = append(invalid, ident)
			i = j
		}
	}
	if len(invalid) > 0 {
		parts := make([]string, len(invalid))
		for k, s := range invalid {
			parts[k] = "'" + s + "'"
		}
		return nil, errorf("Invalid clause(s) in filter string: %s", strings.Join(parts, ", "))
	}
	return clauses, nil
}

func parseValue(src string, toks []token, i int) (rawValue, int, bool) {
	t := toks[i]
	switch t.kind {
	case tkSQuote:
		return rawValue{kind: vString, text: t.text}, i + 1, true
	case tkNumber:
		return rawValue{kind: vNumber, text: t.text}, i + 1, true
	case tkWord, tkDQuote, tkBacktick:
		if isReservedWord(t) {
			return rawValue{}, i, false
		}
		text, next := parseIdent(toks, i)
		return rawValue{kind: vIdent, text: text}, next, true
	case tkLParen:
		inner, next, ok := parseGroup(toks, i)
		if !ok {
			return rawValue{}, i, false
		}
		return rawValue{kind: vList, text: groupText(src, toks, i, next), toks: inner}, next, true
	}
	return rawValue{}, i, false
}

// ---------------------------------------------------------------------------
// Helpers mirroring MLflow's quote handling.

func isQuoted(s string, q byte) bool {
	return len(s) >= 2 && s[0] == q && s[len(s)-1] == q
}

func trimBackticks(s string) string {
	if isQuoted(s, '`') {
		return s[1 : len(s)-1]
	}
	return s
}

func stripQuotes(s string) string {
	if isQuoted(s, '\'') || isQuoted(s, '"') {
		return s[1 : len(s)-1]
	}
	return s
}

// stringValue extracts a quoted string operand (single- or double-quoted).
func stringValue(v rawValue) (string, *Error) {
	if isQuoted(v.text, '\'') || isQuoted(v.text, '"') {
		return v.text[1 : len(v.text)-1], nil
	}
	return "", errorf("Parameter value is either not quoted or unidentified quote types used for string value %s. Use either single or double quotes.", v.text)
}

// parseList validates and extracts a parenthesised list of single-quoted
// strings, as MLflow's _check_valid_identifier_list does.
func parseList(v rawValue) ([]string, *Error) {
	inner := v.toks
	if len(inner) == 0 {
		return nil, errorf("While parsing a list in the query, expected a non-empty list of string values, but got empty list")
	}
	for _, t := range inner {
		if t.kind != tkSQuote && t.kind != tkComma {
			return nil, errorf("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", v.text)
		}
	}
	out := make([]string, 0, (len(inner)+1)/2)
	for k, t := range inner {
		wantString := k%2 == 0
		if wantString != (t.kind == tkSQuote) {
			return nil, errorf("While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.")
		}
		if wantString {
			out = append(out, t.text[1:len(t.text)-1])
		}
	}
	if inner[len(inner)-1].kind != tkSQuote {
		return nil, errorf("While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.")
	}
	return out, nil
}

func parseNumber(v rawValue) (float64, bool) {
	if v.kind != vNumber {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.text, 64)
	if err != nil {
		// Only range errors are possible for lexed literals; ParseFloat
		// then returns ±Inf or 0, which is what Python's float() gives.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return f, true
}

// hasUpper reports whether s contains an upper-case (or title-case) letter.
func hasUpper(s string) bool {
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r < 'A' {
			continue
		}
		if r <= 'Z' {
			return true
		}
		if r >= 0x80 && (unicode.IsUpper(r) || unicode.IsTitle(r)) {
			return true
		}
	}
	return false
}

const opsNumericText = "{'=', '!=', '>', '>=', '<', '<='}"
const opsStringText = "{'=', '!=', 'LIKE', 'ILIKE'}"
const opsStringAttrText = "{'=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}"
const opsKeyedText = "{'=', '!=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL'}"

func isNumericOp(op string) bool {
	switch op {
	case OpEq, OpNe, OpGt, OpGe, OpLt, OpLe:
		return true
	}
	return false
}

func isStringOp(op string) bool {
	switch op {
	case OpEq, OpNe, OpLike, OpILike:
		return true
	}
	return false
}

func invalidComparator(op, valid string) *Error {
	return errorf("Invalid comparator '%s' not one of '%s'", op, valid)
}

// normalizeOp upper-cases a comparator and collapses inner whitespace
// ("not  like" -> "NOT LIKE").
func normalizeOp(op string) string {
	return strings.Join(strings.Fields(strings.ToUpper(op)), " ")
}

// ---------------------------------------------------------------------------
// Runs.

// ParseRunFilter parses a search_runs filter string. An empty (or blank)
// filter yields an empty RunFilter, which matches every run.
func ParseRunFilter(filter string) (RunFilter, error) {
	raws, err := structure(filter)
	if err != nil {
		return nil, err
	}
	out := make(RunFilter, 0, len(raws))
	for _, rc := range raws {
		c, err := runClause(rc)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	// Comparator checks happen after parsing in MLflow (in the store).
	for k := range out {
		if err := checkRunOp(&out[k]); err != nil {
			return nil, err
		}
		compile(&out[k])
	}
	return out, nil
}

// splitIdent splits a raw identifier at its first '.'.
func splitIdent(raw string) (entity, key string, hasEntity bool) {
	if k := strings.IndexByte(raw, '.'); k >= 0 {
		return raw[:k], raw[k+1:], true
	}
	return "", raw, false
}

func runClause(rc rawClause) (Clause, *Error) {
	var c Clause
	ent, key, hasEnt := splitIdent(rc.ident)
	c.Entity = EntityAttribute
	if hasEnt {
		e, ok := entityAliases[trimBackticks(ent)]
		if !ok {
			return c, errorf("Invalid entity type '%s'. Valid values are %s", trimBackticks(ent), validEntitiesText)
		}
		c.Entity = e
	}
	key = trimBackticks(stripQuotes(key))
	origKey := key
	switch c.Entity {
	case EntityAttribute:
		canon, ok := runFilterAttrs[key]
		if !ok {
			return c, errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, runFilterAttrsText)
		}
		key = canon
		c.attr = attrCodes[key]
	case EntityDataset:
		code, ok := datasetCodes[key]
		if !ok {
			return c, errorf("Invalid dataset key '%s' specified. Valid keys are '{'name', 'digest', 'context'}'", key)
		}
		c.attr = code
	}
	c.Key = key
	c.Op = normalizeOp(rc.op)
	if rc.null {
		return c, nil
	}
	v := rc.val
	switch c.Entity {
	case EntityMetric:
		f, ok := parseNumber(v)
		if !ok {
			return c, errorf("Expected numeric value type for metric. Found %s", v.text)
		}
		c.Num, c.Str = f, v.text
	case EntityParam, EntityTag:
		if v.kind != vString && v.kind != vIdent {
			return c, errorf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", c.Entity, v.text)
		}
		s, err := stringValue(v)
		if err != nil {
			return c, err
		}
		c.Str = s
	case EntityAttribute:
		if c.attr == attrStartTime || c.attr == attrEndTime {
			f, ok := parseNumber(v)
			if !ok {
				return c, errorf("Expected numeric value type for numeric attribute: %s. Found %s", origKey, v.text)
			}
			c.Num, c.Str = f, v.text
			break
		}
		switch v.kind {
		case vString, vIdent:
			s, err := stringValue(v)
			if err != nil {
				return c, err
			}
			c.Str = s
		case vList:
			if c.attr != attrRunID {
				return c, errorf("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
			}
			l, err := parseList(v)
			if err != nil {
				return c, err
			}
			// MLflow drops values with upper-case letters: run ids are
			// lower-case hex (and MySQL's IN is case-insensitive).
			kept := l[:0]
			for _, s := range l {
				if !hasUpper(s) {
					kept = append(kept, s)
				}
			}
			c.List = kept
		default:
			return c, errorf("Expected a quoted string value for attributes. Got value %s", v.text)
		}
	case EntityDataset:
		switch v.kind {
		case vString, vIdent:
			s, err := stringValue(v)
			if err != nil {
				return c, err
			}
			c.Str = s
		case vList:
			l, err := parseList(v)
			if err != nil {
				return c, err
			}
			c.List = l
		default:
			return c, errorf("Expected a quoted string value for dataset attributes. Got value %s", v.text)
		}
	}
	return c, nil
}

func checkRunOp(c *Clause) *Error {
	op := c.Op
	isList := op == OpIn || op == OpNotIn
	switch c.Entity {
	case EntityMetric:
		if !isNumericOp(op) {
			return invalidComparator(op, opsNumericText)
		}
	case EntityParam, EntityTag:
		if !isStringOp(op) && op != OpIsNull && op != OpIsNotNull {
			return invalidComparator(op, opsKeyedText)
		}
	case EntityAttribute:
		if c.attr == attrStartTime || c.attr == attrEndTime {
			if !isNumericOp(op) {
				return invalidComparator(op, opsNumericText)
			}
		} else if !isStringOp(op) && !isList {
			return invalidComparator(op, opsStringAttrText)
		}
		if isList && c.attr != attrRunID {
			return errorf("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
		}
	case EntityDataset:
		if !isStringOp(op) && !isList {
			return invalidComparator(op, opsStringAttrText)
		}
	}
	if isList != (c.List != nil) {
		if isList {
			return errorf("Expected a list of quoted string values for comparator '%s'.", op)
		}
		return errorf("Comparator '%s' cannot be used with a list of values.", op)
	}
	return nil
}

// compile pre-computes LIKE patterns and IN lookup sets.
func compile(c *Clause) {
	switch c.Op {
	case OpLike:
		c.pat = compileLike(c.Str, false)
	case OpILike:
		c.pat = compileLike(c.Str, true)
	case OpIn, OpNotIn:
		if len(c.List) > 8 {
			c.set = make(map[string]struct{}, len(c.List))
			for _, s := range c.List {
				c.set[s] = struct{}{}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Experiments.

// ParseExperimentFilter parses a search_experiments filter string. Entities
// are none, "attribute", "tag" or "tags" (MLflow refuses "attributes." and
// "attr." here); attribute keys are name, creation_time and
// last_update_time. As in MLflow, comparators are not upper-cased for
// experiments: LIKE and ILIKE must be written in upper case.
func ParseExperimentFilter(filter string) ([]Clause, error) {
	raws, err := structure(filter)
	if err != nil {
		return nil, err
	}
	out := make([]Clause, 0, len(raws))
	for _, rc := range raws {
		c, err := experimentClause(rc)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	for k := range out {
		if err := checkExperimentOp(&out[k]); err != nil {
			return nil, err
		}
		compile(&out[k])
	}
	return out, nil
}

const expEntitiesText = "('attribute', 'tag', 'tags')"

func experimentClause(rc rawClause) (Clause, *Error) {
	var c Clause
	ent, key, hasEnt := splitIdent(rc.ident)
	c.Entity = EntityAttribute
	if hasEnt {
		switch ent {
		case "attribute":
		case "tag", "tags":
			c.Entity = EntityTag
		default:
			return c, errorf("Invalid entity type '%s'. Valid entity types are %s", ent, expEntitiesText)
		}
	}
	key = trimBackticks(stripQuotes(key))
	if c.Entity == EntityAttribute {
		code, ok := expFilterAttrs[key]
		if !ok {
			return c, errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, expFilterAttrsText)
		}
		c.attr = code
	}
	c.Key = key
	// Comparators are kept as written (MLflow does not upper-case them
	// for experiments); only IN / NOT IN / IS [NOT] NULL are canonical.
	c.Op = rc.op
	if rc.null {
		return c, nil
	}
	v := rc.val
	switch {
	case c.Entity == EntityTag:
		if v.kind != vString && v.kind != vIdent {
			return c, errorf("Expected a quoted string value for tag (e.g. 'my-value'). Got value %s", v.text)
		}
		s, err := stringValue(v)
		if err != nil {
			return c, err
		}
		c.Str = s
	case c.attr == attrCreationTime || c.attr == attrLastUpdateTime:
		f, ok := parseNumber(v)
		if !ok {
			return c, errorf("Expected numeric value type for numeric attribute: %s. Found %s", key, v.text)
		}
		c.Num, c.Str = f, v.text
	default:
		switch v.kind {
		case vString, vIdent:
			s, err := stringValue(v)
			if err != nil {
				return c, err
			}
			c.Str = s
		case vList:
			return c, errorf("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
		default:
			return c, errorf("Expected a quoted string value for attributes. Got value %s", v.text)
		}
	}
	return c, nil
}

func checkExperimentOp(c *Clause) *Error {
	op := c.Op
	switch {
	case c.Entity == EntityTag:
		if !isStringOp(op) && op != OpIsNull && op != OpIsNotNull {
			return errorf("Invalid comparator for tag: %s", op)
		}
	case c.attr == attrCreationTime || c.attr == attrLastUpdateTime:
		if !isNumericOp(op) {
			return invalidComparator(op, opsNumericText)
		}
	default:
		switch op {
		case OpEq, OpNe, OpLike, OpILike:
		case OpIn, OpNotIn:
			return errorf("Invalid comparator for string attribute: %s", op)
		default:
			return invalidComparator(op, opsStringAttrText)
		}
	}
	return nil
}
