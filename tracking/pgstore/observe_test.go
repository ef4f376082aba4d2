package pgstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/pgdb"
	"github.com/caddy-mlflow/caddy-mlflow/internal/pgtest"
	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

type txRecord struct {
	op        string
	attempts  int
	committed bool
}

type txLog struct {
	mu  sync.Mutex
	txs []txRecord
}

func (l *txLog) ObserveTx(op string, attempts int, d time.Duration, committed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d < 0 {
		panic("negative duration")
	}
	l.txs = append(l.txs, txRecord{op, attempts, committed})
}

// TestTxObserver: every transaction is reported with its snake_case
// operation name and whether it committed; nil stops the reports.
func TestTxObserver(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.NewDatabase(t), pgdb.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var log txLog
	s.SetTxObserver(&log)
	id, err := s.CreateExperiment(ctx, tracking.CreateExperiment{Name: "observed", DefaultArtifactRoot: "mlflow-artifacts:/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetExperimentTag(ctx, "424242", tracking.Tag{Key: "k", Value: "v"}); err == nil {
		t.Fatal("tag on a missing experiment succeeded")
	}
	want := []txRecord{{"create_experiment", 1, true}, {"set_experiment_tag", 1, false}}
	log.mu.Lock()
	got := append([]txRecord(nil), log.txs...)
	log.mu.Unlock()
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("observed %+v, want %+v", got, want)
	}
	s.SetTxObserver(nil)
	if err := s.SetExperimentTag(ctx, id, tracking.Tag{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.txs) != len(want) {
		t.Fatalf("reported after SetTxObserver(nil): %+v", log.txs[len(want):])
	}
}
