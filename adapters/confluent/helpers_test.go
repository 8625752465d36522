package confluent_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func slogDiscard() *slog.Logger { return adaptertest.DiscardLogger() }

// testLogger logs warnings and errors to the test's output.
func testLogger(t testing.TB) *slog.Logger { return adaptertest.Logger(t) }

// fastOpts are short timeouts so that rebalances and shutdowns take
// fractions of a second against the embedded broker.
func fastOpts(log *slog.Logger) []confluent.Option {
	return []confluent.Option{
		confluent.WithSessionTimeout(2 * time.Second),
		confluent.WithHeartbeatInterval(200 * time.Millisecond),
		confluent.WithRebalanceTimeout(6 * time.Second),
		confluent.WithRevokeTimeout(2 * time.Second),
		confluent.WithCommitInterval(100 * time.Millisecond),
		confluent.WithFetchMaxWait(50 * time.Millisecond),
		confluent.WithLogger(log),
	}
}

// stableOpts are fastOpts with a long session and rebalance timeout, for
// single-member tests that count exact deliveries: a loaded machine (-race,
// shared cores) must not expire the session and cause a redelivery.
func stableOpts(log *slog.Logger) []confluent.Option {
	return append(fastOpts(log),
		confluent.WithSessionTimeout(15*time.Second),
		confluent.WithHeartbeatInterval(500*time.Millisecond),
		confluent.WithRebalanceTimeout(30*time.Second))
}

// strategy returns the option that selects a partition assignment strategy
// (and so the rebalance protocol).
func strategy(s string) confluent.Option {
	return confluent.WithConfigMap(kafka.ConfigMap{"partition.assignment.strategy": s})
}

// recorder records handled messages (see adaptertest.Recorder).
type recorder struct{ *adaptertest.Recorder }

func newRecorder() recorder { return recorder{adaptertest.NewRecorder()} }

func (r recorder) add(m *kafka.Message) {
	r.Add(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value)
}

// runConsumer runs cons in a goroutine and returns a function that cancels
// it and returns Run's error (bounded: a hang fails the test).
func runConsumer(t testing.TB, cons *confluent.Consumer, h func(context.Context, *kafka.Message) error) (stop func() error) {
	return adaptertest.Run(t, func(ctx context.Context) error { return cons.Run(ctx, h) })
}
