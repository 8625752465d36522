package confluent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// startBatch is the adaptertest.StartBatchMember of this adapter.
func startBatch(t testing.TB, c *kafkatest.Cluster, group, topic string, o adaptertest.Ordering, maxSize int,
	h func([]adaptertest.BatchMsg) error) func() error {
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(append(fastOpts(testLogger(t)), strategy("range"), confluent.WithConcurrency(8), confluent.WithWindow(1000),
			confluent.WithBatch(maxSize, 5*time.Millisecond)), orderOpts(o)...)...)
	if err != nil {
		t.Fatal(err)
	}
	return adaptertest.Run(t, func(ctx context.Context) error {
		return cons.RunBatch(ctx, func(_ context.Context, ms []*kafka.Message) error {
			bs := make([]adaptertest.BatchMsg, len(ms))
			for i, m := range ms {
				bs[i] = adaptertest.BatchMsg{P: m.TopicPartition.Partition, O: int64(m.TopicPartition.Offset), Key: m.Key}
			}
			return h(bs)
		})
	})
}

// Issue 20: RunBatch consumes a keyed topic ByKey: every message once, key
// order within and across batches, commits at the log end.
func TestRunBatch(t *testing.T) { adaptertest.CheckRunBatch(t, startBatch) }

// Issue 20: a nil batch handler and bad WithBatch limits are errors naming
// them.
func TestRunBatchBadInput(t *testing.T) {
	cons, err := confluent.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.RunBatch(context.Background(), nil); !errors.Is(err, confluent.ErrInvalidConfig) {
		t.Fatalf("RunBatch(nil) = %v, want ErrInvalidConfig", err)
	}
	for _, o := range []confluent.Option{confluent.WithBatch(0, 0), confluent.WithBatch(1, -time.Millisecond)} {
		if _, err := confluent.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"}, o); !errors.Is(err, confluent.ErrInvalidConfig) {
			t.Fatalf("NewConsumer(bad WithBatch) = %v, want ErrInvalidConfig", err)
		}
	}
}
