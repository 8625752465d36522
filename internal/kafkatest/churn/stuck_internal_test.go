package churn

import (
	"testing"
	"time"
)

// The stuck check measures how long the group has been PreparingRebalance
// at one generation: the readings of the chaos run that found the bug
// (issue 25: PreparingRebalance at generation 4 from 18.3 s to the end of
// the run), and the cases that must restart the count.
func TestPreparingTrackerCountsOneGeneration(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 13, 10, 3, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	view := func(state string, epoch int32) groupView { return groupView{state: state, epoch: epoch} }
	var p preparingTracker
	for i, step := range []struct {
		ms   int
		v    groupView
		want time.Duration
	}{
		{18141, view("Stable", 4), 0},
		{18282, view("PreparingRebalance", 4), 0},
		{21151, view("PreparingRebalance", 4), 2869 * time.Millisecond},
		{55000, view("PreparingRebalance", 4), 36718 * time.Millisecond},
		// A new generation is a new rebalance, even with no other
		// state read between.
		{55100, view("PreparingRebalance", 5), 0},
		{56100, view("PreparingRebalance", 5), time.Second},
		// Any other state ends it.
		{56200, view("CompletingRebalance", 6), 0},
		{56300, view("PreparingRebalance", 6), 0},
		{57300, view("Empty", 6), 0},
		{58300, view("PreparingRebalance", 6), 0},
		{59300, view("PreparingRebalance", 6), time.Second},
	} {
		if got := p.observe(at(step.ms), step.v); got != step.want {
			t.Errorf("reading %d (%v %s %d): %v, want %v", i, at(step.ms).Sub(t0), step.v.state, step.v.epoch, got, step.want)
		}
	}
}
