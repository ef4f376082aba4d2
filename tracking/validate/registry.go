package validate

import (
	"strings"
	"unicode"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Model registry limits (mlflow/utils/validation.py, MLflow 2.22 to 3.x).
// Lengths are code points.
const (
	MaxRegistryTagKeyLength   = 250  // MAX_MODEL_REGISTRY_TAG_KEY_LENGTH
	MaxRegistryTagValueLength = 5000 // MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
	MaxAliasLength            = 255  // MAX_REGISTERED_MODEL_ALIAS_LENGTH
)

// PromptTextTagKey is the model version tag holding a prompt's text
// (mlflow.entities.model_registry.prompt.PROMPT_TEXT_TAG_KEY).
const PromptTextTagKey = "mlflow.prompt.text"

// RegisteredModelTag checks a registered model tag as MLflow's
// _validate_registered_model_tag does: the name rules on the key (parameter
// 'key'), then key ≤ 250 ("'key' exceeds the maximum length of 250
// characters"), then value ≤ 5000 ("'value' exceeds the maximum length of
// 5000 characters").
func RegisteredModelTag(key, value string) error {
	if err := checkName(key, elemPath{}, "key"); err != nil {
		return err
	}
	if exceedsRunes(key, MaxRegistryTagKeyLength) {
		return exceedsMaxLength("key", MaxRegistryTagKeyLength)
	}
	if exceedsRunes(value, MaxRegistryTagValueLength) {
		return exceedsMaxLength("value", MaxRegistryTagValueLength)
	}
	return nil
}

// ModelVersionTag checks a model version tag as MLflow's
// _validate_model_version_tag does: the name rules on the key, key ≤ 250,
// then for the prompt text tag "Prompt text exceeds max length of 5000
// characters.", then value ≤ 5000.
func ModelVersionTag(key, value string) error {
	if err := checkName(key, elemPath{}, "key"); err != nil {
		return err
	}
	if exceedsRunes(key, MaxRegistryTagKeyLength) {
		return exceedsMaxLength("key", MaxRegistryTagKeyLength)
	}
	if exceedsRunes(value, MaxRegistryTagValueLength) {
		if key == PromptTextTagKey {
			return tracking.Errorf(invalidParamValue, "Prompt text exceeds max length of %d characters.", MaxRegistryTagValueLength)
		}
		return exceedsMaxLength("value", MaxRegistryTagValueLength)
	}
	return nil
}

// ModelAlias checks a registered model alias as MLflow's
// _validate_model_alias_name does, in its order: non-empty; only \w
// characters (Python's Unicode-aware class) and '-'; at most 255 code
// points ("'Registered model alias name' exceeds the maximum length of 255
// characters"); not "latest" in any case; not a version alias (v or V then
// decimal digits).
func ModelAlias(alias string) error {
	if alias == "" {
		return tracking.Errorf(invalidParamValue, "Registered model alias name cannot be empty.")
	}
	for _, r := range stripFinalNewline(alias) {
		if r != '-' && !isWordRune(r) {
			return tracking.Errorf(invalidParamValue,
				"Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
		}
	}
	if exceedsRunes(alias, MaxAliasLength) {
		return exceedsMaxLength("Registered model alias name", MaxAliasLength)
	}
	if strings.ToLower(alias) == "latest" {
		return tracking.Errorf(invalidParamValue, "'latest' alias name (case insensitive) is reserved.")
	}
	if isVersionAlias(alias) {
		return tracking.Errorf(invalidParamValue, "Version alias name '%s' is reserved.", alias)
	}
	return nil
}

// isVersionAlias is MLflow's ^[vV]\d+$ with Python semantics (\d is any
// Unicode decimal digit; $ also matches before a final newline).
func isVersionAlias(alias string) bool {
	s := stripFinalNewline(alias)
	if len(s) < 2 || (s[0] != 'v' && s[0] != 'V') {
		return false
	}
	for _, r := range s[1:] {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}
