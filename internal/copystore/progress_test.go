package copystore

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

func TestProgressTerminal(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b, true, time.Hour)
	p.update(storecopy.PhaseRuns, storecopy.Counts{Runs: 1234, MetricPoints: 5_000_000})
	p.update(storecopy.PhaseRuns, storecopy.Counts{Runs: 1235}) // within redrawEvery: not drawn
	p.done()
	out := b.String()
	if strings.Count(out, "\r\033[K") != 2 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("terminal output %q: want two in-place redraws (update, done) and a final newline", out)
	}
	if !strings.Contains(out, "[████▒▒") || !strings.Contains(out, "copying runs: 0 experiments, 1,234 runs, 5,000,000 metric points") {
		t.Fatalf("terminal line %q", out)
	}
}

func TestProgressPlain(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b, false, time.Hour)
	p.update(storecopy.PhaseExperiments, storecopy.Counts{Experiments: 1})
	p.update(storecopy.PhaseExperiments, storecopy.Counts{Experiments: 2})   // within the interval
	p.update(storecopy.PhaseRuns, storecopy.Counts{Experiments: 2, Runs: 1}) // a new phase: drawn
	p.done()                                                                 // the last state was drawn
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 || strings.Contains(b.String(), "\r") || strings.Contains(b.String(), "█") {
		t.Fatalf("plain output %q: want two plain lines", b.String())
	}
	if !strings.HasPrefix(lines[1], "copy-store: copying runs: 2 experiments, 1 runs") {
		t.Fatalf("plain line %q", lines[1])
	}
}
