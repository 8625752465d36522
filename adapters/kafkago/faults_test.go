package kafkago_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue 9: the broker refuses commits with REBALANCE_IN_PROGRESS: each is
// retried at the next tick, nothing is lost, and the commits reach the log
// end once the broker accepts them again.
func TestCommitRefusedWithRebalanceInProgressIsRetried(t *testing.T) {
	const n = 400
	c, ctx := adaptertest.StartProduced(t, "rip", 2, n, 60*time.Second)
	fault := c.Fake().Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.OffsetCommit},
		Group: "rip-group",
		Err:   kerr.RebalanceInProgress,
		Count: 5,
	})
	var refused atomic.Int64
	hook := kafkago.WithCommitHook(func(_ string, _ int32, _ []kafkago.Offset, errs []error) {
		for _, err := range errs {
			if err != nil {
				refused.Add(1)
			}
		}
	})
	cons, err := kafkago.NewConsumer(c.Addrs(), "rip-group", []string{"rip"}, append(fastOpts(slogDiscard()), hook)...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
	if err := fault.Wait(ctx, 5); err != nil {
		t.Fatalf("the fault answered %d commits: %v", fault.Hits(), err)
	}
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "rip-group", "rip"); return ok })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if refused.Load() == 0 {
		t.Fatal("no commit was refused: the fault did not reach the consumer")
	}
	if got, d := rec.Distinct(), rec.Dups(); got != n || d != 0 {
		t.Fatalf("handled %d distinct (%d duplicates), want %d once each", got, d, n)
	}
}

// Issue 9: group coordinators and partition leaders move between brokers
// while the group consumes: consumption continues, everything is handled
// and committed.
func TestCoordinatorAndLeadersMovingWhileConsuming(t *testing.T) {
	const n = 3000
	c := kafkatest.Start(t, kafkatest.WithBrokers(3), kafkatest.WithTopic("mv", 4))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	if _, err := c.Produce(ctx, "mv", n); err != nil {
		t.Fatal(err)
	}
	cons, err := kafkago.NewConsumer(c.Addrs(), "mv-group", []string{"mv"},
		append(fastOpts(slogDiscard()), kafkago.WithFetchMaxBytes(4000))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error {
		time.Sleep(200 * time.Microsecond)
		rec.add(m)
		return nil
	})
	for i := range 4 {
		adaptertest.WaitFor(ctx, t, "progress", func() bool { return rec.Distinct() >= (i+1)*n/6 })
		before := c.Fake().CoordinatorFor("mv-group")
		c.Fake().RehashCoordinators()
		c.Fake().ShufflePartitionLeaders()
		t.Logf("coordinator %d -> %d", before, c.Fake().CoordinatorFor("mv-group"))
	}
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "mv-group", "mv"); return ok })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := rec.Distinct(); got != n {
		t.Fatalf("handled %d distinct, want %d", got, n)
	}
}

// Issue 9: the broker that coordinates the group is removed from the
// cluster and another added while the group consumes: the member finds the
// new coordinator and partition leaders, and everything is handled and
// committed.
func TestCoordinatorBrokerRemovedWhileConsuming(t *testing.T) {
	const n = 2000
	c := kafkatest.Start(t, kafkatest.WithBrokers(3), kafkatest.WithTopic("rm", 4))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	if _, err := c.Produce(ctx, "rm", n); err != nil {
		t.Fatal(err)
	}
	cons, err := kafkago.NewConsumer(c.Addrs(), "rm-group", []string{"rm"},
		append(fastOpts(slogDiscard()), kafkago.WithFetchMaxBytes(4000))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error {
		time.Sleep(200 * time.Microsecond)
		rec.add(m)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "progress", func() bool { return rec.Distinct() >= n/4 })
	coord := c.Fake().CoordinatorFor("rm-group")
	if err := c.Fake().RemoveNode(coord); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Fake().AddNode(10, 0); err != nil {
		t.Fatal(err)
	}
	if now := c.Fake().CoordinatorFor("rm-group"); now == coord {
		t.Fatalf("coordinator still %d after its removal", now)
	}
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "rm-group", "rm"); return ok })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := rec.Distinct(); got != n {
		t.Fatalf("handled %d distinct, want %d", got, n)
	}
}

// countingLog counts log records at Warn and above, and keeps them.
func countingLog() (*slog.Logger, func() []logRecord) { return newCapture(slog.LevelWarn) }

// Issue 9: a topic deleted while consumed is logged and dropped from the
// assignment at the next rebalance; Run keeps serving the other topic, and
// neither the fetch nor the group spins (few log lines, few generations).
func TestTopicDeletedWhileConsumed(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("keep", 2), kafkatest.WithTopic("gone", 2))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	for _, topic := range []string{"keep", "gone"} {
		if _, err := c.Produce(ctx, topic, 100); err != nil {
			t.Fatal(err)
		}
	}
	log, logs := countingLog()
	var gens atomic.Int64
	var mu sync.Mutex
	var lastOwned []kafkago.TopicPartition
	cons, err := kafkago.NewConsumer(c.Addrs(), "del-group", []string{"keep", "gone"},
		append(fastOpts(log), kafkago.WithPartitionWatchInterval(100*time.Millisecond),
			kafkago.WithGenerationHook(func(_ string, _ int32, owned []kafkago.TopicPartition) {
				gens.Add(1)
				mu.Lock()
				lastOwned = owned
				mu.Unlock()
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	errc := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		errc <- cons.Run(rctx, func(_ context.Context, m kafka.Message) error {
			if m.Topic == "keep" {
				rec.add(m)
			}
			return nil
		})
	}()
	adaptertest.WaitFor(ctx, t, "both topics committed", func() bool {
		k, _ := adaptertest.CommittedAtEnd(ctx, c, "del-group", "keep")
		g, _ := adaptertest.CommittedAtEnd(ctx, c, "del-group", "gone")
		return k && g
	})
	gensBefore := gens.Load()
	if err := c.Fake().DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "a generation without the deleted topic", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range lastOwned {
			if tp.Topic == "gone" {
				return false
			}
		}
		return len(lastOwned) == 2
	})
	if _, err := c.Produce(ctx, "keep", 100, kafkatest.FirstIndex(100)); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "the other topic committed to its end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, "del-group", "keep")
		return ok
	})
	// Give a rebalance loop or a fetch loop time to show (setup, not a
	// timing assertion: the counts below hold however long this is).
	time.Sleep(2 * time.Second)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if got := rec.Distinct(); got != 200 {
		t.Fatalf("handled %d messages of the other topic, want 200", got)
	}
	if g := gens.Load() - gensBefore; g > 3 {
		t.Errorf("%d generations after the delete, want at most 3 (a rebalance loop?)", g)
	}
	if w := len(logs()); w > 20 {
		t.Errorf("%d warnings after the delete, want a few (a hot loop?): %v", w, logs())
	}
	deleted := 0
	for _, r := range logs() {
		if strings.Contains(r.msg, "topic deleted") && r.attrs["topic"] == "gone" {
			deleted++
		}
	}
	if deleted != 1 {
		t.Errorf("%d warnings naming the deleted topic, want 1: %v", deleted, logs())
	}
}

// Issue 9: partitions added to a topic while it is consumed are assigned
// at the next rebalance (the leader watches the partition counts) and
// consumed to their end.
func TestPartitionsAddedWhileConsumed(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "grow", 2, 100, 60*time.Second)
	cons, err := kafkago.NewConsumer(c.Addrs(), "grow-group", []string{"grow"},
		append(fastOpts(testLogger(t)), kafkago.WithPartitionWatchInterval(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "grow-group", "grow"); return ok })
	if err := c.AddPartitions(ctx, "grow", 4); err != nil {
		t.Fatal(err)
	}
	counts, err := c.Produce(ctx, "grow", 200, kafkatest.FirstIndex(100))
	if err != nil {
		t.Fatal(err)
	}
	if counts[3] != 50 {
		t.Fatalf("produced %v, want 50 on each of 4 partitions", counts)
	}
	adaptertest.WaitFor(ctx, t, "4 partitions committed to their end", func() bool {
		com, err := c.Committed(ctx, "grow-group", "grow")
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, "grow-group", "grow")
		return err == nil && len(com) == 4 && ok
	})
	if s := cons.Stats(); len(s) != 4 {
		t.Fatalf("owns %d partitions, want 4", len(s))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := rec.Distinct(); got != 300 {
		t.Fatalf("handled %d, want 300", got)
	}
}

// Issue 25: the log bounds of an assignment cannot be read for a while
// (every ListOffsets connection is cut, more times than fit in
// RequestTimeout of retries), then the broker heals: Run goes on, every
// message is handled and committed, and the failure is logged at Warn
// once, not once per retry.
func TestAssignmentReadsFailingForAWhile(t *testing.T) {
	const (
		n     = 100
		cuts  = 8
		topic = "bounds-cut"
		group = "bounds-cut-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	var cut atomic.Int64
	c.Fake().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		if cut.Add(1) > cuts {
			return nil, nil, false
		}
		return nil, errors.New("connection cut"), true
	})
	log, records := newCapture(slog.LevelWarn)
	cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(log), kafkago.WithRetryBackoff(10*time.Millisecond),
			kafkago.WithRequestTimeout(200*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
	adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if cut.Load() <= cuts {
		t.Fatalf("%d ListOffsets requests, want more than the %d cut", cut.Load(), cuts)
	}
	var warns []logRecord
	for _, r := range records() {
		if strings.Contains(r.msg, "reading committed offsets failed") {
			warns = append(warns, r)
		}
	}
	if len(warns) != 1 {
		t.Errorf("%d Warn lines for the failing reads, want 1: %v", len(warns), warns)
	}
}
