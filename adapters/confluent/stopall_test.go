package confluent_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

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
		rounds  = 8
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
			stops[i] = runConsumer(t, cons[i], func(_ context.Context, m *kafka.Message) error {
				rec.add(m)
				return nil
			})
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
			stops = append(stops, runConsumer(t, late, func(_ context.Context, m *kafka.Message) error {
				rec.add(m)
				return nil
			}))
			time.Sleep(time.Duration(round) * 150 * time.Millisecond) // jitter, not an assertion
		}
		var wg sync.WaitGroup
		for i := range stops {
			wg.Go(func() {
				if err := stops[i](); err != nil {
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
// because another member left (its poll loop already stopped, its drain
// still waiting for a handler) still commits: the generation is still its
// own. Made deterministic: B holds a message in its handler as it stops; A
// leaves; the group is rebalancing when B's handler returns and B commits.
func TestFinalCommitDuringAnotherMembersLeave(t *testing.T) {
	const (
		topic = "leave-race"
		group = "leave-race-group"
		n     = 400
	)
	for _, strat := range []string{"range", "cooperative-sticky"} {
		t.Run(strat, func(t *testing.T) {
			topic := topic + "-" + strat
			group := group + "-" + strat
			c, ctx := adaptertest.StartProduced(t, topic, 4, 0, 90*time.Second)
			rec := newRecorder()
			opts := func() []confluent.Option {
				return append(stableOpts(testLogger(t)), strategy(strat),
					confluent.WithHeartbeatInterval(100*time.Millisecond),
					confluent.WithRevokeTimeout(10*time.Second))
			}
			a, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, opts()...)
			if err != nil {
				t.Fatal(err)
			}
			b, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, opts()...)
			if err != nil {
				t.Fatal(err)
			}
			hold := make(chan struct{})
			held := make(chan struct{}, 1)
			var holding atomic.Bool
			stopA := runConsumer(t, a, func(_ context.Context, m *kafka.Message) error {
				rec.add(m)
				return nil
			})
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
			go func() { bDone <- stopB() }()   // B's poll loop stops; its drain waits for the held message
			time.Sleep(300 * time.Millisecond) // B stops polling (a hang guard would be pointless here)
			if err := stopA(); err != nil {    // A commits and leaves: the group rebalances
				t.Fatal(err)
			}
			adaptertest.WaitFor(ctx, t, "the group to be rebalancing", func() bool {
				gi := c.Fake().GroupInfo(group)
				return gi != nil && gi.State != "Stable"
			})
			time.Sleep(500 * time.Millisecond) // B's heartbeat learns of the rebalance
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
