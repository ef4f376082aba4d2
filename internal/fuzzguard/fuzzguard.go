// Package fuzzguard turns a hanging fuzz input into a crasher. Go's fuzzing
// engine has no per-input timeout, so a hang would stall a worker silently;
// Start arms a timer whose panic kills the worker, and the engine records
// the input as a failing case.
package fuzzguard

import (
	"fmt"
	"strings"
	"time"
)

// Limit is how long one fuzz input may run before it counts as a hang: a
// hang bound, not a performance bound, wide enough for -race on a loaded
// machine.
const Limit = time.Minute

// Start arms the hang timer for one input, named by what and shown (each
// part cut to 200 bytes) by input; call the returned function when the
// input is done, usually with defer fuzzguard.Start(...)().
func Start(what string, input ...string) (stop func()) {
	t := time.AfterFunc(Limit, func() {
		var b strings.Builder
		for _, s := range input {
			if len(s) > 200 {
				s = s[:200] + fmt.Sprintf("...(%d bytes)", len(s))
			}
			fmt.Fprintf(&b, " %q", s)
		}
		panic(fmt.Sprintf("%s: input still running after %s (hang):%s", what, Limit, b.String()))
	})
	return func() { t.Stop() }
}
