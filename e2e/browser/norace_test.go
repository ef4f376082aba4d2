//go:build !race

package browser

// raceEnabled reports whether the test binary runs with the race detector.
const raceEnabled = false
