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
