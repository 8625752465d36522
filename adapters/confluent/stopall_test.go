package confluent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: when every member of a group stops at the same moment (fast
// handlers, default session and rebalance timeouts, every message handled),
// the group's final commits are at the log end on every partition. A member
// that leaves first starts a rebalance while the others still commit; their
// final commits must not be lost to it. Repeated: the race is one of timing.
func TestAllMembersStoppingTogetherCommitAtLogEnd(t *testing.T) {
	const (
		topic   = "stop-all"
		members = 3
		rounds  = 4
		n       = 600
	)
	c := kafkatest.Start(t)
	ctx := adaptertest.Timeout(t, 4*time.Minute)
	for round := range rounds {
		start := time.Now()
		topic := fmt.Sprintf("%s-%d", topic, round)
		group := topic + "-group"
		if err := c.CreateTopic(ctx, topic, 6); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		cons := make([]*confluent.Consumer, members)
		stops := make([]func() error, members)
		for i := range cons {
			var err error
			cons[i], err = confluent.NewConsumer(c.Addrs(), group, []string{topic},
				confluent.WithLogger(testLogger(t)),
				confluent.WithFetchMaxWait(50*time.Millisecond),
				// Default session, rebalance and heartbeat settings: a
				// leaving member starts a rebalance that takes seconds.
			)
			if err != nil {
				t.Fatal(err)
			}
			stops[i] = runConsumer(t, cons[i], rec.handle)
		}
		adaptertest.WaitFor(ctx, t, "every member to own partitions", func() bool {
			for _, cn := range cons {
				if len(cn.Stats()) == 0 {
					return false
				}
			}
			return true
		})
		if _, err := c.Produce(ctx, topic, n); err != nil {
			t.Fatal(err)
		}
		adaptertest.WaitFor(ctx, t, "every message handled", func() bool { return rec.Distinct() == n })
		// Odd rounds: one more member joins (a rebalance starts) just
		// before everyone stops, as in a churn run.
		if round%2 == 1 {
			late, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
				confluent.WithLogger(testLogger(t)), confluent.WithFetchMaxWait(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			stops = append(stops, runConsumer(t, late, rec.handle))
			time.Sleep(time.Duration(round) * 150 * time.Millisecond) // jitter, not an assertion
		}
		var wg sync.WaitGroup
		for i := range stops {
			wg.Go(func() {
				err := stops[i]()
				if i == members && errors.Is(err, confluent.ErrNeverJoined) {
					return // the late member stopped before its join completed: said so, as it should
				}
				if err != nil {
					t.Errorf("round %d member %d: Run = %v", round, i, err)
				}
			})
		}
		wg.Wait()
		ok, why := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		if !ok {
			t.Errorf("round %d: final commits short of the log end: %s", round, why)
		}
		t.Logf("round %d: %v, at the log end: %v", round, time.Since(start).Round(time.Millisecond), ok)
	}
}

// Issue: a member whose final commit comes while the group rebalances
// because another member left (its poll loop stopped, its drain still
// waiting for a handler) still commits. Made deterministic: B holds a
// message in its handler as it stops; A leaves; once B's heartbeat has
// learnt of the rebalance, B's handler returns and B commits. (EAGER: B's
// generation stays valid, the group waits for it; COOPERATIVE: librdkafka
// rejoins in the background, see TestFinalCommitRefusedOnceIsRetried.)
func TestFinalCommitDuringAnotherMembersLeave(t *testing.T) {
	const n = 400
	for _, strat := range []string{"range", "cooperative-sticky"} {
		t.Run(strat, func(t *testing.T) {
			topic := "leave-race-" + strat
			group := topic + "-group"
			c, ctx := adaptertest.StartProduced(t, topic, 4, 0, 90*time.Second)
			rec := newRecorder()
			opts := func(log *slog.Logger) []confluent.Option {
				return append(stableOpts(log), strategy(strat),
					confluent.WithHeartbeatInterval(100*time.Millisecond),
					confluent.WithRevokeTimeout(10*time.Second))
			}
			a, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, opts(testLogger(t))...)
			if err != nil {
				t.Fatal(err)
			}
			// B's librdkafka logs its heartbeats (debug=cgrp), to see when it
			// learns of the rebalance.
			blog := newCapture()
			b, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
				append(opts(slog.New(blog)), confluent.WithConfigMap(kafka.ConfigMap{"debug": "cgrp"}))...)
			if err != nil {
				t.Fatal(err)
			}
			hold := make(chan struct{})
			held := make(chan struct{}, 1)
			var holding atomic.Bool
			stopA := runConsumer(t, a, rec.handle)
			stopB := runConsumer(t, b, func(_ context.Context, m *kafka.Message) error {
				if int(m.TopicPartition.Offset) == n/4-1 && holding.CompareAndSwap(false, true) {
					held <- struct{}{}
					<-hold // the last message of one of B's partitions
				}
				rec.add(m)
				return nil
			})
			adaptertest.WaitFor(ctx, t, "both members to own partitions", func() bool {
				return len(a.Stats()) > 0 && len(b.Stats()) > 0
			})
			if _, err := c.Produce(ctx, topic, n); err != nil {
				t.Fatal(err)
			}
			<-held
			adaptertest.WaitFor(ctx, t, "every other message handled", func() bool { return rec.Distinct() == n-1 })
			bDone := make(chan error, 1)
			go func() { bDone <- stopB() }() // B stops; its drain waits for the held message
			if err := stopA(); err != nil {  // A commits and leaves: the group rebalances
				t.Fatal(err)
			}
			adaptertest.WaitFor(ctx, t, "B's heartbeat to learn of the rebalance", func() bool {
				return len(blog.records(func(r logRecord) bool {
					return strings.Contains(r.msg, "heartbeat error response") &&
						strings.Contains(r.msg, "Group rebalance in progress")
				})) > 0
			})
			close(hold)
			if err := <-bDone; err != nil {
				t.Fatal(err)
			}
			if ok, why := adaptertest.CommittedAtEnd(ctx, c, group, topic); !ok {
				t.Fatalf("final commits short of the log end: %s", why)
			}
		})
	}
}

// Issue: the final commit refused once by the coordinator for a reason that
// passes (REBALANCE_IN_PROGRESS: a COOPERATIVE member's librdkafka rejoins
// in the background while the member drains, and the group may be
// completing a rebalance just then) is made again, not lost. The commit
// interval is longer than the test: the final commit is the only one.
func TestFinalCommitRefusedOnceIsRetried(t *testing.T) {
	const (
		topic = "final-refused"
		group = "final-refused-group"
		n     = 50
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, n, 60*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithRetryBackoff(20*time.Millisecond),
			confluent.WithCommitInterval(time.Hour))...)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	stop := runConsumer(t, cons, func(context.Context, *kafka.Message) error {
		handled.Add(1)
		return nil
	})
	refused := c.Fake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: group,
		Err: kerr.RebalanceInProgress, Count: 1})
	adaptertest.WaitFor(ctx, t, "every message handled", func() bool { return handled.Load() == n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if refused.Hits() != 1 {
		t.Fatalf("the broker refused %d commits, want the final one", refused.Hits())
	}
	if ok, why := adaptertest.CommittedAtEnd(ctx, c, group, topic); !ok {
		t.Fatalf("final commit short of the log end: %s", why)
	}
}
