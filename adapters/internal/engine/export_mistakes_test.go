package engine

import "time"

// PanicError is the error the engine makes of a recovered panic of v in
// what ("handler" or "dead letter").
func PanicError(what string, v any) error { return &panicError{what: what, v: v} }

// SetMinEpisodeGap sets the least gap between two connection failures that
// starts a new outage (30s), for the test's duration.
func SetMinEpisodeGap(tb interface{ Cleanup(func()) }, d time.Duration) {
	old := minEpisodeGap
	minEpisodeGap = d
	tb.Cleanup(func() { minEpisodeGap = old })
}
