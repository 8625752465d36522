package confluent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: a revoke does not wait for busy workers. With one worker stuck in
// a handler that waits for its context and more messages queued behind it,
// a second member joins (range: every partition of the first is revoked).
// The revoke must complete within RevokeTimeout (plus the commit), not wait
// for the worker: otherwise librdkafka exceeds max.poll.interval.ms, leaves
// the group, and the commits come back "Unknown member". Then Close
// returns.
func TestRevokeDoesNotWaitForBusyWorkers(t *testing.T) {
	const (
		topic = "revoke-busy"
		group = "revoke-busy-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, 200, 60*time.Second)
	var (
		mu         sync.Mutex
		revokes    []bool // lost flag of each revoke of the first member
		commitErrs []error
	)
	first, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), strategy("range"), confluent.WithConcurrency(1),
			confluent.WithRevokeHook(func(_ []confluent.TopicPartition, lost bool) {
				mu.Lock()
				revokes = append(revokes, lost)
				mu.Unlock()
			}),
			confluent.WithCommitHook(func(_ []confluent.Offset, errs []error) {
				mu.Lock()
				for _, err := range errs {
					if err != nil {
						commitErrs = append(commitErrs, err)
					}
				}
				mu.Unlock()
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	stopFirst := runConsumer(t, first, func(hctx context.Context, m *kafka.Message) error {
		if m.TopicPartition.Partition == 0 && m.TopicPartition.Offset == 10 {
			<-hctx.Done() // ends only when Run stops
		}
		return nil
	})
	adaptertest.WaitFor(ctx, t, "partition 0 committed up to its stuck message", func() bool {
		com, err := c.Committed(ctx, group, topic)
		return err == nil && com[0].Offset == 10
	})

	second, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), strategy("range"))...)
	if err != nil {
		t.Fatal(err)
	}
	stopSecond := runConsumer(t, second, func(context.Context, *kafka.Message) error { return nil })
	// Fails (times out) if the revoke waits for the stuck worker.
	adaptertest.WaitFor(ctx, t, "the first member's revoke", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(revokes) > 0
	})
	adaptertest.WaitFor(ctx, t, "the second member to own a partition", func() bool { return len(second.Stats()) > 0 })
	mu.Lock()
	if revokes[0] {
		t.Error("the first member's assignment was lost: its revoke overran max.poll.interval.ms")
	}
	if len(commitErrs) > 0 {
		t.Errorf("commits refused: %v", commitErrs)
	}
	mu.Unlock()
	if err := stopSecond(); err != nil {
		t.Fatal(err)
	}
	if err := stopFirst(); err != nil {
		t.Fatal(err)
	}
}
