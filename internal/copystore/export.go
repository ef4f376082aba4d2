package copystore

import (
	"context"
	"io"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// Progress is copy-store's progress display (a live line on a terminal,
// plain periodic lines otherwise), for other commands that stream
// records into a store, such as `caddy mlflow import`.
type Progress struct{ p *progress }

// NewProgress returns a display writing to w; prefix starts each plain
// line (e.g. "import: ").
func NewProgress(w io.Writer, prefix string, tty bool, interval time.Duration) *Progress {
	p := newProgress(w, tty, interval)
	p.prefix = prefix
	return &Progress{p: p}
}

// Update records the phase and counts; it draws when due.
func (p *Progress) Update(phase string, c storecopy.Counts) { p.p.update(phase, c) }

// Done draws the final state and ends the live line.
func (p *Progress) Done() { p.p.done() }

// Elapsed is the time since the display started.
func (p *Progress) Elapsed() time.Duration { return p.p.elapsed() }

// OpenDestination opens a backend_store_uri (a bbolt path, bbolt:///abs
// or postgresql://) for writing, as copy-store opens its destination: a
// bbolt file must not be held by a running server. resolve may be
// nil. It returns the store, a name for messages and the closer.
func OpenDestination(ctx context.Context, uri string, resolve func(string) (string, error)) (storecopy.Destination, string, func() error, error) {
	cfg := Config{ResolveBolt: resolve, LockTimeout: DefaultLockTimeout}
	if cfg.ResolveBolt == nil {
		cfg.ResolveBolt = resolveBolt
	}
	ep, err := open(ctx, cfg, uri, false)
	if err != nil {
		return nil, "", nil, err
	}
	return ep.store, ep.name, ep.close, nil
}
