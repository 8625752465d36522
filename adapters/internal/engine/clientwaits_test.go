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
