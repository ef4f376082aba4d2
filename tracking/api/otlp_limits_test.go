package api

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/boltstore"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/otlpspans"
)

// TestOTLPLimitsOption: out-of-range OTLP bounds fail New; lowered ones
// bound the route.
func TestOTLPLimitsOption(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "m.bolt"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(Options{Store: st, OTLPLimits: otlpspans.Limits{MaxSpans: -1}}); err == nil || !strings.Contains(err.Error(), "max_spans -1") {
		t.Fatalf("New with negative max_spans: %v", err)
	}
	ts, _ := newTestServer(t, func(o *Options) { o.OTLPLimits = otlpspans.Limits{MaxSpans: 2} })
	exp := mkExperiment(t, ts, "lim")
	wantOTLPStatus(t, otlpPost(t, ts, exp, "application/x-protobuf", "", mustProto(t, otlpRequest(bytes.Repeat([]byte{3}, 16)))),
		413, "application/x-protobuf", "3 spans, more than the 2")
}
