package loadtest

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// PrintTable writes one row per result: op, requests, req/s, p50, p99,
// errors; then seed timings and first errors, if any.
func PrintTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\trequests\treq/s\tp50\tp99\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%d\t\n",
			r.Op, r.Requests, r.ReqPerSec, fmtDur(r.P50), fmtDur(r.P99), r.Errors)
	}
	tw.Flush()
	for _, r := range results {
		if r.SeedNote != "" {
			fmt.Fprintf(w, "seed %s: %s in %v (not measured)\n", r.Op, r.SeedNote, r.SeedTime.Round(time.Millisecond))
		}
	}
	for _, r := range results {
		if r.FirstErr != "" {
			fmt.Fprintf(w, "first error %s: %s\n", r.Op, r.FirstErr)
		}
	}
}

// Ratio returns a's req/s as a fraction of b's, and false if either is missing.
func Ratio(results []Result, a, b string) (float64, bool) {
	var ra, rb *Result
	for i := range results {
		switch results[i].Op {
		case a:
			ra = &results[i]
		case b:
			rb = &results[i]
		}
	}
	if ra == nil || rb == nil || rb.ReqPerSec == 0 {
		return 0, false
	}
	return ra.ReqPerSec / rb.ReqPerSec, true
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}
