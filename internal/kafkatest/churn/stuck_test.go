package churn_test

import (
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// The stuck check measures how long the group has been PreparingRebalance
// at one generation: the readings of the chaos run that found the bug
// (issue 25: PreparingRebalance at generation 4 from 18.3 s to the end of
// the run), and the cases that must restart the count. Only a preparing
// that lasted After is an episode.
func TestStuckWatchCountsOneGeneration(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 13, 10, 3, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := churn.StuckWatch{After: 19 * time.Second}
	for i, step := range []struct {
		ms    int
		state string
		epoch int32
		want  time.Duration
	}{
		{18141, "Stable", 4, 0},
		{18282, "PreparingRebalance", 4, 0},
		{21151, "PreparingRebalance", 4, 2869 * time.Millisecond},
		{55000, "PreparingRebalance", 4, 36718 * time.Millisecond},
		// A new generation is a new rebalance, even with no other
		// state read between.
		{55100, "PreparingRebalance", 5, 0},
		{56100, "PreparingRebalance", 5, time.Second},
		// Any other state ends it.
		{56200, "CompletingRebalance", 6, 0},
		{56300, "PreparingRebalance", 6, 0},
		{57300, "Empty", 6, 0},
		{58300, "PreparingRebalance", 6, 0},
		{59300, "PreparingRebalance", 6, time.Second},
	} {
		if got := w.Observe(at(step.ms), step.state, step.epoch); got != step.want {
			t.Errorf("reading %d (%v %s %d): %v, want %v", i, at(step.ms).Sub(t0), step.state, step.epoch, got, step.want)
		}
	}
	want := churn.StuckEpisode{Start: at(18282), End: at(55100), Generation: 4}
	if got := w.Episodes(); len(got) != 1 || got[0] != want {
		t.Errorf("episodes %v, want only %v (the short preparings are not stuck)", got, want)
	}
}

// An episode still going at the last reading is reported as ongoing, up
// to that reading, once it has lasted After; and a second one after it.
func TestStuckWatchReportsAnOngoingEpisode(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 0, 0, 0, time.UTC)
	s := time.Second
	w := churn.StuckWatch{After: 19 * s}
	w.Observe(t0, "PreparingRebalance", 7)
	w.Observe(t0.Add(18*s), "PreparingRebalance", 7)
	if got := w.Episodes(); len(got) != 0 {
		t.Fatalf("episodes after 18s of preparing: %v, want none", got)
	}
	w.Observe(t0.Add(70*s), "PreparingRebalance", 7)
	w.Observe(t0.Add(71*s), "CompletingRebalance", 8)
	w.Observe(t0.Add(100*s), "PreparingRebalance", 8)
	w.Observe(t0.Add(125*s), "PreparingRebalance", 8)
	got := w.Episodes()
	if len(got) != 2 || got[0].Len() != 71*s || got[0].Ongoing || got[1].Start != t0.Add(100*s) || got[1].Len() != 25*s || !got[1].Ongoing {
		t.Errorf("episodes %v; want 71s at generation 7, then 25s ongoing at generation 8", got)
	}
}
