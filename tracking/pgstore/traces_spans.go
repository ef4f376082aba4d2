package pgstore

import (
	"fmt"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/search"
)

// spanColumns maps span clause keys to trace_spans columns.
var spanColumns = map[string]string{"name": "sp.name", "type": "sp.type", "status": "sp.status", "content": "sp.content"}

// traceSpanCond compiles a filter's span clauses into one EXISTS over the
// trace's spans: like MLflow's SqlAlchemyStore, every span clause applies
// to the same span. "" when the filter has none.
func traceSpanCond(a *sqlArgs, clauses []search.Clause) (string, error) {
	var conds []string
	for i := range clauses {
		c := &clauses[i]
		if c.Entity != search.EntitySpan {
			continue
		}
		col := spanColumns[c.Key]
		if strings.HasPrefix(c.Key, "attributes.") {
			// span.attributes.<key>: the pattern (search.spanAttrPattern)
			// is matched against the content, as MLflow does.
			col = "sp.content"
		}
		if col == "" {
			return "", fmt.Errorf("span clause on %q", c.Key)
		}
		m, err := stringMatch(a, col, c)
		if err != nil {
			return "", err
		}
		conds = append(conds, m)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return "EXISTS (SELECT 1 FROM trace_spans sp WHERE sp.request_id = ti.request_id AND " + strings.Join(conds, " AND ") + ")", nil
}
