package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// TagLinkedPrompts is MLflow's TraceTagKey.LINKED_PROMPTS: the prompt
// versions a trace (or run) used, as a JSON list of {"name", "version"}.
const TagLinkedPrompts = "mlflow.linkedPrompts"

// registerPrompts adds the prompt registry's one route of its own:
// MlflowService.linkPromptsToTrace. Prompts, their versions, aliases and
// tags are registered models and versions (registry.go).
func (s *Server) registerPrompts() {
	s.addTracking("POST", "/traces/link-prompts", "LinkPromptsToTrace", (*Server).linkPromptsToTrace)
}

// promptVersionRef is LinkPromptsToTrace.PromptVersionRef.
type promptVersionRef struct {
	Name, Version string
}

func (p *promptVersionRef) validate() error {
	if p.Name == "" {
		return invalidParam("Missing value for required parameter 'prompt_versions.name'.")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(p.Version), 10, 64)
	if err != nil {
		return invalidParam("Prompt version must be an integer, got '%s'.", p.Version)
	}
	// MLflow's handler reads the version with int(), so "01" is version 1.
	p.Version = strconv.FormatInt(n, 10)
	return nil
}

// linkPromptsRequest is LinkPromptsToTrace.
type linkPromptsRequest struct {
	TraceID string
	Prompts []promptVersionRef
}

func (q *linkPromptsRequest) decl() []spec {
	return []spec{
		str("trace_id", &q.TraceID).req(),
		msgList("prompt_versions", &q.Prompts, func(p *promptVersionRef) []spec {
			return []spec{str("name", &p.Name), str("version", &p.Version)}
		}).req(),
	}
}

// linkPromptsMu serializes the read-modify-write of a trace's
// linked-prompts tag, as MLflow's client holds _link_to_trace_lock.
var linkPromptsMu sync.Mutex

// linkPromptsToTrace is MLflow's _link_prompts_to_trace. MLflow's SQL store
// records each link as an entity association; here the link is the trace's
// mlflow.linkedPrompts tag, merged as MLflow's update_linked_prompts_tag
// merges it (the value the Python client writes right after this call),
// so the trace's tags show its prompts however they were linked.
func (s *Server) linkPromptsToTrace(w http.ResponseWriter, r *http.Request) error {
	return with(r, func(q *linkPromptsRequest) error {
		if len(q.Prompts) == 0 {
			return writeEmpty(w)
		}
		linkPromptsMu.Lock()
		defer linkPromptsMu.Unlock()
		t, err := s.store.GetTraceInfo(r.Context(), q.TraceID)
		if err != nil {
			return err
		}
		cur, ok := t.Tag(TagLinkedPrompts)
		next, changed, err := mergeLinkedPrompts(cur, ok, q.Prompts)
		if err != nil || !changed {
			return answerEmpty(w, err)
		}
		return answerEmpty(w, s.store.SetTraceTag(r.Context(), q.TraceID, tracking.Tag{Key: TagLinkedPrompts, Value: next}))
	})
}

// mergeLinkedPrompts adds refs missing from a linked-prompts tag value
// (present reports whether the tag exists), keeping the entries there and
// their order. A value that is no JSON list is an error, as in MLflow.
func mergeLinkedPrompts(cur string, present bool, refs []promptVersionRef) (string, bool, error) {
	var list []json.RawMessage
	if present {
		if err := json.Unmarshal([]byte(cur), &list); err != nil || list == nil && strings.TrimSpace(cur) != "[]" {
			var probe any
			if json.Unmarshal([]byte(cur), &probe) != nil {
				return "", false, invalidParam("Invalid JSON format for '%s' tag: %s", TagLinkedPrompts, cur)
			}
			return "", false, invalidParam("Invalid format for '%s' tag: %s", TagLinkedPrompts, cur)
		}
	}
	seen := map[promptVersionRef]bool{}
	for _, raw := range list {
		var e map[string]any
		if json.Unmarshal(raw, &e) == nil {
			name, _ := e["name"].(string)
			version, _ := e["version"].(string)
			if len(e) == 2 {
				seen[promptVersionRef{name, version}] = true
			}
		}
	}
	changed := false
	for _, p := range refs {
		if seen[p] {
			continue
		}
		seen[p] = true
		b, err := json.Marshal(p.Name)
		if err != nil {
			return "", false, fmt.Errorf("encode prompt name: %w", err)
		}
		// Python's json.dumps spacing, as the client writes the tag.
		list = append(list, json.RawMessage(fmt.Sprintf(`{"name": %s, "version": "%s"}`, b, p.Version)))
		changed = true
	}
	if !changed {
		return cur, false, nil
	}
	parts := make([]string, len(list))
	for i, raw := range list {
		parts[i] = string(raw)
	}
	return "[" + strings.Join(parts, ", ") + "]", true, nil
}
