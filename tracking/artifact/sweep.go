package artifact

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of the clean-up of interrupted uploads (Sweep, StartSweeper).
const (
	// DefaultTempAge is how old (since its last write) a temporary upload
	// file must be before Sweep removes it. An upload in flight in this
	// process is never removed, whatever its age; the age protects uploads
	// of another process sharing the directory, and slow clients.
	DefaultTempAge = 24 * time.Hour
	// DefaultStagingAge is how long a multipart staging area must have
	// gone without a part before Sweep drops it. It is at least PartURLTTL,
	// the validity of the part URLs, so that an upload whose URLs still
	// work is never dropped for being slow.
	DefaultStagingAge = 24 * time.Hour
	// DefaultSweepInterval is how often StartSweeper sweeps after the
	// sweep at start-up.
	DefaultSweepInterval = time.Hour
)

// SweepOptions configure one Sweep. Zero values take the defaults.
type SweepOptions struct {
	// TempAge: temporary files of single uploads last written longer ago
	// are removed (DefaultTempAge).
	TempAge time.Duration
	// StagingAge: multipart staging areas without a new part for longer are
	// removed (DefaultStagingAge).
	StagingAge time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (o SweepOptions) withDefaults() SweepOptions {
	if o.TempAge <= 0 {
		o.TempAge = DefaultTempAge
	}
	if o.StagingAge <= 0 {
		o.StagingAge = DefaultStagingAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// SweepResult counts what one Sweep removed.
type SweepResult struct {
	// Temps is the number of temporary upload files removed, Bytes their
	// total size.
	Temps int
	Bytes int64
	// Stagings is the number of multipart staging areas removed.
	Stagings int
}

// Sweeper is implemented by stores that can be left with the debris of
// interrupted uploads (a server killed mid-upload, a client that never
// completed or aborted a multipart upload): Sweep removes what is older
// than the options allow and never touches an upload in flight in this
// process.
type Sweeper interface {
	Sweep(ctx context.Context, opts SweepOptions) (SweepResult, error)
}

// inflight holds the uploads in progress in this process, by a key that
// names the store and the temporary file or staging area. It is
// process-wide so that a sweep of a store opened by a new configuration
// sees the uploads still running under the old one.
var inflight sync.Map // key -> *int (count)

var inflightMu sync.Mutex

// track marks key as in flight until the returned function is called.
func track(key string) (done func()) {
	inflightMu.Lock()
	v, _ := inflight.LoadOrStore(key, new(int))
	*v.(*int)++
	inflightMu.Unlock()
	return func() {
		inflightMu.Lock()
		defer inflightMu.Unlock()
		if v, ok := inflight.Load(key); ok {
			if n := v.(*int); *n <= 1 {
				inflight.Delete(key)
			} else {
				*n--
			}
		}
	}
}

// Track marks key (a store-specific name for a temporary file or staging
// area) as in flight until the returned function is called; stores in
// other packages (GCS) use it so that Sweep leaves their uploads alone.
func Track(key string) (done func()) { return track(key) }

// InFlight reports whether key is tracked as in flight.
func InFlight(key string) bool {
	_, ok := inflight.Load(key)
	return ok
}

// StartSweeper sweeps store (when it is a Sweeper) at once, in the
// background, and then every interval (DefaultSweepInterval when 0), logging
// what it removed and any failure, until stop is called. stop waits for a
// sweep under way to finish.
func StartSweeper(store Store, interval time.Duration, opts SweepOptions, log *zap.Logger) (stop func()) {
	sw, ok := store.(Sweeper)
	if !ok {
		return func() {}
	}
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			res, err := sw.Sweep(ctx, opts)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Error("sweeping interrupted uploads failed", zap.Error(err))
			case res.Temps > 0 || res.Stagings > 0:
				log.Info("removed interrupted uploads", zap.Int("temporary_files", res.Temps),
					zap.Int64("bytes", res.Bytes), zap.Int("multipart_staging_areas", res.Stagings))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

var _ Sweeper = (*Local)(nil)

// tempKey names a temporary file of l in the in-flight registry.
func (l *Local) tempKey(rel string) string { return "local:" + l.dir + "\x00" + path.Clean(rel) }

// stagingKey names a staging area of l in the in-flight registry.
func (l *Local) stagingKey(upload string) string { return "local-mpu:" + l.dir + "\x00" + upload }

// Sweep implements Sweeper: it walks the whole directory for temporary
// upload files (".mlflow-upload-<hex>") and removes those last written
// before TempAge, and removes the multipart staging areas whose newest
// part is older than StagingAge. Uploads in flight in this process are
// kept whatever their age.
func (l *Local) Sweep(ctx context.Context, opts SweepOptions) (SweepResult, error) {
	opts = opts.withDefaults()
	now := opts.Now()
	var res SweepResult
	var errs []error
	err := fs.WalkDir(l.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if err != nil {
			if p != "." && errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			errs = append(errs, err)
			return nil
		}
		name := d.Name()
		if !strings.HasPrefix(name, tempPrefix) {
			return nil
		}
		if p == localStaging {
			n, err := l.sweepStaging(ctx, now.Add(-opts.StagingAge))
			res.Stagings += n
			if err != nil {
				errs = append(errs, err)
			}
			return fs.SkipDir
		}
		if d.IsDir() {
			return fs.SkipDir // not ours
		}
		if !d.Type().IsRegular() || !isLowerHex(strings.TrimPrefix(name, tempPrefix)) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(now.Add(-opts.TempAge)) || InFlight(l.tempKey(p)) {
			return nil
		}
		if err := l.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("artifact: remove stale upload %s: %w", p, err))
			return nil
		}
		res.Temps++
		res.Bytes += fi.Size()
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// sweepStaging removes the staging areas whose newest entry (or the area
// itself) was last modified before cutoff.
func (l *Local) sweepStaging(ctx context.Context, cutoff time.Time) (int, error) {
	uploads, err := l.stagedParts(localStaging)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("artifact: list staging areas: %w", err)
	}
	removed := 0
	for _, up := range uploads {
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		dir := stageDir(up)
		if InFlight(l.stagingKey(up)) || l.touchedSince(dir, cutoff) {
			continue
		}
		if err := l.root.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("artifact: remove abandoned multipart upload %s: %w", up, err)
		}
		removed++
	}
	return removed, nil
}

// touchedSince reports whether dir or anything directly in it was
// modified at or after t (or cannot be inspected).
func (l *Local) touchedSince(dir string, t time.Time) bool {
	fi, err := l.root.Stat(dir)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	if !fi.ModTime().Before(t) {
		return true
	}
	names, err := l.stagedParts(dir)
	if err != nil {
		return true
	}
	for _, n := range names {
		fi, err := l.root.Stat(path.Join(dir, n))
		if err == nil && !fi.ModTime().Before(t) {
			return true
		}
	}
	return false
}
