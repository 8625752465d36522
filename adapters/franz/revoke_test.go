package franz_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// A revoke does not wait for a busy worker beyond RevokeTimeout. With the
// first member's only worker stuck in a handler that waits for its context
// (partition 0, offset 10) and records queued behind it, a second member
// joins (range: eager, every partition of the first is revoked). The
// revoke must end within RevokeTimeout with a commit of the stuck
// partition at 10 (never past it), as a member: the first member's assignment is not lost
// (which a revoke outlasting the rebalance timeout would cause) and none of
// its commits is refused. The second member then owns a partition, and
// the first's Run returns once stopped (the stuck handler's context ends).
func TestRevokeDoesNotWaitForABusyWorker(t *testing.T) {
	const (
		topic = "revoke-busy"
		group = "revoke-busy-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, 200, 60*time.Second)
	var (
		mu         sync.Mutex
		revokes    []bool // lost flag of each revoke of the first member
		commitErrs []error
		stuckCalls int
		firstMax   int64 = -1 // the first member's highest commit of partition 0
	)
	first, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), balancer("range"), franz.WithConcurrency(1),
			franz.WithRevokeHook(func(_ []franz.TopicPartition, lost bool) {
				mu.Lock()
				revokes = append(revokes, lost)
				mu.Unlock()
			}),
			franz.WithCommitHook(func(_ string, _ int32, offs []franz.Offset, errs []error) {
				mu.Lock()
				for i, err := range errs {
					if err != nil {
						commitErrs = append(commitErrs, err)
					} else if offs[i].TP.Partition == 0 {
						firstMax = max(firstMax, offs[i].Offset)
					}
				}
				mu.Unlock()
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	stopFirst := runConsumer(t, first, func(hctx context.Context, r *kgo.Record) error {
		if r.Partition == 0 && r.Offset == 10 {
			mu.Lock()
			stuckCalls++
			mu.Unlock()
			<-hctx.Done() // ends only when Run stops
		}
		return nil
	})
	adaptertest.WaitFor(ctx, t, "partition 0 committed up to its stuck record", func() bool {
		com, err := c.Committed(ctx, group, topic)
		return err == nil && com[0].Offset == 10
	})

	second, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), balancer("range"))...)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stopSecond := runConsumer(t, second, func(context.Context, *kgo.Record) error { return nil })
	// Fails (times out) if the revoke waits for the stuck worker.
	adaptertest.WaitFor(ctx, t, "the first member's revoke", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(revokes) > 0
	})
	adaptertest.WaitFor(ctx, t, "the second member to own a partition", func() bool { return len(second.Stats()) > 0 })
	t.Logf("revoke and reassignment %v after the second member started", time.Since(start))
	mu.Lock()
	if revokes[0] {
		t.Error("the first member's assignment was lost: its revoke overran the rebalance")
	}
	if len(commitErrs) > 0 {
		t.Errorf("commits refused: %v", commitErrs)
	}
	if stuckCalls != 1 {
		t.Errorf("the stuck record was handled %d times by the first member, want once", stuckCalls)
	}
	if firstMax != 10 {
		t.Errorf("the first member committed partition 0 at %d at most, want its stuck record 10", firstMax)
	}
	mu.Unlock()
	if err := stopSecond(); err != nil {
		t.Fatal(err)
	}
	if err := stopFirst(); err != nil {
		t.Fatal(err)
	}
}
