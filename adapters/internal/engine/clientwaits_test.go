package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Issue 25: a periodic commit that the client cannot cancel (librdkafka's
// Commit, waiting for a coordinator) held the commit lock; the revoke it
// cancelled waited for it without a bound, the poll loop passed
// max.poll.interval.ms and librdkafka left the group. With
// ClientWaitsForCommits a revoke returns by its deadline although the
// commit is still running; its partitions are closed, and nothing is
// committed for them after the stuck call returns.
func TestRevokeDoesNotWaitForAnUncancellableCommit(t *testing.T) {
	c := cfg()
	c.ClientWaitsForCommits = true
	e := started(t, c, ok)
	stuck := make(chan struct{})
	var calls, inside atomic.Int64
	s := e.NewSession(func(_ context.Context, offs []engine.Offset) ([]error, error) {
		if calls.Add(1) == 1 {
			inside.Store(1)
			<-stuck // ignores ctx, as a cgo call would
		}
		return accept(offs)
	})
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	deliverRange(t, s, p, 0, 10)
	waitUntil(t, func() bool { return p.Watermark().Committable() == 10 })
	go s.Tick(time.Now())
	waitUntil(t, func() bool { return inside.Load() == 1 })
	within(t, 10*c.RevokeTimeout, "Revoke behind an uncancellable commit", func() { s.Revoke(context.Background(), tp) })
	if st := p.State(); st != engine.StateClosed {
		t.Fatalf("partition %v after the revoke; want closed", st)
	}
	close(stuck)
	within(t, 10*time.Second, "Close", func() { s.Close(context.Background()) })
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d commit calls; want only the stuck one (the revoke's could not take the lock, none after the close)", n)
	}
}

// stuckRig is an engine with ClientWaitsForCommits whose first commit call
// does not return until stuck is closed, tp assigned and 0..9 handled, and
// that commit call running for FrozenAfter.
type stuckRig struct {
	e       *engine.Engine[int64]
	s       *engine.Session[int64]
	p       *engine.Part
	stuck   chan struct{}
	handled atomic.Int64
}

func newStuckRig(t *testing.T) *stuckRig {
	t.Helper()
	c := cfg()
	c.ClientWaitsForCommits = true
	c.FrozenAfter = 100 * time.Millisecond
	r := &stuckRig{stuck: make(chan struct{})}
	r.e = started(t, c, func(context.Context, int64) error { r.handled.Add(1); return nil })
	var calls atomic.Int64
	r.s = r.e.NewSession(func(_ context.Context, offs []engine.Offset) ([]error, error) {
		if calls.Add(1) == 1 {
			<-r.stuck // ignores ctx, as a cgo call would
		}
		return accept(offs)
	})
	t.Cleanup(func() { r.s.Close(context.Background()) })
	var err error
	if r.p, err = r.s.Assign(tp, 0, "", -1); err != nil {
		t.Fatal(err)
	}
	deliverRange(t, r.s, r.p, 0, 10)
	waitUntil(t, func() bool { return r.handled.Load() == 10 })
	go r.s.Tick(time.Now())
	waitUntil(t, r.e.StuckCommitHold)
	return r
}

// Issue 25: a commit call that has not returned for the session timeout
// means a coordinator that does not answer, and a member the group has
// likely evicted: the queued messages of its partitions wait, and are
// dropped when the client reports the partition lost (before, a member
// went on for seconds with partitions already given to others: 5,079
// messages of one partition in one chaos -faults run).
func TestStuckCommitHoldsTheQueuedMessages(t *testing.T) {
	r := newStuckRig(t)
	deliverRange(t, r.s, r.p, 10, 20)
	waitUntil(t, func() bool { return r.e.FrozenHolds() > 0 || r.handled.Load() > 10 })
	if n := r.handled.Load(); n != 10 {
		t.Fatalf("%d messages handled while the commit was stuck; want the 10 before it", n)
	}
	lost := make(chan struct{})
	go func() { r.s.Lose(tp); close(lost) }() // returns after the stuck call
	waitUntil(t, r.p.Revoked)
	close(r.stuck)
	<-lost
	r.e.Stop()
	if n := r.handled.Load(); n != 10 {
		t.Fatalf("%d messages handled after the loss; want the queued ones dropped", n)
	}
}

// When the stuck commit returns without a verdict of the client (the
// member was still in the group), the held messages are handled.
func TestStuckCommitHoldEndsWhenTheCommitReturns(t *testing.T) {
	r := newStuckRig(t)
	deliverRange(t, r.s, r.p, 10, 20)
	waitUntil(t, func() bool { return r.e.FrozenHolds() > 0 || r.handled.Load() > 10 })
	close(r.stuck)
	waitUntil(t, func() bool { return r.handled.Load() == 20 })
}

// A process frozen with a commit in flight wakes to a freeze and a stuck
// commit at once. Each keeps its own end: when the freeze's hold is over
// (2×FrozenAfter after the wake, no verdict of the client), the queued
// messages still wait for the stuck commit to return.
func TestStuckCommitHoldOutlastsAFreeze(t *testing.T) {
	r := newStuckRig(t)
	last := engine.Mono()
	r.e.SawGap(last, last+int64(200*time.Millisecond))
	deliverRange(t, r.s, r.p, 10, 20)
	waitUntil(t, func() bool { return r.e.FrozenHolds() > 0 || r.handled.Load() > 10 })
	waitUntil(t, func() bool { return !r.e.FreezeHold() })
	for range 20 { // a worker let go by the freeze's end would run within this
		if n := r.handled.Load(); n != 10 {
			t.Fatalf("%d messages handled after the freeze's hold ended, the commit still stuck; want the 10 before it", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(r.stuck)
	waitUntil(t, func() bool { return r.handled.Load() == 20 })
}
