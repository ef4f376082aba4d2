package storecopy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
)

// Destination is a store that can be read back and imported into.
type Destination interface {
	tracking.Store
	tracking.ImportTarget
}

// ErrNotEmpty is returned by Copy when the destination already holds
// records and Force is not set.
var ErrNotEmpty = errors.New("the destination store is not empty")

// ErrMismatch is returned (wrapped, with the kinds) by Copy when the
// destination's counts read back after the copy differ from the source's.
var ErrMismatch = errors.New("verification failed")

// PhaseVerify is the phase reported while the destination is read back.
const PhaseVerify = "verify"

// Options tune Copy.
type Options struct {
	ReadOptions
	// Force writes into a destination that is not empty: records with the
	// ids of copied ones are replaced, others are left alone.
	Force bool
	// Auth, when set, copies the gateway's users, tokens, grants and
	// sessions after the tracking records.
	Auth *AuthPair
	// Progress, when set, is called after each record with the phase and
	// the counts so far (of the copy, then of the verification read).
	Progress func(phase string, c Counts)
}

// Report is the outcome of a copy.
type Report struct {
	// Source counts what was read from the source (and written).
	Source Counts
	// Destination counts what the destination holds, read back.
	Destination Counts
	// WasEmpty reports whether the destination was empty before.
	WasEmpty bool
	// Mismatches are the kinds whose counts disagree (see Compare).
	Mismatches []Mismatch
}

// Copy streams every record of src into dst (see Read), then reads dst
// back the same way and compares the counts. It refuses a non-empty
// destination unless opts.Force. A verification mismatch is an error
// wrapping ErrMismatch, returned with the report.
func Copy(ctx context.Context, src tracking.Store, dst Destination, opts Options) (*Report, error) {
	rep := &Report{}
	empty, err := dst.IsEmpty(ctx)
	if err != nil {
		return nil, fmt.Errorf("checking the destination: %w", err)
	}
	if opts.Auth != nil && empty {
		if empty, err = opts.Auth.To.IsEmpty(ctx); err != nil {
			return nil, fmt.Errorf("checking the destination's users: %w", err)
		}
	}
	rep.WasEmpty = empty
	if !empty && !opts.Force {
		return nil, ErrNotEmpty
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, Counts) {}
	}

	counter := &Counter{}
	ro := opts.ReadOptions
	ro.OnRecord = func(phase string) { progress(phase, counter.Snapshot()) }
	if err := Read(ctx, src, Tee(dst, counter), ro); err != nil {
		return nil, err
	}
	if opts.Auth != nil {
		if err := copyAuth(ctx, opts.Auth.From, opts.Auth.To, counter, ro.OnRecord); err != nil {
			return nil, err
		}
	}
	if err := dst.FinishImport(ctx); err != nil {
		return nil, fmt.Errorf("finishing the import: %w", err)
	}
	rep.Source = counter.Snapshot()

	check := &Counter{}
	ro.OnRecord = func(string) { progress(PhaseVerify, check.Snapshot()) }
	if err := Read(ctx, dst, check, ro); err != nil {
		return nil, fmt.Errorf("verifying: %w", err)
	}
	if opts.Auth != nil {
		if err := copyAuth(ctx, opts.Auth.To, nil, check, ro.OnRecord); err != nil {
			return nil, fmt.Errorf("verifying: %w", err)
		}
	}
	rep.Destination = check.Snapshot()
	rep.Mismatches = Compare(rep.Source, rep.Destination, !rep.WasEmpty)
	if len(rep.Mismatches) > 0 {
		var b strings.Builder
		for i, m := range rep.Mismatches {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(m.String())
		}
		return rep, fmt.Errorf("%w: %s", ErrMismatch, b.String())
	}
	return rep, nil
}

// Count reads every record of a store and counts them by kind.
func Count(ctx context.Context, s tracking.Store, opts ReadOptions) (Counts, error) {
	c := &Counter{}
	err := Read(ctx, s, c, opts)
	return c.Snapshot(), err
}

// Tee returns an Importer that gives every record to each of ims in
// turn, stopping at the first error.
func Tee(ims ...tracking.Importer) tracking.Importer { return tee(ims) }

type tee []tracking.Importer

func (t tee) each(fn func(tracking.Importer) error) error {
	for _, im := range t {
		if err := fn(im); err != nil {
			return err
		}
	}
	return nil
}

func (t tee) ImportExperiment(ctx context.Context, e *tracking.Experiment) error {
	return t.each(func(im tracking.Importer) error { return im.ImportExperiment(ctx, e) })
}

func (t tee) ImportRun(ctx context.Context, r *tracking.Run) error {
	return t.each(func(im tracking.Importer) error { return im.ImportRun(ctx, r) })
}

func (t tee) ImportMetricHistory(ctx context.Context, runID string, points []tracking.Metric) error {
	return t.each(func(im tracking.Importer) error { return im.ImportMetricHistory(ctx, runID, points) })
}

func (t tee) FinishRunImport(ctx context.Context, runID string) error {
	return t.each(func(im tracking.Importer) error { return im.FinishRunImport(ctx, runID) })
}

func (t tee) ImportLoggedModel(ctx context.Context, m *tracking.LoggedModel) error {
	return t.each(func(im tracking.Importer) error { return im.ImportLoggedModel(ctx, m) })
}

func (t tee) ImportRegisteredModel(ctx context.Context, m *tracking.RegisteredModel, maxVersion int64) error {
	return t.each(func(im tracking.Importer) error { return im.ImportRegisteredModel(ctx, m, maxVersion) })
}

func (t tee) ImportModelVersion(ctx context.Context, v *tracking.ModelVersion) error {
	return t.each(func(im tracking.Importer) error { return im.ImportModelVersion(ctx, v) })
}

func (t tee) ImportTrace(ctx context.Context, tr *tracking.TraceInfo) error {
	return t.each(func(im tracking.Importer) error { return im.ImportTrace(ctx, tr) })
}
