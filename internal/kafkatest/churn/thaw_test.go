package churn_test

import (
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// A member resumed from a freeze is not clear for a kill until the wait
// has passed and it handled a message after it: the messages it finishes
// right after the resume, or during the wait, do not count.
func TestThawGuardWaitsForAHandlingAfterTheRejoin(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	s := time.Second
	var g churn.ThawGuard
	if !g.Clear(t0, 0) {
		t.Fatal("a member never frozen is not clear")
	}
	g.Thawed(t0, 9*s)
	for i, step := range []struct {
		at      time.Duration
		handled int
		want    bool
	}{
		{0, 100, false},
		{100 * time.Millisecond, 116, false}, // its calls in flight at the freeze finished
		{8 * s, 140, false},                  // still within the wait
		{9 * s, 140, false},                  // the wait is over: the count is taken
		{9*s + 50*time.Millisecond, 140, false},
		{10 * s, 141, true}, // a handling after the wait
		{11 * s, 141, true}, // and it stays clear
	} {
		if got := g.Clear(t0.Add(step.at), step.handled); got != step.want {
			t.Errorf("step %d (%v, %d handled): clear %v, want %v", i, step.at, step.handled, got, step.want)
		}
	}
	// A second freeze guards it again.
	g.Thawed(t0.Add(20*s), 9*s)
	if g.Clear(t0.Add(21*s), 500) || g.Clear(t0.Add(40*s), 500) {
		t.Error("clear after a second thaw without a handling after its wait")
	}
	if !g.Clear(t0.Add(41*s), 501) {
		t.Error("not clear after a handling past the second thaw's wait")
	}
}
