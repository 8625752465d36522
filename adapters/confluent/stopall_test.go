package confluent_test

import (
	"context"
	"fmt"
	"sync"
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
