package engine_test

// Tests of the freeze detector (frozen.go): after the process did not run
// for longer than the session timeout, the queued messages of the
// partitions it owned wait for the client's verdict.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// frozen is an engine whose handler blocks on the offsets below 100 until
// release is closed, with tp assigned and offsets 0..n-1 delivered, that
// "froze" (SawGap) while its workers were all in such calls.
type frozen struct {
	e       *engine.Engine[int64]
	s       *engine.Session[int64]
	p       *engine.Part
	handled atomic.Int64
	release chan struct{}
}

func frozenRun(t *testing.T, frozenAfter time.Duration, workers, n int) *frozen {
	t.Helper()
	c := cfg()
	c.Concurrency = workers
	c.FrozenAfter = frozenAfter
	f := &frozen{release: make(chan struct{})}
	var running atomic.Int64
	f.e = started(t, c, func(_ context.Context, o int64) error {
		if o < 100 {
			running.Add(1)
			<-f.release
		}
		f.handled.Add(1)
		return nil
	})
	f.s = f.e.NewSession(func(_ context.Context, offs []engine.Offset) ([]error, error) { return accept(offs) })
	t.Cleanup(func() { f.s.Close(context.Background()) })
	var err error
	if f.p, err = f.s.Assign(tp, 0, "", -1); err != nil {
		t.Fatal(err)
	}
	deliverRange(t, f.s, f.p, 0, int64(n))
	waitUntil(t, func() bool { return running.Load() == int64(workers) })
	last := engine.Mono()
	f.e.SawGap(last, last+int64(2*frozenAfter))
	return f
}

// Issue 25: a member frozen past its session timeout wakes: the call in
// flight finishes, the queued messages of the partition it owned wait, and
// are dropped when the client reports the partition lost.
func TestFrozenMemberDoesNotRunLostPartitionsQueue(t *testing.T) {
	f := frozenRun(t, time.Hour, 1, 10)
	close(f.release)
	waitUntil(t, func() bool { return f.e.FrozenHolds() > 0 || f.handled.Load() > 1 })
	if n := f.handled.Load(); n != 1 {
		t.Fatalf("%d messages handled after the freeze; want only the one in flight", n)
	}
	f.s.Lose(f.p.TP)
	f.e.Stop()
	if n := f.handled.Load(); n != 1 {
		t.Fatalf("%d messages handled after the loss; want the queued ones dropped", n)
	}
}

// A partition assigned after the freeze (the rejoin's) is not held.
func TestFrozenHoldsOnlyEarlierAssignments(t *testing.T) {
	f := frozenRun(t, time.Hour, 2, 2) // both of tp's messages in flight
	q, err := f.s.Assign(engine.TopicPartition{Topic: "t", Partition: 1}, 100, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	deliverRange(t, f.s, q, 100, 103)
	close(f.release)
	waitUntil(t, func() bool { return q.Watermark().Committable() == 103 })
	if n := f.e.FrozenHolds(); n != 0 {
		t.Fatalf("%d holds; want none (nothing of tp was queued)", n)
	}
}

// The membership survived (the client reports nothing): the hold ends
// FrozenAfter after the wake and every message is handled.
func TestFrozenHoldEndsWithoutVerdict(t *testing.T) {
	f := frozenRun(t, 100*time.Millisecond, 1, 10)
	close(f.release)
	waitUntil(t, func() bool { return f.p.Watermark().Committable() == 10 })
	if n := f.handled.Load(); n != 10 {
		t.Fatalf("%d handled, want 10", n)
	}
}

// Issue 25: after such a freeze the member's partitions are not committed
// any more, by the commit loop or at a revoke (the client may call the
// eviction a revoke and commit under its next generation, taking the
// partition's commit back below its new owner's): a revoke is a loss.
func TestFrozenPartitionsAreNotCommitted(t *testing.T) {
	c := cfg()
	c.FrozenAfter = time.Hour
	e := started(t, c, ok)
	sc := &scripted{answer: func(_ int, _ context.Context, offs []engine.Offset) ([]error, error) { return accept(offs) }}
	s := e.NewSession(sc.commit)
	defer s.Close(context.Background())
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	deliverRange(t, s, p, 0, 5)
	waitUntil(t, func() bool { return p.Watermark().Committable() == 5 })
	last := engine.Mono()
	e.SawGap(last, last+int64(2*time.Hour))
	s.Tick(time.Now())
	s.Revoke(context.Background(), tp)
	sc.mu.Lock()
	calls := len(sc.calls)
	sc.mu.Unlock()
	if calls != 0 || p.State() != engine.StateLost {
		t.Fatalf("%d commits, state %v after a freeze; want none, lost", calls, p.State())
	}
}
