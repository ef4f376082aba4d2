package otlpspans

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// The semantic conventions of GenAI instrumentations, read the way
// MLflow's span translation does when it stores spans
// (mlflow/tracing/otel/translation: translate_span_when_storing and one
// OtelSchemaTranslator per convention). Each span's attributes give it,
// unless it already carries MLflow's own:
//
//   - mlflow.spanType, from the first convention that maps the span's kind
//     (only when the span has no type or UNKNOWN);
//   - mlflow.spanInputs and mlflow.spanOutputs, from the first convention
//     with a non-empty value, then from span events;
//   - mlflow.chat.tokenUsage, from the first convention with any of
//     input, output or total tokens (total = input + output when absent);
//   - mlflow.message.format, mlflow.chat.tools, mlflow.llm.model (falling
//     back to a "model" field of the inputs or outputs) and
//     mlflow.llm.provider.
//
// The conventions are tried in MLflow's order; the original attributes are
// kept. MLflow also prices LLM calls (mlflow.llm.cost) from a model price
// list; this server does not.

// Attribute keys MLflow's translation writes besides AttrSpanType,
// AttrInputs, AttrOutputs and AttrTokenUsage.
const (
	AttrMessageFormat = "mlflow.message.format"
	AttrChatTools     = "mlflow.chat.tools"
	AttrModel         = "mlflow.llm.model"
	AttrModelProvider = "mlflow.llm.provider"
)

// attrKey names an attribute: a key, or a pattern matched (at its start,
// as Python's re.match) against every key in the span's attribute order.
type attrKey struct {
	name    string
	pattern *regexp.Regexp
}

func keys(names ...string) []attrKey {
	out := make([]attrKey, len(names))
	for i, n := range names {
		out[i] = attrKey{name: n}
	}
	return out
}

// spanEvent is a span event with its attributes (JSON text of the decoded
// values, not re-encoded: MLflow keeps event attributes as they came).
type spanEvent struct {
	name  string
	attrs *ordered
}

// convention is one semantic convention's attribute keys. A func field,
// when set, replaces what the key fields would do.
type convention struct {
	name string

	kindKeys []string          // the span kind: the first key whose value is in kinds
	kinds    map[string]string // span kind -> MLflow span type
	spanType func(a *ordered) string

	inputTokens, outputTokens, totalTokens []string // the first present key of each
	cacheReadTokens, cacheCreationTokens   []string

	inputKeys, outputKeys []attrKey // the first non-empty value
	input, output         func(a *ordered) (string, bool)
	inputEvents           func(evs []spanEvent) (string, bool)
	outputEvents          func(evs []spanEvent) (string, bool)

	modelKeys     []attrKey
	providerKey   []attrKey // one key
	toolKeys      []attrKey
	messageFormat func(a *ordered) string
}

// OTel GenAI semantic conventions' keys, shared by the conventions built
// on them (Gemini CLI, LiveKit, Laminar, Spring AI).
var (
	genAIKinds = map[string]string{
		"chat": "CHAT_MODEL", "create_agent": "AGENT", "embeddings": "EMBEDDING", "execute_tool": "TOOL",
		"generate_content": "LLM", "invoke_agent": "AGENT", "text_completion": "LLM", "response": "LLM",
	}
	genAIInputKeys  = keys("gen_ai.input.messages", "gen_ai.tool.call.arguments")
	genAIOutputKeys = keys("gen_ai.output.messages", "gen_ai.tool.call.result")
	genAIModelKeys  = keys("gen_ai.response.model", "gen_ai.request.model")
	genAIProvider   = keys("gen_ai.provider.name")
	genAIToolKeys   = keys("gen_ai.tool.definitions")
	systemProvider  = keys("gen_ai.system")
)

func withGenAITokens(c convention) convention {
	c.inputTokens, c.outputTokens = []string{attrGenAIInput}, []string{attrGenAIOutput}
	c.cacheReadTokens, c.cacheCreationTokens = []string{attrGenAICacheRead}, []string{attrGenAICacheWrite}
	return c
}

// conventions are the translators in MLflow's order (_TRANSLATORS).
var conventions = []convention{
	{
		name:     "OpenInference",
		kindKeys: []string{"openinference.span.kind"},
		kinds: map[string]string{
			"TOOL": "TOOL", "CHAIN": "CHAIN", "LLM": "LLM", "RETRIEVER": "RETRIEVER", "EMBEDDING": "EMBEDDING",
			"AGENT": "AGENT", "RERANKER": "RERANKER", "UNKNOWN": "UNKNOWN", "GUARDRAIL": "GUARDRAIL", "EVALUATOR": "EVALUATOR",
		},
		inputTokens: []string{"llm.token_count.prompt"}, outputTokens: []string{"llm.token_count.completion"},
		totalTokens: []string{"llm.token_count.total"},
		inputKeys:   keys("input.value"), outputKeys: keys("output.value"),
		modelKeys: keys("llm.model_name", "embedding.model_name"), providerKey: keys("llm.provider"),
	},
	withGenAITokens(convention{
		name:     "Gemini CLI",
		spanType: geminiSpanType,
		input:    geminiInput, output: geminiOutput,
		modelKeys: genAIModelKeys, providerKey: genAIProvider, toolKeys: genAIToolKeys,
		messageFormat: func(a *ordered) string {
			if isGeminiCLI(a) {
				return "gemini"
			}
			return ""
		},
	}),
	withGenAITokens(convention{
		name:     "OTel GenAI",
		kindKeys: []string{attrGenAIOperation}, kinds: genAIKinds,
		inputKeys: genAIInputKeys, outputKeys: genAIOutputKeys,
		modelKeys: genAIModelKeys, providerKey: genAIProvider, toolKeys: genAIToolKeys,
	}),
	{
		name:     "Spring AI",
		kindKeys: []string{attrGenAIOperation}, kinds: map[string]string{"chat": "CHAT_MODEL", "embeddings": "EMBEDDING"},
		inputTokens: []string{attrGenAIInput}, outputTokens: []string{attrGenAIOutput},
		inputEvents: func(evs []spanEvent) (string, bool) { return eventValue(evs, "gen_ai.content.prompt", "gen_ai.prompt") },
		outputEvents: func(evs []spanEvent) (string, bool) {
			return eventValue(evs, "gen_ai.content.completion", "gen_ai.completion")
		},
	},
	{
		name:        "Traceloop",
		kindKeys:    []string{"traceloop.span.kind"},
		kinds:       map[string]string{"workflow": "WORKFLOW", "task": "TASK", "agent": "AGENT", "tool": "TOOL", "unknown": "UNKNOWN"},
		inputTokens: []string{"gen_ai.usage.prompt_tokens"}, outputTokens: []string{"gen_ai.usage.completion_tokens"},
		totalTokens: []string{"llm.usage.total_tokens"},
		inputKeys: []attrKey{{name: "traceloop.entity.input"},
			{pattern: regexp.MustCompile(`^gen_ai\.prompt\.\d+\.content`)},
			{pattern: regexp.MustCompile(`^gen_ai\.completion\.\d+\.tool_calls\.\d+\.arguments`)}},
		outputKeys:  []attrKey{{name: "traceloop.entity.output"}, {pattern: regexp.MustCompile(`^gen_ai\.completion\.\d+\.content`)}},
		providerKey: systemProvider,
	},
	{
		name:       "Google ADK",
		inputKeys:  keys("gcp.vertex.agent.llm_request", "gcp.vertex.agent.tool_call_args"),
		outputKeys: keys("gcp.vertex.agent.llm_response", "gcp.vertex.agent.tool_response"),
	},
	{
		name:     "Vercel AI SDK",
		kindKeys: []string{"ai.operationId"},
		kinds: map[string]string{
			"ai.generateText": "LLM", "ai.generateText.doGenerate": "LLM", "ai.toolCall": "TOOL",
			"ai.streamText": "LLM", "ai.streamText.doStream": "LLM", "ai.generateObject": "LLM",
			"ai.generateObject.doGenerate": "LLM", "ai.streamObject": "LLM", "ai.streamObject.doStream": "LLM",
			"ai.embed": "EMBEDDING", "ai.embed.doEmbed": "EMBEDDING", "ai.embedMany": "EMBEDDING",
		},
		input: vercelInput, output: vercelOutput,
	},
	{
		name: "VoltAgent",
		// span.type first: child spans inherit their agent's entity.type.
		kindKeys:     []string{"span.type", "entity.type"},
		kinds:        map[string]string{"agent": "AGENT", "llm": "LLM", "tool": "TOOL", "memory": "MEMORY"},
		inputTokens:  []string{"usage.prompt_tokens", "llm.usage.prompt_tokens"},
		outputTokens: []string{"usage.completion_tokens", "llm.usage.completion_tokens"},
		totalTokens:  []string{"usage.total_tokens", "llm.usage.total_tokens"},
		inputKeys:    keys("agent.messages", "llm.messages", "input"), outputKeys: keys("output"),
		messageFormat: func(a *ordered) string {
			if a.has("voltagent.operation_id") || a.has("voltagent.conversation_id") {
				return "voltagent"
			}
			return ""
		},
	},
	withGenAITokens(convention{
		name:        "LiveKit",
		spanType:    liveKitSpanType,
		inputKeys:   keys("lk.user_input", "lk.user_transcript", "lk.chat_ctx", "lk.input_text"),
		outputKeys:  keys("lk.response.text", "lk.response.function_calls"),
		inputEvents: genAIEventMessages, outputEvents: genAIEventChoices,
		modelKeys: genAIModelKeys, providerKey: genAIProvider, toolKeys: genAIToolKeys,
		messageFormat: func(a *ordered) string {
			for _, k := range a.keys {
				if strings.HasPrefix(k, "lk.") {
					return "livekit"
				}
			}
			return ""
		},
	}),
	{
		name:     "Laminar",
		kindKeys: []string{"lmnr.span.type"},
		kinds: map[string]string{"LLM": "LLM", "TOOL": "TOOL", "DEFAULT": "CHAIN", "PIPELINE": "CHAIN", "EXECUTOR": "AGENT",
			"EVALUATOR": "EVALUATOR", "HUMAN_EVALUATOR": "EVALUATOR", "EVALUATION": "EVALUATOR", "CACHED": "LLM"},
		inputTokens: []string{attrGenAIInput}, outputTokens: []string{attrGenAIOutput},
		inputKeys: keys("lmnr.span.input"), outputKeys: keys("lmnr.span.output"),
		modelKeys: genAIModelKeys, providerKey: systemProvider,
		messageFormat: func(a *ordered) string {
			if a.has("lmnr.span.type") {
				return "openai"
			}
			return ""
		},
	},
	{
		name:     "Langfuse",
		kindKeys: []string{"langfuse.observation.type"},
		kinds: map[string]string{"generation": "LLM", "embedding": "EMBEDDING", "tool": "TOOL", "retriever": "RETRIEVER",
			"agent": "AGENT", "chain": "CHAIN", "evaluator": "EVALUATOR", "guardrail": "GUARDRAIL", "span": "UNKNOWN"},
		inputKeys: keys("langfuse.observation.input"), outputKeys: keys("langfuse.observation.output"),
	},
}

// translateConventions adds to a span's attributes what the conventions
// give, as translate_span_when_storing does.
func translateConventions(a *ordered, events []spanEvent) {
	if cur, ok := a.get(AttrSpanType); !ok || cur == "" || isNullOrUnknown(cur) {
		for i := range conventions {
			if t := conventions[i].kindType(a); t != "" {
				a.set(AttrSpanType, mustJSON(t))
				break
			}
		}
	}
	if !a.has(AttrInputs) {
		if v, ok := firstValue(a, events, (*convention).inputValue, func(c *convention) func([]spanEvent) (string, bool) { return c.inputEvents }); ok {
			a.set(AttrInputs, json.RawMessage(v))
		}
	}
	if !a.has(AttrOutputs) {
		if v, ok := firstValue(a, events, (*convention).outputValue, func(c *convention) func([]spanEvent) (string, bool) { return c.outputEvents }); ok {
			a.set(AttrOutputs, json.RawMessage(v))
		}
	}
	if !a.has(AttrTokenUsage) {
		if u, ok := tokenUsage(a); ok {
			a.set(AttrTokenUsage, json.RawMessage(u))
		}
	}
	if !a.has(AttrMessageFormat) {
		for i := range conventions {
			if f := conventions[i].messageFormat; f != nil {
				if v := f(a); v != "" {
					a.set(AttrMessageFormat, mustJSON(v))
					break
				}
			}
		}
	}
	if !a.has(AttrChatTools) {
		for i := range conventions {
			if v, ok := a.firstNonEmpty(conventions[i].toolKeys); ok {
				a.set(AttrChatTools, json.RawMessage(v))
				break
			}
		}
	}
	if !a.has(AttrModel) {
		if m, ok := modelName(a); ok {
			a.set(AttrModel, json.RawMessage(m))
		}
	}
	if !a.has(AttrModelProvider) {
		for i := range conventions {
			if v, ok := a.firstNonEmpty(conventions[i].providerKey); ok {
				a.set(AttrModelProvider, dumpDecoded(v))
				break
			}
		}
	}
}

// kindType is the MLflow span type the convention gives the span, "" for
// none.
func (c *convention) kindType(a *ordered) string {
	if c.spanType != nil {
		return c.spanType(a)
	}
	for _, k := range c.kindKeys {
		if s, ok := a.str(k); ok {
			if t, ok := c.kinds[s]; ok {
				return t
			}
		}
	}
	return ""
}

func (c *convention) inputValue(a *ordered) (string, bool) {
	if c.input != nil {
		return c.input(a)
	}
	return a.firstNonEmpty(c.inputKeys)
}

func (c *convention) outputValue(a *ordered) (string, bool) {
	if c.output != nil {
		return c.output(a)
	}
	return a.firstNonEmpty(c.outputKeys)
}

// firstValue is the first convention's value from the attributes, else
// the first event-reading convention's value from the events.
func firstValue(a *ordered, events []spanEvent, attr func(*convention, *ordered) (string, bool),
	fromEvents func(*convention) func([]spanEvent) (string, bool)) (string, bool) {
	for i := range conventions {
		if v, ok := attr(&conventions[i], a); ok {
			return v, true
		}
	}
	if len(events) == 0 {
		return "", false
	}
	for i := range conventions {
		if f := fromEvents(&conventions[i]); f != nil {
			if v, ok := f(events); ok {
				return v, true
			}
		}
	}
	return "", false
}

// tokenUsage is the first convention's token usage, as MLflow writes it
// (json.dumps of {"input_tokens", "output_tokens", "total_tokens",
// "cache_read_input_tokens", "cache_creation_input_tokens"}, each only
// when known).
func tokenUsage(a *ordered) (string, bool) {
	first := func(ks []string) (int64, bool) {
		for _, k := range ks {
			if v, ok := a.get(k); ok && v != "" {
				return parseIntAttr(v)
			}
		}
		return 0, false
	}
	for i := range conventions {
		c := &conventions[i]
		in, hasIn := first(c.inputTokens)
		out, hasOut := first(c.outputTokens)
		total, hasTotal := first(c.totalTokens)
		if !hasTotal && hasIn && hasOut {
			total, hasTotal = in+out, true
		}
		if !hasIn && !hasOut && !hasTotal {
			continue
		}
		var b strings.Builder
		add := func(k string, n int64) {
			if b.Len() == 0 {
				b.WriteByte('{')
			} else {
				b.WriteString(", ")
			}
			b.WriteString(`"` + k + `": ` + strconv.FormatInt(n, 10))
		}
		if hasIn {
			add("input_tokens", in)
		}
		if hasOut {
			add("output_tokens", out)
		}
		if hasTotal {
			add("total_tokens", total)
		}
		if n, ok := first(c.cacheReadTokens); ok {
			add("cache_read_input_tokens", n)
		}
		if n, ok := first(c.cacheCreationTokens); ok {
			add("cache_creation_input_tokens", n)
		}
		b.WriteByte('}')
		return b.String(), true
	}
	return "", false
}

// modelName is the first convention's model name, else the "model" string
// of the span's inputs, else of its outputs (when the inputs have none).
func modelName(a *ordered) (string, bool) {
	for i := range conventions {
		if v, ok := a.firstNonEmpty(conventions[i].modelKeys); ok {
			return string(dumpDecoded(v)), true
		}
	}
	for _, k := range []string{AttrInputs, AttrOutputs} {
		t := trimSpace(a.vals[k])
		if len(t) == 0 || t[0] != '{' || (!bytes.Contains(t, []byte("model")) && !bytes.Contains(t, []byte(`\u`))) {
			// No object, or none with a "model" key (spelled out or
			// escaped): no need to decode it.
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(t, &obj) != nil {
			continue
		}
		m, ok := obj["model"]
		if !ok || !truthy(m) {
			continue
		}
		var s string
		if json.Unmarshal(m, &s) != nil {
			// A model that is not a string ends the search.
			return "", false
		}
		return string(mustJSON(s)), true
	}
	return "", false
}

// dumpDecoded is dump_span_attribute_value of a stored value decoded: a
// JSON string's text when it decodes to a string, else the value itself.
func dumpDecoded(v string) json.RawMessage {
	var s string
	if json.Unmarshal([]byte(v), &s) == nil {
		return mustJSON(s)
	}
	return json.RawMessage(v)
}

// --- The values of attributes, as MLflow's translators read them. ---

func (o *ordered) has(k string) bool { _, ok := o.vals[k]; return ok }

// str is the string a stored attribute value decodes to.
func (o *ordered) str(k string) (string, bool) {
	v, ok := o.vals[k]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// firstNonEmpty is the stored value of the first key whose value is
// non-empty (not null, false, 0, "", [] or {}).
func (o *ordered) firstNonEmpty(ks []attrKey) (string, bool) {
	for _, k := range ks {
		if k.pattern == nil {
			if v, ok := o.vals[k.name]; ok && truthy(v) {
				return string(v), true
			}
			continue
		}
		for _, name := range o.keys {
			if k.pattern.MatchString(name) && truthy(o.vals[name]) {
				return string(o.vals[name]), true
			}
		}
	}
	return "", false
}

// truthy tells whether a stored value is true in Python once decoded; a
// value that is not JSON is true when not empty.
func truthy[T ~string | ~[]byte](v T) bool {
	t := trimSpace(v)
	if len(t) == 0 {
		return false
	}
	switch t[0] {
	case '{', '[':
		rest := trimSpace(t[1:])
		return len(rest) == 0 || (rest[0] != '}' && rest[0] != ']')
	case '"':
		return string(t) != `""`
	case 'n':
		return string(t) != "null"
	case 'f':
		return string(t) != "false"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if f, err := strconv.ParseFloat(string(t), 64); err == nil {
			return f != 0
		}
	}
	return true
}

// trimSpace drops JSON's white space around a value.
func trimSpace[T ~string | ~[]byte](v T) T {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(v) > 0 && isSpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isSpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

// isNullOrUnknown tells whether a stored span type leaves the span's type
// to the conventions: null or UNKNOWN.
func isNullOrUnknown(v string) bool {
	t := strings.TrimSpace(v)
	if t == "null" {
		return true
	}
	var s string
	if json.Unmarshal([]byte(t), &s) == nil {
		return s == "UNKNOWN"
	}
	return t == "UNKNOWN"
}

// parseIntAttr reads a token count as MLflow's _parse_int_attribute does:
// a JSON integer, a JSON string holding one, or text that is one (a float
// or a boolean is no count).
func parseIntAttr(v string) (int64, bool) {
	t := trimSpace(v)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if json.Unmarshal([]byte(t), &s) != nil {
			return 0, false
		}
		t = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(t, 10, 64)
	return n, err == nil
}

// pyDumps is Python's json.dumps of the value a JSON text holds (the
// translators that build values write them so); the text itself when it
// cannot be read.
func pyDumps(v string) string {
	s, err := search.PyJSON([]byte(v), false)
	if err != nil {
		return v
	}
	return s
}

// loadJSON is the JSON text of a value decoded again while it is a string
// holding JSON, at most n times (Vercel's _safe_load_json and the like).
func loadJSON(v string, n int) string {
	for ; n > 0; n-- {
		var s string
		if json.Unmarshal([]byte(v), &s) != nil || !json.Valid([]byte(s)) {
			break
		}
		v = s
	}
	return v
}

// --- Conventions with their own rules. ---

// isGeminiCLI tells whether the span comes from Gemini CLI, which reuses
// gen_ai.operation.name with its own operation names.
func isGeminiCLI(a *ordered) bool {
	s, ok := a.str("gen_ai.agent.name")
	return ok && s == "gemini-cli"
}

func geminiSpanType(a *ordered) string {
	if !isGeminiCLI(a) {
		return ""
	}
	op, _ := a.str(attrGenAIOperation)
	return geminiKinds[op]
}

// geminiKinds are Gemini CLI's operation names MLflow types (user_prompt,
// system_prompt and schedule_tool_calls it leaves to the other rules).
var geminiKinds = map[string]string{"llm_call": "LLM", "tool_call": "TOOL", "agent_call": "AGENT"}

// geminiInput wraps Gemini CLI's input messages as the Gemini SDK's
// {"contents": ...} (MLflow's Gemini chat view reads that). MLflow's rule
// for system prompts compares the operation's stored (JSON-encoded) value
// with its plain name, so it never applies to spans received over OTLP;
// neither does it here.
func geminiInput(a *ordered) (string, bool) {
	if !isGeminiCLI(a) {
		return "", false
	}
	v, ok := a.firstNonEmpty(genAIInputKeys)
	if !ok {
		return "", false
	}
	var x any
	if json.Unmarshal([]byte(v), &x) != nil {
		return v, true
	}
	switch x.(type) {
	case []any, string:
		return `{"contents": ` + pyDumps(v) + `}`, true
	}
	return v, true
}

// geminiOutput merges the parts of Gemini CLI's output contents into one
// Gemini SDK candidate.
func geminiOutput(a *ordered) (string, bool) {
	if !isGeminiCLI(a) {
		return "", false
	}
	v, ok := a.firstNonEmpty(genAIOutputKeys)
	if !ok {
		return "", false
	}
	var items []json.RawMessage
	if json.Unmarshal([]byte(v), &items) != nil {
		return v, true
	}
	var parts []string
	for _, it := range items {
		var c map[string]json.RawMessage
		var ps []json.RawMessage
		if json.Unmarshal(it, &c) == nil && json.Unmarshal(c["parts"], &ps) == nil {
			for _, p := range ps {
				parts = append(parts, pyDumps(string(p)))
			}
		}
	}
	if len(parts) == 0 {
		return v, true
	}
	return `{"candidates": [{"content": {"role": "model", "parts": [` + strings.Join(parts, ", ") + `]}}]}`, true
}

// vercelChatSpan tells whether the span is a Vercel AI SDK model call,
// whose prompt and response are spread over ai.prompt.* and
// ai.response.* attributes.
func vercelChatSpan(a *ordered) bool {
	v, ok := a.get("ai.operationId")
	if !ok {
		return false
	}
	var s string
	if json.Unmarshal([]byte(loadJSON(v, 2)), &s) != nil {
		return false
	}
	return s == "ai.generateText.doGenerate" || s == "ai.streamText.doStream"
}

var (
	vercelInputKeys  = keys("ai.prompt", "ai.toolCall.args", "ai.value", "ai.values")
	vercelOutputKeys = keys("ai.response.text", "ai.toolCall.result", "ai.response.object", "ai.embedding", "ai.embeddings")
)

// vercelInput is the prompt of a model call: its ai.prompt.* attributes as
// one object (tools decoded), and MLflow marks the span's message format
// then, even when there is no prompt.
func vercelInput(a *ordered) (string, bool) {
	if !vercelChatSpan(a) {
		return a.firstNonEmpty(vercelInputKeys)
	}
	// MLflow sets the format's bare name, not its JSON encoding.
	a.set(AttrMessageFormat, json.RawMessage("vercel_ai"))
	return vercelUnpack(a, "ai.prompt.", true)
}

func vercelOutput(a *ordered) (string, bool) {
	if !vercelChatSpan(a) {
		return a.firstNonEmpty(vercelOutputKeys)
	}
	return vercelUnpack(a, "ai.response.", false)
}

// vercelUnpack is json.dumps of the object of the attributes under prefix
// (the rest of the key, the value decoded up to three times).
func vercelUnpack(a *ordered, prefix string, tools bool) (string, bool) {
	var b strings.Builder
	for _, k := range a.keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		v := loadJSON(string(mustJSON(string(a.vals[k]))), 3)
		if tools && k == prefix+"tools" {
			var list []json.RawMessage
			if json.Unmarshal([]byte(v), &list) == nil {
				parts := make([]string, len(list))
				for i, t := range list {
					parts[i] = loadJSON(string(t), 3)
				}
				v = "[" + strings.Join(parts, ",") + "]"
			}
		}
		if b.Len() == 0 {
			b.WriteByte('{')
		} else {
			b.WriteString(", ")
		}
		b.WriteString(search.PyJSONString(k[len(prefix):]) + ": " + pyDumps(v))
	}
	if b.Len() == 0 {
		return "", false
	}
	b.WriteByte('}')
	return b.String(), true
}

// liveKitSpanType types LiveKit Agents spans: model calls by their model
// or operation, the rest by the lk.* attributes they carry.
func liveKitSpanType(a *ordered) string {
	if a.has("gen_ai.request.model") {
		return "LLM"
	}
	if v, ok := a.get(attrGenAIOperation); ok && truthy(v) {
		op := v
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			op = s
		}
		if t, ok := genAIKinds[strings.ToLower(op)]; ok {
			return t
		}
	}
	for _, k := range a.keys {
		switch {
		case k == "lk.retry_count":
			return "LLM"
		case strings.HasPrefix(k, "lk.function_tool"):
			return "TOOL"
		case k == "lk.agent_name", k == "lk.instructions", k == "lk.generation_id":
			return "AGENT"
		case strings.HasPrefix(k, "lk.tts"), k == "lk.input_text",
			k == "lk.user_transcript", k == "lk.transcript_confidence", k == "lk.transcription_delay":
			return "UNKNOWN"
		}
	}
	return ""
}

// eventValue is the first non-empty attr of the first event named name
// that has one (Spring AI's prompt and completion events). MLflow stores
// a string as it is, not JSON-encoded.
func eventValue(evs []spanEvent, name, attr string) (string, bool) {
	for _, e := range evs {
		if e.name != name {
			continue
		}
		v, ok := e.attrs.get(attr)
		if !ok || !truthy(v) {
			continue
		}
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			return s, true
		}
		return v, true
	}
	return "", false
}

// genAIEventMessages are the chat messages of the GenAI conventions'
// message events, as json.dumps of [{"role", "content"}, ...].
func genAIEventMessages(evs []spanEvent) (string, bool) {
	roles := map[string]string{"gen_ai.system.message": "system", "gen_ai.user.message": "user", "gen_ai.assistant.message": "assistant"}
	var msgs []string
	for _, e := range evs {
		role, ok := roles[e.name]
		if !ok {
			continue
		}
		if c, ok := e.attrs.get("content"); ok && truthy(c) {
			msgs = append(msgs, `{"role": `+search.PyJSONString(role)+`, "content": `+pyDumps(loadJSON(c, 1))+`}`)
		}
	}
	if len(msgs) == 0 {
		return "", false
	}
	return "[" + strings.Join(msgs, ", ") + "]", true
}

// genAIEventChoices are the responses of the GenAI conventions'
// gen_ai.choice events, as json.dumps of [{"role", "content"}, ...].
func genAIEventChoices(evs []spanEvent) (string, bool) {
	var msgs []string
	for _, e := range evs {
		if e.name != "gen_ai.choice" {
			continue
		}
		c, ok := e.attrs.get("content")
		if !ok || !truthy(c) {
			continue
		}
		role := `"assistant"`
		if r, ok := e.attrs.get("role"); ok {
			role = loadJSON(r, 1)
		}
		msgs = append(msgs, `{"role": `+pyDumps(role)+`, "content": `+pyDumps(loadJSON(c, 1))+`}`)
	}
	if len(msgs) == 0 {
		return "", false
	}
	return "[" + strings.Join(msgs, ", ") + "]", true
}
