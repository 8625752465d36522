package engine_test

// Tests of the done work kept for a partition's return (kept.go).

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// keptRig is an engine whose handler counts the calls per offset and
// blocks on offset 50 until free is closed, and whose commits land only
// while landing is set.
type keptRig struct {
	e       *engine.Engine[int64]
	s       *engine.Session[int64]
	mu      sync.Mutex
	calls   map[int64]int
	free    chan struct{}
	landing atomic.Bool
}

func newKeptRig(t *testing.T) *keptRig {
	t.Helper()
	r := &keptRig{calls: map[int64]int{}, free: make(chan struct{})}
	r.e = started(t, cfg(), func(_ context.Context, o int64) error {
		if o == 50 {
			<-r.free
		}
		r.mu.Lock()
		r.calls[o]++
		r.mu.Unlock()
		return nil
	})
	r.s = r.e.NewSession(func(_ context.Context, offs []engine.Offset) ([]error, error) {
		if r.landing.Load() {
			return accept(offs)
		}
		return refuse(offs, errors.New("coordinator not available"))
	})
	t.Cleanup(func() { r.s.Close(context.Background()) })
	return r
}

func (r *keptRig) handled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// run assigns tp at committed and delivers committed..99.
func (r *keptRig) run(t *testing.T, committed int64) *engine.Part {
	t.Helper()
	p, err := r.s.Assign(tp, committed, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	deliverRange(t, r.s, p, committed, 100)
	return p
}

// Issue 25: kgo treats a failed JoinGroup or SyncGroup as a lost session;
// the member drops its partitions without committing and usually gets the
// same ones back in the next generation, then handled again everything it
// had done since its last commit (2,498 duplicates of one partition in a
// chaos -faults run). The offsets a process had done are not handled again
// when the partition comes back to it; what was in flight is.
func TestPartitionBackSkipsTheWorkDoneBeforeItsLoss(t *testing.T) {
	r := newKeptRig(t)
	r.run(t, 0)
	waitUntil(t, func() bool { return r.handled() == 99 }) // all but 50
	r.s.Lose(tp)
	close(r.free) // 50 finishes after the loss: its ack does not count

	r.landing.Store(true)
	p := r.run(t, 0) // the group's commit did not move
	waitUntil(t, func() bool { return p.Watermark().Committable() == 100 })
	r.mu.Lock()
	defer r.mu.Unlock()
	for o := int64(0); o < 100; o++ {
		want := 1
		if o == 50 {
			want = 2 // in flight at the loss: handled again
		}
		if r.calls[o] != want {
			t.Errorf("offset %d handled %d times; want %d", o, r.calls[o], want)
		}
	}
}

// A revoke whose commit did not land keeps the done work too (an eager
// rebalance during a coordinator fault), and the commit after the return
// covers it.
func TestPartitionBackAfterAFailedCommitAtRevoke(t *testing.T) {
	r := newKeptRig(t)
	close(r.free)
	r.run(t, 0)
	waitUntil(t, func() bool { return r.handled() == 100 })
	r.s.Revoke(context.Background(), tp) // every commit refused

	r.landing.Store(true)
	p := r.run(t, 0)
	waitUntil(t, func() bool { return p.Watermark().Committable() == 100 })
	if err := r.s.CommitNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := p.Committed(); c != 100 {
		t.Fatalf("committed %d after the return; want 100", c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for o, n := range r.calls {
		if n != 1 {
			t.Errorf("offset %d handled %d times; want 1", o, n)
		}
	}
}

// A partition that comes back with a group commit below the last one this
// process saw land (the group's offsets reset to handle messages again) is
// handled from that commit: nothing kept is skipped.
func TestPartitionBackBelowItsLastCommitKeepsNothing(t *testing.T) {
	r := newKeptRig(t)
	close(r.free)
	r.landing.Store(true)
	p := r.run(t, 0)
	waitUntil(t, func() bool { return p.Watermark().Committable() == 100 })
	if err := r.s.CommitNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.s.Lose(tp)

	p = r.run(t, 0) // reset to 0 below the commit 100 this process made
	waitUntil(t, func() bool { return p.Watermark().Committable() == 100 })
	r.mu.Lock()
	defer r.mu.Unlock()
	for o := int64(0); o < 100; o++ {
		if r.calls[o] != 2 {
			t.Errorf("offset %d handled %d times; want 2", o, r.calls[o])
		}
	}
}
