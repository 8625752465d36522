package kafkago_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// startBatch is the adaptertest.StartBatchMember of this adapter.
func startBatch(t testing.TB, c *kafkatest.Cluster, group, topic string, o adaptertest.Ordering, maxSize int,
	h func([]adaptertest.BatchMsg) error) func() error {
	cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic},
		append(append(fastOpts(testLogger(t)), kafkago.WithConcurrency(8), kafkago.WithWindow(1000),
			kafkago.WithBatch(maxSize, 5*time.Millisecond)), orderOpts(o)...)...)
	if err != nil {
		t.Fatal(err)
	}
	return adaptertest.Run(t, func(ctx context.Context) error {
		return cons.RunBatch(ctx, func(_ context.Context, ms []kafka.Message) error {
			bs := make([]adaptertest.BatchMsg, len(ms))
			for i, m := range ms {
				bs[i] = adaptertest.BatchMsg{P: int32(m.Partition), O: m.Offset, Key: m.Key}
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
	cons, err := kafkago.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.RunBatch(context.Background(), nil); !errors.Is(err, kafkago.ErrInvalidConfig) {
		t.Fatalf("RunBatch(nil) = %v, want ErrInvalidConfig", err)
	}
	for _, o := range []kafkago.Option{kafkago.WithBatch(0, 0), kafkago.WithBatch(1, -time.Millisecond)} {
		if _, err := kafkago.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"}, o); !errors.Is(err, kafkago.ErrInvalidConfig) {
			t.Fatalf("NewConsumer(bad WithBatch) = %v, want ErrInvalidConfig", err)
		}
	}
}
