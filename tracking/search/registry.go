package search

import (
	"cmp"
	"strings"
)

// Registry search grammars (MLflow's SearchModelUtils and
// SearchModelVersionUtils with the SQL registry store):
//
//   - registered models: attribute name (= != LIKE ILIKE) and tags
//     (= != LIKE ILIKE); order_by name, timestamp or last_updated_timestamp
//     (both timestamps sort by last update), tie-breaker name ASC;
//   - model versions: attributes name, run_id, source_path (= != LIKE
//     ILIKE; IN for run_id only) and version_number (numeric comparators),
//     tags as for models; order_by name, version_number,
//     creation_timestamp, last_updated_timestamp, default
//     last_updated_timestamp DESC, tie-breakers name ASC and
//     version_number DESC.
//
// Comparators are matched case-insensitively. Entities are none,
// "attribute", "tag" or "tags". Prompts (entities tagged
// mlflow.prompt.is_prompt = 'true') are left out unless the filter has a
// clause on that tag; a "!=" clause on it also matches entities without the
// tag (the client sends tag.`mlflow.prompt.is_prompt` != 'true' to mean
// "not a prompt").

// promptTagKey is MLflow's IS_PROMPT_TAG_KEY.
const promptTagKey = "mlflow.prompt.is_prompt"

// Attribute codes of registry clauses.
const (
	attrRMName attrCode = 64 + iota
	attrMVName
	attrMVRunID
	attrMVSource
	attrMVVersion
)

// RegisteredModelView gives a matcher or comparator access to one
// registered model.
type RegisteredModelView interface {
	Name() string
	Tag(key string) (string, bool)
	LastUpdatedTimestamp() int64
}

// ModelVersionView gives a matcher or comparator access to one model
// version.
type ModelVersionView interface {
	Name() string
	Version() int64
	RunID() string
	Source() string
	Tag(key string) (string, bool)
	CreationTimestamp() int64
	LastUpdatedTimestamp() int64
}

const registryEntitiesText = "('attribute', 'tag', 'tags')"

// registryEntity resolves the entity part of a registry identifier.
func registryEntity(ident string) (Entity, string, *Error) {
	ent, key, hasEnt := splitIdent(ident)
	e := EntityAttribute
	if hasEnt {
		switch trimBackticks(ent) {
		case "attribute":
		case "tag", "tags":
			e = EntityTag
		default:
			return e, "", errorf("Invalid entity type '%s'. Valid entity types are %s", trimBackticks(ent), registryEntitiesText)
		}
	}
	return e, trimBackticks(stripQuotes(key)), nil
}

// registryString reads the quoted string operand of a registry clause.
func registryString(c *Clause, v rawValue) *Error {
	if v.kind != vString && v.kind != vIdent {
		if c.Entity == EntityTag {
			return errorf("Expected a quoted string value for tag (e.g. 'my-value'). Got value %s", v.text)
		}
		return errorf("Expected a quoted string value for attributes. Got value %s", v.text)
	}
	s, err := stringValue(v)
	if err != nil {
		return err
	}
	c.Str = s
	return nil
}

// ParseRegisteredModelFilter parses a search_registered_models filter. An
// empty filter matches every model that is not a prompt.
func ParseRegisteredModelFilter(filter string) ([]Clause, error) {
	raws, err := structure(filter)
	if err != nil {
		return nil, err
	}
	out := make([]Clause, 0, len(raws))
	for _, rc := range raws {
		var c Clause
		var perr *Error
		c.Entity, c.Key, perr = registryEntity(rc.ident)
		if perr != nil {
			return nil, perr
		}
		c.Op = normalizeOp(rc.op)
		if c.Entity == EntityAttribute {
			if c.Key != "name" {
				return nil, errorf("Invalid attribute key '%s' specified. Valid keys are '{'name'}'", c.Key)
			}
			c.attr = attrRMName
		}
		if rc.null || !isStringOp(c.Op) {
			return nil, invalidComparator(c.Op, opsStringText)
		}
		if perr := registryString(&c, rc.val); perr != nil {
			return nil, perr
		}
		compile(&c)
		out = append(out, c)
	}
	return out, nil
}

var mvFilterAttrs = map[string]attrCode{
	"name":           attrMVName,
	"run_id":         attrMVRunID,
	"source_path":    attrMVSource,
	"version_number": attrMVVersion,
}

const mvFilterAttrsText = "{'name', 'run_id', 'source_path', 'version_number'}"

// ParseModelVersionFilter parses a search_model_versions filter. An empty
// filter matches every live version that is not a prompt version.
func ParseModelVersionFilter(filter string) ([]Clause, error) {
	raws, err := structure(filter)
	if err != nil {
		return nil, err
	}
	out := make([]Clause, 0, len(raws))
	for _, rc := range raws {
		var c Clause
		var perr *Error
		c.Entity, c.Key, perr = registryEntity(rc.ident)
		if perr != nil {
			return nil, perr
		}
		c.Op = normalizeOp(rc.op)
		if rc.null {
			return nil, invalidComparator(c.Op, opsStringText)
		}
		if c.Entity == EntityAttribute {
			code, ok := mvFilterAttrs[c.Key]
			if !ok {
				return nil, errorf("Invalid attribute key '%s' specified. Valid keys are '%s'", c.Key, mvFilterAttrsText)
			}
			c.attr = code
		}
		v := rc.val
		switch {
		case c.attr == attrMVVersion:
			if !isNumericOp(c.Op) {
				return nil, invalidComparator(c.Op, opsNumericText)
			}
			f, ok := parseNumber(v)
			if !ok {
				return nil, errorf("Expected numeric value type for numeric attribute: %s. Found %s", c.Key, v.text)
			}
			c.Num, c.Str = f, v.text
		case c.Op == OpIn:
			if c.attr != attrMVRunID || v.kind != vList {
				return nil, errorf("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
			}
			l, perr := parseList(v)
			if perr != nil {
				return nil, perr
			}
			c.List = l
		default:
			if !isStringOp(c.Op) {
				if c.attr == attrMVRunID {
					return nil, invalidComparator(c.Op, "{'=', '!=', 'LIKE', 'ILIKE', 'IN'}")
				}
				return nil, invalidComparator(c.Op, opsStringText)
			}
			if v.kind == vList {
				return nil, errorf("Only the 'run_id' attribute supports comparison with a list of quoted string values.")
			}
			if perr := registryString(&c, v); perr != nil {
				return nil, perr
			}
		}
		compile(&c)
		out = append(out, c)
	}
	return out, nil
}

// mentionsPromptTag reports whether a filter has a clause on the prompt tag.
func mentionsPromptTag(clauses []Clause) bool {
	for i := range clauses {
		if clauses[i].Entity == EntityTag && clauses[i].Key == promptTagKey {
			return true
		}
	}
	return false
}

// matchRegistryTag matches a tag clause; "!=" on the prompt tag also
// matches an absent tag.
func matchRegistryTag(c *Clause, v string, ok bool) bool {
	if !ok {
		return c.Key == promptTagKey && c.Op == OpNe
	}
	return matchString(c, v)
}

// isPrompt reports whether an entity's tags mark it as a prompt.
func isPrompt(tag func(string) (string, bool)) bool {
	v, ok := tag(promptTagKey)
	return ok && strings.EqualFold(v, "true")
}

// MatchRegisteredModel reports whether a model satisfies every clause (as
// produced by ParseRegisteredModelFilter); prompts only match filters that
// mention the prompt tag.
func MatchRegisteredModel(clauses []Clause, m RegisteredModelView) bool {
	if !mentionsPromptTag(clauses) && isPrompt(m.Tag) {
		return false
	}
	for i := range clauses {
		c := &clauses[i]
		switch c.Entity {
		case EntityTag:
			v, ok := m.Tag(c.Key)
			if !matchRegistryTag(c, v, ok) {
				return false
			}
		default:
			if !matchString(c, m.Name()) {
				return false
			}
		}
	}
	return true
}

// MatchModelVersion reports whether a version satisfies every clause (as
// produced by ParseModelVersionFilter); prompt versions only match filters
// that mention the prompt tag.
func MatchModelVersion(clauses []Clause, mv ModelVersionView) bool {
	if !mentionsPromptTag(clauses) && isPrompt(mv.Tag) {
		return false
	}
	for i := range clauses {
		c := &clauses[i]
		if c.Entity == EntityTag {
			v, ok := mv.Tag(c.Key)
			if !matchRegistryTag(c, v, ok) {
				return false
			}
			continue
		}
		attr := c.attr
		if attr == attrNone {
			attr = mvFilterAttrs[c.Key]
		}
		var ok bool
		switch attr {
		case attrMVName:
			ok = matchString(c, mv.Name())
		case attrMVRunID:
			ok = matchString(c, mv.RunID())
		case attrMVSource:
			ok = matchString(c, mv.Source())
		case attrMVVersion:
			ok = compareNum(float64(mv.Version()), c.Op, c.Num)
		}
		if !ok {
			return false
		}
	}
	return true
}

// parseRegistryOrderBy parses order_by entries whose keys must be in valid
// (aliases map to their canonical key).
func parseRegistryOrderBy(orderBy []string, valid map[string]string, validText string) ([]OrderKey, error) {
	keys := make([]OrderKey, 0, len(orderBy))
	seen := make(map[string]bool, len(orderBy))
	for _, s := range orderBy {
		raw, asc, err := parseOrderClause(s)
		if err != nil {
			return nil, err
		}
		ent, key, perr := registryEntity(raw)
		if perr != nil {
			return nil, perr
		}
		canon, ok := valid[key]
		if ent != EntityAttribute || !ok {
			return nil, errorf("Invalid order by key '%s' specified. Valid keys are '%s'", key, validText)
		}
		if seen[canon] {
			return nil, errorf("`order_by` contains duplicate fields: %s", pyListRepr(orderBy))
		}
		seen[canon] = true
		keys = append(keys, OrderKey{Entity: EntityAttribute, Key: canon, Asc: asc})
	}
	return keys, nil
}

var rmOrderKeys = map[string]string{
	"name": "name", "timestamp": "last_updated_timestamp", "last_updated_timestamp": "last_updated_timestamp",
}

// ParseRegisteredModelOrderBy parses search_registered_models order_by
// entries: name, timestamp or last_updated_timestamp, with an optional
// case-insensitive ASC/DESC. Both timestamp keys become
// last_updated_timestamp.
func ParseRegisteredModelOrderBy(orderBy []string) ([]OrderKey, error) {
	return parseRegistryOrderBy(orderBy, rmOrderKeys, "{'name', 'timestamp', 'last_updated_timestamp'}")
}

var mvOrderKeys = map[string]string{
	"name": "name", "version_number": "version_number",
	"creation_timestamp": "creation_timestamp", "last_updated_timestamp": "last_updated_timestamp",
}

// ParseModelVersionOrderBy parses search_model_versions order_by entries:
// name, version_number, creation_timestamp or last_updated_timestamp.
func ParseModelVersionOrderBy(orderBy []string) ([]OrderKey, error) {
	return parseRegistryOrderBy(orderBy, mvOrderKeys,
		"{'name', 'version_number', 'creation_timestamp', 'last_updated_timestamp'}")
}

// CompareRegisteredModels orders two models by keys, then name ASC (names
// are unique). Names compare bytewise, as SQLite's default collation does.
func CompareRegisteredModels(keys []OrderKey, a, b RegisteredModelView) int {
	for i := range keys {
		k := &keys[i]
		var c int
		switch k.Key {
		case "name":
			c = strings.Compare(a.Name(), b.Name())
		case "last_updated_timestamp":
			c = cmp.Compare(a.LastUpdatedTimestamp(), b.LastUpdatedTimestamp())
		}
		if !k.Asc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return strings.Compare(a.Name(), b.Name())
}

var defaultModelVersionOrder = []OrderKey{{Entity: EntityAttribute, Key: "last_updated_timestamp"}}

// CompareModelVersions orders two versions by keys (default
// last_updated_timestamp DESC), then name ASC, then version_number DESC.
func CompareModelVersions(keys []OrderKey, a, b ModelVersionView) int {
	if len(keys) == 0 {
		keys = defaultModelVersionOrder
	}
	for i := range keys {
		k := &keys[i]
		var c int
		switch k.Key {
		case "name":
			c = strings.Compare(a.Name(), b.Name())
		case "version_number":
			c = cmp.Compare(a.Version(), b.Version())
		case "creation_timestamp":
			c = cmp.Compare(a.CreationTimestamp(), b.CreationTimestamp())
		case "last_updated_timestamp":
			c = cmp.Compare(a.LastUpdatedTimestamp(), b.LastUpdatedTimestamp())
		}
		if !k.Asc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	if c := strings.Compare(a.Name(), b.Name()); c != 0 {
		return c
	}
	return cmp.Compare(b.Version(), a.Version())
}
