package confluent_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: Stats' LogEnd and Lag are fresh while a partition is stalled, not
// only at its EOF: a handler holds the first message, the window fills, the
// partition is paused; the messages produced after the assignment show as
// lag.
func TestStalledPartitionReportsLag(t *testing.T) {
	const (
		topic = "lag"
		group = "lag-group"
		n     = 100
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, 1))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	var paused atomic.Bool
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithWindow(16), confluent.WithConcurrency(4),
			confluent.WithPauseHook(func(_ confluent.TopicPartition, p bool) { paused.Store(p) }))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, func(hctx context.Context, m *kafka.Message) error {
		if m.TopicPartition.Offset == 0 {
			select {
			case <-release:
			case <-hctx.Done():
			}
		}
		return nil
	})
	adaptertest.WaitFor(ctx, t, "the partition to be assigned", func() bool { return len(cons.Stats()) == 1 })
	if _, err := c.Produce(ctx, topic, n); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "the partition to be paused behind the held message", paused.Load)
	// Fails (times out) if the log end is only learnt at an EOF.
	adaptertest.WaitFor(ctx, t, "the lag of the stalled partition", func() bool {
		s := cons.Stats()
		return len(s) == 1 && s[0].LogEnd == n && s[0].Lag == n && s[0].CommitPoint == 0
	})
	releaseOnce.Do(func() { close(release) })
	adaptertest.WaitFor(ctx, t, "the lag to fall to zero", func() bool {
		s := cons.Stats()
		return len(s) == 1 && s[0].Lag == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Issue: a partition that librdkafka stops fetching while it is behind its
// log end (paused behind the Consumer's back here; librdkafka #5591 leaves
// a partition assigned and never fetched) is found by the poll loop's
// watchdog and sought again, and everything is handled.
func TestWatchdogReseeksAPartitionNotFetched(t *testing.T) {
	const (
		topic = "stall"
		group = "stall-group"
		n     = 30
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, 1))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	for i := range n { // one record batch each: a fetch of one batch returns one message
		if _, err := c.Produce(ctx, topic, 1, kafkatest.FirstIndex(i)); err != nil {
			t.Fatal(err)
		}
	}
	var (
		handled atomic.Int64
		hidden  atomic.Bool
		reseeks atomic.Int64
	)
	tp := topic
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithFetchMaxBytes(1),
			confluent.WithPollHook(func(kc *kafka.Consumer) {
				if handled.Load() > 0 && hidden.CompareAndSwap(false, true) {
					if err := kc.Pause([]kafka.TopicPartition{{Topic: &tp, Partition: 0}}); err != nil {
						t.Errorf("pause: %v", err)
					}
				}
			}),
			confluent.WithReseekHook(func(confluent.TopicPartition) { reseeks.Add(1) }))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m *kafka.Message) error {
		rec.add(m)
		handled.Add(1)
		return nil
	})
	// Fails (times out) if nothing notices the partition is not fetched.
	adaptertest.WaitFor(ctx, t, "every message handled", func() bool { return rec.Distinct() == n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if reseeks.Load() == 0 {
		t.Fatal("the partition was never reseeked")
	}
}
