package copystore

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// phaseOrder is the order of a copy's phases, for the bar.
var phaseOrder = []string{
	storecopy.PhaseExperiments, storecopy.PhaseLoggedModels, storecopy.PhaseRuns, storecopy.PhaseRegistry,
	storecopy.PhaseTraces, storecopy.PhaseAuth, storecopy.PhaseVerify,
}

// redrawEvery is how often the live line on a terminal is redrawn.
const redrawEvery = 100 * time.Millisecond

// progress shows how a copy advances: on a terminal one line redrawn in
// place (a bar over the phases, the counts, the rate), otherwise a plain
// line at each phase change and every interval.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	prefix   string // of plain lines
	tty      bool
	interval time.Duration
	start    time.Time
	last     time.Time
	phase    string
	counts   storecopy.Counts
	drawn    bool
	dirty    bool // updated since the last draw
}

func newProgress(w io.Writer, tty bool, interval time.Duration) *progress {
	now := time.Now()
	return &progress{w: w, prefix: "copy-store: ", tty: tty, interval: interval, start: now, last: now}
}

// update records the state; it draws when due.
func (p *progress) update(phase string, c storecopy.Counts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := phase != p.phase
	p.phase, p.counts = phase, c
	now := time.Now()
	every := p.interval
	if p.tty {
		every = redrawEvery
	}
	if !changed && now.Sub(p.last) < every {
		p.dirty = true
		return
	}
	p.last = now
	p.draw(now)
}

// done draws the final state and ends the live line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == "" {
		return
	}
	if p.dirty {
		p.draw(time.Now())
	}
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) elapsed() time.Duration {
	return time.Since(p.start).Round(100 * time.Millisecond)
}

func (p *progress) draw(now time.Time) {
	p.dirty = false
	line := p.line(now)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, p.prefix+line)
}

// line is the progress text: phase bar, phase, counts, rate, elapsed.
func (p *progress) line(now time.Time) string {
	idx := 0
	for i, ph := range phaseOrder {
		if ph == p.phase {
			idx = i
		}
	}
	var b strings.Builder
	if p.tty {
		b.WriteByte('[')
		for i := range phaseOrder {
			switch {
			case i < idx:
				b.WriteString("██")
			case i == idx:
				b.WriteString("▒▒")
			default:
				b.WriteString("  ")
			}
		}
		b.WriteString("] ")
	}
	c := p.counts
	total := c.Total()
	secs := now.Sub(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(total) / secs
	}
	doing := "copying " + p.phase
	if p.phase == storecopy.PhaseVerify {
		doing = "verifying the destination"
	}
	fmt.Fprintf(&b, "%s: %s experiments, %s runs, %s metric points, %s models, %s traces, %s users; %s records, %s/s, %s",
		doing, humanize.Comma(c.Experiments), humanize.Comma(c.Runs), humanize.Comma(c.MetricPoints),
		humanize.Comma(c.RegisteredModels+c.LoggedModels), humanize.Comma(c.Traces), humanize.Comma(c.Users),
		humanize.Comma(total), humanize.Comma(int64(rate)), now.Sub(p.start).Round(time.Second))
	return b.String()
}
