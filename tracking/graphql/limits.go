package graphql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what one GraphQL document may ask for. The first four are
// MLflow's (mlflow/server/graphql/graphql_no_batching.py: _MAX_DEPTH,
// _MAX_SELECTIONS, MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS and
// MLFLOW_SERVER_GRAPHQL_MAX_ALIASES); MaxComplexity is ours.
type Limits struct {
	// MaxDepth is the deepest selection-set level (the operation's own
	// selection set is level 1; fragments merge into the level they are
	// spread at).
	MaxDepth int
	// MaxSelections bounds the fields visited over the whole document,
	// fragment spreads expanded.
	MaxSelections int
	// MaxRootFields bounds the top-level fields of all operations.
	MaxRootFields int
	// MaxAliases bounds the aliased fields of any one selection set.
	MaxAliases int
	// MaxComplexity bounds the estimated cost: every selected field costs
	// 1 (10 for run.experiment and run.modelVersions, each a store
	// lookup per run), times the page sizes of the lists it is inside
	// (runs: maxResults, default 1000; metrics of the bulk-interval query:
	// maxResults × runIds, default 2500; modelVersions of
	// mlflowSearchModelVersions: maxResults, default 10000).
	MaxComplexity int
	// MaxQueryLength bounds the query text in bytes.
	MaxQueryLength int
}

// Default limits.
const (
	DefaultMaxDepth       = 10
	DefaultMaxSelections  = 1000
	DefaultMaxRootFields  = 10
	DefaultMaxAliases     = 10
	DefaultMaxComplexity  = 100000
	DefaultMaxQueryLength = 1 << 20
)

// maxNesting bounds the parser's recursion in values and types, which the
// depth limit does not cover.
const maxNesting = 64

// limitError is a refusal by the limits; its message is the one error of
// the answer.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// syntaxError is a document the scanner could not read.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return "Syntax Error: " + e.msg }

// ---- lexer ----

type tokKind int

const (
	tEOF tokKind = iota
	tPunct
	tName
	tInt
	tFloat
	tString
)

type token struct {
	kind tokKind
	val  string // punctuator, name, number text or decoded string
	pos  int
}

type lexer struct {
	src string
	pos int
}

func (l *lexer) errf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...) + fmt.Sprintf(" (at byte %d)", l.pos)}
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameCont(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' && l.src[l.pos] != '\r' {
				l.pos++
			}
		case strings.HasPrefix(l.src[l.pos:], "\uFEFF"):
			l.pos += 3
		default:
			return l.lexToken()
		}
	}
	return token{kind: tEOF, pos: l.pos}, nil
}

func (l *lexer) lexToken() (token, error) {
	start := l.pos
	c := l.src[l.pos]
	switch {
	case strings.IndexByte("!$&()|:=@[]{}", c) >= 0:
		l.pos++
		return token{kind: tPunct, val: string(c), pos: start}, nil
	case c == '.':
		if strings.HasPrefix(l.src[l.pos:], "...") {
			l.pos += 3
			return token{kind: tPunct, val: "...", pos: start}, nil
		}
		return token{}, l.errf("unexpected %q", ".")
	case isNameStart(c):
		for l.pos < len(l.src) && isNameCont(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tName, val: l.src[start:l.pos], pos: start}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return l.lexNumber()
	case c == '"':
		if strings.HasPrefix(l.src[l.pos:], `"""`) {
			return l.lexBlockString()
		}
		return l.lexString()
	}
	r, _ := utf8.DecodeRuneInString(l.src[l.pos:])
	return token{}, l.errf("unexpected character %q", r)
}

func (l *lexer) lexNumber() (token, error) {
	start := l.pos
	if l.src[l.pos] == '-' {
		l.pos++
	}
	digits := func() int {
		n := 0
		for l.pos < len(l.src) && l.src[l.pos] >= '0' && l.src[l.pos] <= '9' {
			l.pos++
			n++
		}
		return n
	}
	if digits() == 0 {
		return token{}, l.errf("invalid number")
	}
	kind := tInt
	if l.pos < len(l.src) && l.src[l.pos] == '.' {
		l.pos++
		kind = tFloat
		if digits() == 0 {
			return token{}, l.errf("invalid number")
		}
	}
	if l.pos < len(l.src) && (l.src[l.pos] == 'e' || l.src[l.pos] == 'E') {
		l.pos++
		kind = tFloat
		if l.pos < len(l.src) && (l.src[l.pos] == '+' || l.src[l.pos] == '-') {
			l.pos++
		}
		if digits() == 0 {
			return token{}, l.errf("invalid number")
		}
	}
	if l.pos < len(l.src) && (isNameStart(l.src[l.pos]) || l.src[l.pos] == '.') {
		return token{}, l.errf("invalid number")
	}
	return token{kind: kind, val: l.src[start:l.pos], pos: start}, nil
}

func (l *lexer) lexString() (token, error) {
	start := l.pos
	l.pos++ // opening quote
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '"':
			l.pos++
			return token{kind: tString, val: b.String(), pos: start}, nil
		case c == '\n' || c == '\r':
			return token{}, l.errf("unterminated string")
		case c == '\\':
			if l.pos+1 >= len(l.src) {
				return token{}, l.errf("unterminated string")
			}
			e := l.src[l.pos+1]
			l.pos += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if l.pos+4 > len(l.src) {
					return token{}, l.errf("invalid unicode escape")
				}
				n, err := strconv.ParseUint(l.src[l.pos:l.pos+4], 16, 32)
				if err != nil {
					return token{}, l.errf("invalid unicode escape")
				}
				b.WriteRune(rune(n))
				l.pos += 4
			default:
				return token{}, l.errf("invalid escape %q", e)
			}
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return token{}, l.errf("unterminated string")
}

func (l *lexer) lexBlockString() (token, error) {
	start := l.pos
	l.pos += 3
	for l.pos < len(l.src) {
		switch {
		case strings.HasPrefix(l.src[l.pos:], `\"""`):
			l.pos += 4
		case strings.HasPrefix(l.src[l.pos:], `"""`):
			l.pos += 3
			return token{kind: tString, val: l.src[start+3 : l.pos-3], pos: start}, nil
		default:
			l.pos++
		}
	}
	return token{}, l.errf("unterminated block string")
}

// ---- parser: just enough of the executable grammar to measure it ----

// value is an argument value: a scalar, a variable reference, a list or an
// object.
type value struct {
	variable string
	scalar   string
	isInt    bool
	list     []*value
	object   map[string]*value
}

type field struct {
	alias bool
	name  string
	args  map[string]*value
	sel   []selection // nil: a leaf
}

// selection is a field, an inline fragment (fragment == "" and inline set)
// or a fragment spread (fragment set).
type selection struct {
	field    *field
	inline   []selection
	fragment string
}

type document struct {
	operations [][]selection
	fragments  map[string][]selection
}

type parser struct {
	lx      lexer
	tok     token
	nesting int
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) isPunct(s string) bool { return p.tok.kind == tPunct && p.tok.val == s }

func (p *parser) expectPunct(s string) error {
	if !p.isPunct(s) {
		return p.unexpected("expected " + strconv.Quote(s))
	}
	return p.advance()
}

func (p *parser) unexpected(want string) error {
	got := p.tok.val
	if p.tok.kind == tEOF {
		got = "<EOF>"
	}
	return &syntaxError{msg: fmt.Sprintf("%s, found %q (at byte %d)", want, got, p.tok.pos)}
}

func (p *parser) name() (string, error) {
	if p.tok.kind != tName {
		return "", p.unexpected("expected a name")
	}
	n := p.tok.val
	return n, p.advance()
}

func (p *parser) enter() error {
	p.nesting++
	if p.nesting > maxNesting {
		return &syntaxError{msg: fmt.Sprintf("nesting deeper than %d (at byte %d)", maxNesting, p.tok.pos)}
	}
	return nil
}

func (p *parser) leave() { p.nesting-- }

func parseDocument(src string) (*document, error) {
	p := &parser{lx: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	doc := &document{fragments: make(map[string][]selection)}
	if p.tok.kind == tEOF {
		return nil, &syntaxError{msg: "the document has no operation"}
	}
	for p.tok.kind != tEOF {
		switch {
		case p.isPunct("{"):
			sel, err := p.selectionSet()
			if err != nil {
				return nil, err
			}
			doc.operations = append(doc.operations, sel)
		case p.tok.kind == tName && (p.tok.val == "query" || p.tok.val == "mutation" || p.tok.val == "subscription"):
			if err := p.advance(); err != nil {
				return nil, err
			}
			if p.tok.kind == tName {
				if err := p.advance(); err != nil {
					return nil, err
				}
			}
			if p.isPunct("(") {
				if err := p.variableDefinitions(); err != nil {
					return nil, err
				}
			}
			if err := p.directives(); err != nil {
				return nil, err
			}
			sel, err := p.selectionSet()
			if err != nil {
				return nil, err
			}
			doc.operations = append(doc.operations, sel)
		case p.tok.kind == tName && p.tok.val == "fragment":
			if err := p.advance(); err != nil {
				return nil, err
			}
			name, err := p.name()
			if err != nil {
				return nil, err
			}
			if p.tok.kind != tName || p.tok.val != "on" {
				return nil, p.unexpected(`expected "on"`)
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			if _, err := p.name(); err != nil {
				return nil, err
			}
			if err := p.directives(); err != nil {
				return nil, err
			}
			sel, err := p.selectionSet()
			if err != nil {
				return nil, err
			}
			if _, dup := doc.fragments[name]; !dup {
				doc.fragments[name] = sel
			}
		default:
			return nil, p.unexpected("expected an operation or a fragment")
		}
	}
	return doc, nil
}

func (p *parser) variableDefinitions() error {
	if err := p.expectPunct("("); err != nil {
		return err
	}
	for !p.isPunct(")") {
		if err := p.expectPunct("$"); err != nil {
			return err
		}
		if _, err := p.name(); err != nil {
			return err
		}
		if err := p.expectPunct(":"); err != nil {
			return err
		}
		if err := p.typeRef(); err != nil {
			return err
		}
		if p.isPunct("=") {
			if err := p.advance(); err != nil {
				return err
			}
			if _, err := p.value(); err != nil {
				return err
			}
		}
		if err := p.directives(); err != nil {
			return err
		}
	}
	return p.advance()
}

func (p *parser) typeRef() error {
	if err := p.enter(); err != nil {
		return err
	}
	defer p.leave()
	if p.isPunct("[") {
		if err := p.advance(); err != nil {
			return err
		}
		if err := p.typeRef(); err != nil {
			return err
		}
		if err := p.expectPunct("]"); err != nil {
			return err
		}
	} else if _, err := p.name(); err != nil {
		return err
	}
	if p.isPunct("!") {
		return p.advance()
	}
	return nil
}

func (p *parser) directives() error {
	for p.isPunct("@") {
		if err := p.advance(); err != nil {
			return err
		}
		if _, err := p.name(); err != nil {
			return err
		}
		if p.isPunct("(") {
			if _, err := p.arguments(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *parser) arguments() (map[string]*value, error) {
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	args := make(map[string]*value)
	for !p.isPunct(")") {
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(":"); err != nil {
			return nil, err
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		args[n] = v
	}
	return args, p.advance()
}

func (p *parser) value() (*value, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	switch {
	case p.isPunct("$"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		n, err := p.name()
		return &value{variable: n}, err
	case p.isPunct("["):
		if err := p.advance(); err != nil {
			return nil, err
		}
		v := &value{list: []*value{}}
		for !p.isPunct("]") {
			e, err := p.value()
			if err != nil {
				return nil, err
			}
			v.list = append(v.list, e)
		}
		return v, p.advance()
	case p.isPunct("{"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		v := &value{object: make(map[string]*value)}
		for !p.isPunct("}") {
			n, err := p.name()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(":"); err != nil {
				return nil, err
			}
			e, err := p.value()
			if err != nil {
				return nil, err
			}
			v.object[n] = e
		}
		return v, p.advance()
	case p.tok.kind == tInt, p.tok.kind == tFloat, p.tok.kind == tString, p.tok.kind == tName:
		v := &value{scalar: p.tok.val, isInt: p.tok.kind == tInt}
		return v, p.advance()
	}
	return nil, p.unexpected("expected a value")
}

func (p *parser) selectionSet() ([]selection, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if err := p.expectPunct("{"); err != nil {
		return nil, err
	}
	out := []selection{}
	for !p.isPunct("}") {
		s, err := p.selection()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, p.unexpected("expected a selection")
	}
	return out, p.advance()
}

func (p *parser) selection() (selection, error) {
	if p.isPunct("...") {
		if err := p.advance(); err != nil {
			return selection{}, err
		}
		if p.tok.kind == tName && p.tok.val != "on" {
			n := p.tok.val
			if err := p.advance(); err != nil {
				return selection{}, err
			}
			return selection{fragment: n}, p.directives()
		}
		if p.tok.kind == tName { // "on" Type
			if err := p.advance(); err != nil {
				return selection{}, err
			}
			if _, err := p.name(); err != nil {
				return selection{}, err
			}
		}
		if err := p.directives(); err != nil {
			return selection{}, err
		}
		sel, err := p.selectionSet()
		return selection{inline: sel}, err
	}
	f := &field{}
	n, err := p.name()
	if err != nil {
		return selection{}, err
	}
	if p.isPunct(":") {
		if err := p.advance(); err != nil {
			return selection{}, err
		}
		f.alias = true
		if n, err = p.name(); err != nil {
			return selection{}, err
		}
	}
	f.name = n
	if p.isPunct("(") {
		if f.args, err = p.arguments(); err != nil {
			return selection{}, err
		}
	}
	if err := p.directives(); err != nil {
		return selection{}, err
	}
	if p.isPunct("{") {
		if f.sel, err = p.selectionSet(); err != nil {
			return selection{}, err
		}
	}
	return selection{field: f}, nil
}

// ---- measuring ----

// scope is what the cost of a field depends on: the root field it is
// under, that field's arguments and the multiplier of the lists around it.
type scope struct {
	root string
	args map[string]*value
	mult float64
}

type pending struct {
	sel   []selection
	depth int
	sc    scope
}

// check parses query and applies the limits, MLflow's in MLflow's order
// (depth and selections while scanning, then root fields, then aliases),
// then the complexity bound. vars are the request's variables, read for
// page sizes.
func (l Limits) check(query string, vars map[string]any) error {
	if l.MaxQueryLength > 0 && len(query) > l.MaxQueryLength {
		return &limitError{fmt.Sprintf("Query exceeds maximum length of %d bytes", l.MaxQueryLength)}
	}
	doc, err := parseDocument(query)
	if err != nil {
		return err
	}
	roots, maxAliases, total := 0, 0, 0
	cost := 0.0
	for _, op := range doc.operations {
		stack := []pending{{sel: op, depth: 1, sc: scope{mult: 1}}}
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if cur.depth > l.MaxDepth {
				return &limitError{fmt.Sprintf("Query exceeds maximum depth of %d", l.MaxDepth)}
			}
			fields, aliases := collect(cur.sel, doc.fragments)
			for _, f := range fields {
				if cur.depth == 1 {
					roots++
				}
				sc := cur.sc
				if cur.depth == 1 {
					sc = scope{root: f.name, args: f.args, mult: 1}
				}
				cost += sc.mult * fieldWeight(cur.depth, f.name, sc.root)
				if f.sel != nil {
					child := sc
					child.mult = sc.mult * listFactor(cur.depth, f.name, sc, vars)
					stack = append(stack, pending{sel: f.sel, depth: cur.depth + 1, sc: child})
				}
				total++
				if total > l.MaxSelections {
					return &limitError{fmt.Sprintf("Query exceeds maximum total selections of %d", l.MaxSelections)}
				}
			}
			maxAliases = max(maxAliases, aliases)
		}
	}
	if roots > l.MaxRootFields {
		return &limitError{limitMessage(l.MaxRootFields, "root fields", roots, envMaxRootFields)}
	}
	if maxAliases > l.MaxAliases {
		return &limitError{limitMessage(l.MaxAliases, "aliases", maxAliases, envMaxAliases)}
	}
	if l.MaxComplexity > 0 && cost > float64(l.MaxComplexity) {
		return &limitError{fmt.Sprintf("Query exceeds maximum complexity of %d (estimated %.0f)", l.MaxComplexity, math.Min(cost, 1e18))}
	}
	return nil
}

// limitMessage is MLflow's text for the root-field and alias limits.
func limitMessage(limit int, what string, got int, env string) string {
	return fmt.Sprintf("GraphQL queries should have at most %d %s, got %d %s. To increase the limit, set the %s environment variable.",
		limit, what, got, what, env)
}

// collect returns the fields of one level, inline fragments and fragment
// spreads merged in (each fragment once per level), and the aliases among
// them.
func collect(sel []selection, frags map[string][]selection) ([]*field, int) {
	var out []*field
	aliases := 0
	queue := append([]selection(nil), sel...)
	seen := make(map[string]bool)
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		switch {
		case s.field != nil:
			out = append(out, s.field)
			if s.field.alias {
				aliases++
			}
		case s.fragment != "":
			if seen[s.fragment] {
				continue
			}
			seen[s.fragment] = true
			queue = append(queue, frags[s.fragment]...)
		default:
			queue = append(queue, s.inline...)
		}
	}
	return out, aliases
}

// fieldWeight is 10 for the run fields that cost a store lookup per run,
// 1 otherwise.
func fieldWeight(depth int, name, root string) float64 {
	if depth >= 3 && (name == "experiment" || name == "modelVersions") && (root == "mlflowGetRun" || root == "mlflowSearchRuns") {
		return 10
	}
	return 1
}

// listFactor is how many elements the list field at depth may hold.
func listFactor(depth int, name string, sc scope, vars map[string]any) float64 {
	if depth != 2 {
		return 1
	}
	in := resolve(sc.args["input"], vars)
	switch {
	case sc.root == "mlflowSearchRuns" && name == "runs":
		return clamp(intField(in, "maxResults", vars, 1000), 1, 50000)
	case sc.root == "mlflowGetMetricHistoryBulkInterval" && name == "metrics":
		n := clamp(intField(in, "maxResults", vars, 2500), 1, 2500)
		runs := clamp(float64(listLen(in, "runIds", vars)), 1, 100)
		return n * runs
	case sc.root == "mlflowSearchModelVersions" && name == "modelVersions":
		return clamp(intField(in, "maxResults", vars, 10000), 1, 200000)
	}
	return 1
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// resolve turns an argument into plain Go values (variables substituted):
// map[string]any, []any, float64 for numbers, string otherwise.
func resolve(v *value, vars map[string]any) any {
	switch {
	case v == nil:
		return nil
	case v.variable != "":
		return vars[v.variable]
	case v.object != nil:
		m := make(map[string]any, len(v.object))
		for k, e := range v.object {
			m[k] = resolve(e, vars)
		}
		return m
	case v.list != nil:
		l := make([]any, len(v.list))
		for i, e := range v.list {
			l[i] = resolve(e, vars)
		}
		return l
	case v.isInt:
		f, err := strconv.ParseFloat(v.scalar, 64)
		if err != nil {
			return nil
		}
		return f
	}
	return v.scalar
}

func intField(in any, name string, _ map[string]any, def float64) float64 {
	m, _ := in.(map[string]any)
	switch n := m[name].(type) {
	case float64:
		return n
	case int:
		return float64(n)
	case string: // LongString variables may be strings
		if f, err := strconv.ParseFloat(n, 64); err == nil {
			return f
		}
	}
	return def
}

func listLen(in any, name string, _ map[string]any) int {
	m, _ := in.(map[string]any)
	if l, ok := m[name].([]any); ok {
		return len(l)
	}
	return 1
}
