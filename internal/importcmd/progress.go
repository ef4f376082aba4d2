package importcmd

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/mlflowimport"
)

// progress shows how an import advances. On a terminal it is a live bar
// (github.com/schollz/progressbar) over artifact bytes when the source
// could estimate them, else over runs, else a spinner, with the counts
// in its description and the library's rate and ETA; otherwise a plain
// line every interval (and a last one at the end), with an ETA when the
// totals are known.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	interval time.Duration
	start    time.Time
	last     time.Time
	st       mlflowimport.Status
	seen     bool
	bar      *progressbar.ProgressBar
	byBytes  bool
}

func newProgress(w io.Writer, tty bool, interval time.Duration) *progress {
	now := time.Now()
	return &progress{w: w, tty: tty, interval: interval, start: now, last: now}
}

// update takes the import's state (mlflowimport.Options.Status).
func (p *progress) update(st mlflowimport.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st, p.seen = st, true
	if p.tty {
		p.drawBar()
		return
	}
	if now := time.Now(); now.Sub(p.last) >= p.interval {
		p.last = now
		fmt.Fprintln(p.w, "import: "+p.line(now))
	}
}

// done ends the display: the bar is finished, a plain display writes
// its last line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.seen {
		return
	}
	if p.bar != nil {
		if p.bar.GetMax64() > 0 && p.bar.State().CurrentNum < p.bar.GetMax64() {
			// The estimate was high (records skipped, problems): end
			// the bar where the import ended.
			p.bar.ChangeMax64(max(p.bar.State().CurrentNum, 1))
		}
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintln(p.w, "import: "+p.line(time.Now()))
}

func (p *progress) elapsed() time.Duration { return time.Since(p.start).Round(100 * time.Millisecond) }

// counts describes the records done.
func (p *progress) counts() string {
	c := p.st.Counts
	runs := humanize.Comma(p.st.RunsDone)
	if p.st.Estimate.Runs > 0 {
		runs += "/" + humanize.Comma(p.st.Estimate.Runs)
	}
	return fmt.Sprintf("%s runs, %s metric points, %s logged models, %s traces, %s registered models, %s skipped",
		runs, humanize.Comma(c.MetricPoints), humanize.Comma(c.LoggedModels), humanize.Comma(c.Traces),
		humanize.Comma(c.RegisteredModels), humanize.Comma(p.st.Skipped))
}

// fraction is how much of the estimated work is done (the lesser of
// the artifact bytes' and the runs' share, where known), or -1.
func (p *progress) fraction() float64 {
	e := p.st.Estimate
	f := -1.0
	if e.ArtifactBytes > 0 {
		f = min(float64(p.st.ArtifactBytes)/float64(e.ArtifactBytes), 1)
	}
	if e.Runs > 0 {
		r := min(float64(p.st.RunsDone)/float64(e.Runs), 1)
		if f < 0 || r < f {
			f = r
		}
	}
	return f
}

// line is a plain progress line: phase, counts, artifact bytes and rate,
// elapsed and ETA.
func (p *progress) line(now time.Time) string {
	el := now.Sub(p.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s; artifacts %s", p.st.Phase, p.counts(), humanize.IBytes(uint64(p.st.ArtifactBytes)))
	if p.st.Estimate.ArtifactBytes > 0 {
		fmt.Fprintf(&b, "/%s", humanize.IBytes(uint64(p.st.Estimate.ArtifactBytes)))
	}
	if secs := el.Seconds(); secs > 0 {
		fmt.Fprintf(&b, " (%s/s)", humanize.IBytes(uint64(float64(p.st.ArtifactBytes)/secs)))
	}
	fmt.Fprintf(&b, "; %s elapsed", el.Round(time.Second))
	if f := p.fraction(); f > 0 {
		eta := time.Duration(float64(el) * (1 - f) / f)
		fmt.Fprintf(&b, ", %.0f%%, ETA %s", f*100, eta.Round(time.Second))
	}
	return b.String()
}

// drawBar moves the terminal bar.
func (p *progress) drawBar() {
	e := p.st.Estimate
	if p.bar == nil {
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(p.w), progressbar.OptionSetWidth(24), progressbar.OptionThrottle(100 * time.Millisecond),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetElapsedTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(), progressbar.OptionSetRenderBlankState(true),
		}
		total := int64(-1)
		switch {
		case e.ArtifactBytes > 0:
			p.byBytes, total = true, e.ArtifactBytes
			opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
		case e.Runs > 0:
			total = e.Runs
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("runs"))
		default:
			opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("records"))
		}
		p.bar = progressbar.NewOptions64(total, opts...)
	}
	done := p.st.RunsDone
	switch {
	case p.byBytes:
		done = p.st.ArtifactBytes
	case e.Runs <= 0:
		done = p.st.Counts.Total() + p.st.Skipped
	}
	if m := p.bar.GetMax64(); m > 0 && done >= m {
		// Keep the bar open until done(): the estimate may be low.
		p.bar.ChangeMax64(done + 1)
	}
	p.bar.Describe(p.st.Phase + ": " + p.counts())
	_ = p.bar.Set64(done)
}
