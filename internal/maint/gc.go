package maint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// olderThanRe is MLflow's `mlflow gc --older-than` grammar (mlflow/cli.py
// gc): days, hours, minutes and seconds, each optional, in that order,
// each a decimal number such as 1.5.
var olderThanRe = regexp.MustCompile(`^((?P<days>[\.\d]+?)d)?((?P<hours>[\.\d]+?)h)?((?P<minutes>[\.\d]+?)m)?((?P<seconds>[\.\d]+?)s)?$`)

// ParseOlderThan parses an `--older-than` value ("30d", "2d8h5m20s",
// "1.5h") as MLflow does. The empty string is not allowed here: the caller
// passes no age instead.
func ParseOlderThan(s string) (time.Duration, error) {
	m := olderThanRe.FindStringSubmatch(s)
	if m == nil || s == "" {
		return 0, tracking.Errorf(tracking.InvalidParameterValue,
			"Could not parse any time information from '%s'. Examples of valid strings: '8h', '2d8h5m20s', '2m4s'", s)
	}
	unit := map[string]float64{"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
	var secs float64
	for i, name := range olderThanRe.SubexpNames() {
		if u, ok := unit[name]; ok && m[i] != "" {
			v, err := strconv.ParseFloat(m[i], 64)
			if err != nil {
				return 0, tracking.Errorf(tracking.InvalidParameterValue,
					"Could not parse any time information from '%s'. Examples of valid strings: '8h', '2d8h5m20s', '2m4s'", s)
			}
			secs += v * u
		}
	}
	// MLflow truncates timedelta.total_seconds()*1000 to whole ms.
	return time.Duration(int64(secs*1000)) * time.Millisecond, nil
}

// GCOptions select what CollectGarbage deletes, with `mlflow gc`'s flags.
type GCOptions struct {
	// OlderThan is --older-than ("" for no age limit).
	OlderThan string
	// RunIDs is --run-ids: only these runs (plus the runs of the selected
	// experiments). Nil: every deleted run old enough.
	RunIDs []string
	// ExperimentIDs is --experiment-ids: only these experiments. Nil: every
	// deleted experiment old enough.
	ExperimentIDs []string
	// Now is the clock (time.Now).
	Now func() time.Time
}

// ArtifactDeleter deletes the artifacts of run runID under its artifact
// URI. It returns ErrUnresolvable for URIs it cannot map to a store, and
// for locations that do not end in <run id>/artifacts (as every run
// location MLflow and this server make does): gc then warns and carries
// on, as MLflow does for an InvalidUrlException. The second rule keeps a
// crafted experiment location (a query string, "..") from pointing a
// deleted run at another run's or anybody's files.
type ArtifactDeleter func(ctx context.Context, uri, runID string) error

// ErrUnresolvable means an artifact URI names no store this process can
// reach.
var ErrUnresolvable = errors.New("artifact URI cannot be resolved")

// GCResult lists what CollectGarbage deleted.
type GCResult struct {
	Runs        []string
	Experiments []string
	// Warnings are artifact locations left alone (unresolvable URIs).
	Warnings []string
}

// CollectGarbage permanently deletes runs and experiments in the deleted
// lifecycle stage with `mlflow gc`'s rules (mlflow/cli.py gc):
//   - runs: the given --run-ids, else every deleted run whose deleted_time
//     is at least OlderThan ago; plus the deleted runs of the selected
//     experiments;
//   - experiments: the given --experiment-ids (an error if one is not
//     deleted, or with OlderThan not old enough by last_update_time), else
//     every deleted experiment (older than OlderThan when given);
//   - a selected run that is not deleted, or not old enough, is an error.
//
// Unlike MLflow, every selected run and experiment is checked before
// anything is deleted, so an error deletes nothing. Each run's artifacts
// are deleted (del) before its metadata, then experiments are deleted
// with everything left in them. Progress lines go to out, with MLflow's
// wording.
func CollectGarbage(ctx context.Context, store tracking.GarbageCollector, del ArtifactDeleter, opts GCOptions, out io.Writer) (GCResult, error) {
	var res GCResult
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if out == nil {
		out = io.Discard
	}
	var delta time.Duration
	if opts.OlderThan != "" {
		d, err := ParseOlderThan(opts.OlderThan)
		if err != nil {
			return res, err
		}
		delta = d
	}
	nowMs := now().UnixMilli()
	threshold := nowMs - delta.Milliseconds()

	deleted, err := store.DeletedRuns(ctx)
	if err != nil {
		return res, err
	}
	oldEnough := map[string]bool{}
	for _, r := range deleted {
		if r.DeletedTime <= threshold {
			oldEnough[r.RunID] = true
		}
	}
	var runIDs []string
	if opts.RunIDs != nil {
		runIDs = append(runIDs, opts.RunIDs...)
	} else {
		for _, r := range deleted {
			if oldEnough[r.RunID] {
				runIDs = append(runIDs, r.RunID)
			}
		}
	}

	var expIDs []string
	if opts.ExperimentIDs != nil {
		var active, young []string
		for _, id := range opts.ExperimentIDs {
			e, err := store.GCExperiment(ctx, id)
			if err != nil {
				return res, err
			}
			if e.LifecycleStage != tracking.LifecycleDeleted {
				active = append(active, id)
			} else if opts.OlderThan != "" && e.LastUpdateTime >= threshold {
				young = append(young, id)
			}
		}
		if len(active) > 0 {
			return res, tracking.Errorf(tracking.InvalidParameterValue,
				"Experiments %s are not in the deleted lifecycle stage. Only experiments in the deleted lifecycle stage can be hard-deleted.", pyList(active))
		}
		if len(young) > 0 {
			return res, tracking.Errorf(tracking.InvalidParameterValue,
				"Experiments %s are not older than the required age. Only experiments older than %s can be deleted.", pyList(young), opts.OlderThan)
		}
		expIDs = opts.ExperimentIDs
	} else {
		exps, err := store.DeletedExperiments(ctx)
		if err != nil {
			return res, err
		}
		for _, e := range exps {
			if opts.OlderThan == "" || e.LastUpdateTime < threshold {
				expIDs = append(expIDs, e.ExperimentID)
			}
		}
	}
	for _, id := range expIDs {
		runs, err := store.ExperimentRuns(ctx, id)
		if err != nil {
			return res, err
		}
		for _, r := range runs {
			if r.LifecycleStage == tracking.LifecycleDeleted {
				runIDs = append(runIDs, r.RunID)
			}
		}
	}

	// Check everything before deleting anything.
	seen := map[string]bool{}
	var runs []tracking.GCRun
	for _, id := range runIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		r, err := store.GCRun(ctx, id)
		if err != nil {
			return res, err
		}
		if r.LifecycleStage != tracking.LifecycleDeleted {
			return res, tracking.Errorf(tracking.InvalidParameterValue,
				"Run %s is not in `deleted` lifecycle stage. Only runs in `deleted` lifecycle stage can be deleted.", id)
		}
		if opts.OlderThan != "" && !oldEnough[id] {
			return res, tracking.Errorf(tracking.InvalidParameterValue,
				"Run %s is not older than the required age. Only runs older than %s can be deleted.", id, opts.OlderThan)
		}
		runs = append(runs, r)
	}

	for _, r := range runs {
		if del != nil && r.ArtifactURI != "" {
			if err := del(ctx, r.ArtifactURI, r.RunID); errors.Is(err, ErrUnresolvable) {
				w := fmt.Sprintf("Unable to resolve the artifact URI %q of run %s: its artifacts were left in place; delete them by hand.", r.ArtifactURI, r.RunID)
				res.Warnings = append(res.Warnings, w)
				fmt.Fprintln(out, w)
			} else if err != nil {
				return res, fmt.Errorf("deleting the artifacts of run %s at %s: %w", r.RunID, r.ArtifactURI, err)
			}
		}
		if err := store.HardDeleteRun(ctx, r.RunID); err != nil {
			return res, err
		}
		res.Runs = append(res.Runs, r.RunID)
		fmt.Fprintf(out, "Run with ID %s has been permanently deleted.\n", r.RunID)
	}
	for _, id := range expIDs {
		if err := store.HardDeleteExperiment(ctx, id); err != nil {
			return res, err
		}
		res.Experiments = append(res.Experiments, id)
		fmt.Fprintf(out, "Experiment with ID %s has been permanently deleted.\n", id)
	}
	return res, nil
}

// pyList formats ids as MLflow's message does (a Python list of strings).
func pyList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = "'" + id + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// StoreDeleter returns an ArtifactDeleter for URIs that point into the
// proxied artifact store (mlflow-artifacts:/…, or the server's
// /api/2.0/mlflow-artifacts/artifacts/… URL), with other schemes handed to
// other (nil: unresolvable).
func StoreDeleter(proxied artifact.Store, other ArtifactDeleter) ArtifactDeleter {
	return func(ctx context.Context, uri, runID string) error {
		if p, ok := artifact.URIPath(uri); ok && proxied != nil {
			if err := runLocation(p, runID); err != nil {
				return fmt.Errorf("%w: %q: %v", ErrUnresolvable, uri, err)
			}
			return proxied.Delete(ctx, p)
		}
		if other != nil {
			return other(ctx, uri, runID)
		}
		return fmt.Errorf("%w: %q", ErrUnresolvable, uri)
	}
}

// runLocation checks that the slash-separated path p ends in
// <runID>/artifacts.
func runLocation(p, runID string) error {
	if runID == "" || !strings.HasSuffix(p, "/"+runID+"/artifacts") && p != runID+"/artifacts" {
		return fmt.Errorf("the location does not end in %s/artifacts", runID)
	}
	return nil
}
