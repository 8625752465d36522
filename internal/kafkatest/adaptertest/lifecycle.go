package adaptertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// Handler is a message handler as the lifecycle checks write it: hctx is
// the handler's context, p and o the message's partition and offset.
type Handler func(hctx context.Context, p int32, o int64) error

// RangeMember is one running consumer of a lifecycle check.
type RangeMember struct {
	// Stop ends the consumer's Run and returns its error (see Run).
	Stop func() error
	// Owned returns how many partitions the consumer owns now.
	Owned func() int
}

// MemberEvents collects what a consumer's test hooks report. Safe for
// concurrent use.
type MemberEvents struct {
	mu      sync.Mutex
	revokes []bool          // the lost flag of each revoke
	errs    []error         // refused commits
	max     map[int32]int64 // the highest accepted commit per partition
}

// Revoked records a revoke (lost: the assignment was lost, nothing was
// committed). Call it from the adapter's revoke hook.
func (e *MemberEvents) Revoked(lost bool) {
	e.mu.Lock()
	e.revokes = append(e.revokes, lost)
	e.mu.Unlock()
}

// Committed records one partition's commit result. Call it from the
// adapter's commit hook, once per partition of the commit.
func (e *MemberEvents) Committed(p int32, offset int64, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.errs = append(e.errs, err)
		return
	}
	if e.max == nil {
		e.max = map[int32]int64{}
	}
	if o, ok := e.max[p]; !ok || offset > o {
		e.max[p] = offset
	}
}

// StartRangeMember starts a consumer of topic in group on c with the adapter's
// short test timeouts (RevokeTimeout about 2s) and eager assignment
// (range), handling each message with h. With ev non-nil it has one
// worker (Concurrency 1) and reports its revokes and commits to ev.
type StartRangeMember func(t testing.TB, c *kafkatest.Cluster, group, topic string, ev *MemberEvents, h Handler) RangeMember

// CheckRevokeDoesNotWaitForABusyWorker checks that a revoke does not wait
// for a busy worker beyond RevokeTimeout. With the first member's only
// worker stuck in a handler that waits for its context (partition 0,
// offset 10) and messages queued behind it, a second member joins (eager:
// every partition of the first is revoked). The revoke must end, with a
// commit of the stuck partition at 10 and never past it, as a member: the
// first member's assignment is not lost (which a revoke outlasting the
// rebalance timeout would cause), none of its commits is refused, and the
// stuck call was told to stop: its context ends once the revoke has
// committed and closed the partition (a member given partition 0 again
// handles the message again, never two calls of it at once). The second
// member then owns a partition, and the first's Run returns once stopped.
func CheckRevokeDoesNotWaitForABusyWorker(t *testing.T, start StartRangeMember) {
	const (
		topic = "revoke-busy"
		group = "revoke-busy-group"
	)
	c, ctx := StartProduced(t, topic, 2, 200, 60*time.Second)
	var ev MemberEvents
	var mu sync.Mutex
	stuckCalls, running, overlaps, ended := 0, 0, 0, 0
	first := start(t, c, group, topic, &ev, func(hctx context.Context, p int32, o int64) error {
		if p == 0 && o == 10 {
			mu.Lock()
			stuckCalls++
			if running++; running > 1 {
				overlaps++
			}
			mu.Unlock()
			<-hctx.Done() // ends at the revoke (or when Run stops)
			mu.Lock()
			running--
			ended++
			mu.Unlock()
			return hctx.Err()
		}
		return nil
	})
	WaitFor(ctx, t, "partition 0 committed up to its stuck message", func() bool {
		com, err := c.Committed(ctx, group, topic)
		return err == nil && com[0].Offset == 10
	})
	began := time.Now()
	second := start(t, c, group, topic, nil, func(context.Context, int32, int64) error { return nil })
	// Fails (times out) if the revoke waits for the stuck worker.
	WaitFor(ctx, t, "the first member's revoke", func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		return len(ev.revokes) > 0
	})
	WaitFor(ctx, t, "the second member to own a partition", func() bool { return second.Owned() > 0 })
	t.Logf("revoke and reassignment %v after the second member started", time.Since(began))
	ev.mu.Lock()
	if ev.revokes[0] {
		t.Error("the first member's assignment was lost: its revoke overran the rebalance")
	}
	if len(ev.errs) > 0 {
		t.Errorf("commits refused: %v", ev.errs)
	}
	if got := ev.max[0]; got != 10 {
		t.Errorf("the first member committed partition 0 at %d at most, want its stuck message 10", got)
	}
	ev.mu.Unlock()
	WaitFor(ctx, t, "the stuck call's context to end at the revoke", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ended > 0
	})
	mu.Lock()
	if overlaps > 0 {
		t.Errorf("two calls of the stuck message overlapped (%d calls)", stuckCalls)
	}
	mu.Unlock()
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
}

// RunStuck runs a consumer of topic in group on c, with RevokeTimeout
// revoke and the adapter's short test timeouts, handling each message
// with h, until ctx ends; it returns Run's error.
type RunStuck func(ctx context.Context, c *kafkatest.Cluster, group, topic string, revoke time.Duration, h Handler) error

// CheckRunReturnsWhenAHandlerIgnoresCtx checks that Run returns even if a
// handler ignores its context and never returns: the revoke's drain and the
// workers' stop are both bounded by RevokeTimeout, the handler is
// abandoned, and the commit stops exactly at its message (offset 3 of 10).
func CheckRunReturnsWhenAHandlerIgnoresCtx(t *testing.T, run RunStuck) {
	const (
		topic = "stuck"
		group = "stuck-group"
	)
	c, ctx := StartProduced(t, topic, 1, 10, 60*time.Second)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) }) // frees the abandoned handler at the end
	started := make(chan struct{})
	var once sync.Once
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- run(rctx, c, group, topic, 500*time.Millisecond, func(_ context.Context, _ int32, o int64) error {
			if o == 3 {
				once.Do(func() { close(started) })
				<-block
			}
			return nil
		})
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("handler never called")
	}
	WaitFor(ctx, t, "the messages before the stuck one committed", func() bool {
		com, err := c.Committed(ctx, group, topic)
		return err == nil && com[0].Offset == 3
	})
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second): // hang guard only
		t.Fatal("Run did not return with a handler that ignores ctx")
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := com[0].Offset; got != 3 {
		t.Errorf("committed %d, want 3: the messages before the abandoned one, not it", got)
	}
}
