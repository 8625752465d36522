package churn_test

import (
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// A duplicate is charged to the first event whose bound counted its
// offset: a kill after its first handling, or a fault whose window (to a
// session timeout after its end) was open; a fault's bound is the largest
// over its window, a kill's the one at its moment.
func TestEventsChargeAndWiden(t *testing.T) {
	s := time.Second
	ev := churn.NewEvents(3 * s)
	kill := ev.Begin("kill", 1*s, 100)
	fault := ev.Begin("cut commit", 2*s, 50)
	ev.End(fault, 3*s+s/2, 60)
	ev.Widen(5*s, func() int { return 500 }) // in the fault's window only
	ev.Widen(7*s, func() int { return 900 }) // past every window
	ev.Charge([]time.Duration{s / 2, 4 * s, 6 * s, 9 * s})
	l := ev.List()
	if l[kill].Dups != 1 || l[kill].Bound != 100 {
		t.Errorf("kill: %v; want 1 duplicate (handled before it), bound 100", l[kill])
	}
	if l[fault].Dups != 3 || l[fault].Bound != 500 {
		t.Errorf("fault: %v; want 3 duplicates (handled in its window, and the last after every window), bound 500", l[fault])
	}
}

// A kill inside a fault's window: its duplicates are charged to the fault
// (the window open first), and the fault's bound is shared with the kill's.
func TestEventsShareTheBoundOfWhatBeganInTheirWindow(t *testing.T) {
	s := time.Second
	ev := churn.NewEvents(3 * s)
	fault := ev.Begin("cut commit", 1*s, 10)
	ev.End(fault, 2*s, 10)
	kill := ev.Begin("kill", 4*s, 30) // inside the window (to 2s + 3s)
	late := ev.Begin("kill", 6*s, 70) // after it
	ev.Charge([]time.Duration{3 * s, 3 * s, 3 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s, 4 * s})
	ev.Share()
	l := ev.List()
	if l[fault].Dups != 16 || l[fault].Shared != 30 || l[fault].Over() {
		t.Errorf("fault: %v; want 16 duplicates, 30 shared (the kill's bound), not over 10+30", l[fault])
	}
	if l[kill].Shared != 0 || l[late].Shared != 0 || l[kill].Dups != 0 {
		t.Errorf("kills: %v, %v; want nothing shared or charged", l[kill], l[late])
	}
	ev.Charge(make([]time.Duration, 30)) // 30 more at 0: the fault's again
	ev.Share()
	if l := ev.List(); !l[fault].Over() {
		t.Errorf("fault: %v; want over its bound with 46 duplicates against 10+30", l[fault])
	}
}
