package confluent_test

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// retryOpts are stableOpts (a single member counting exact handler calls
// must not be fenced by a loaded machine) with ByKey
// ordering, fast retries and the dead-letter topic dlq.
func retryOpts(t *testing.T, dlq string, maxAttempts int) []confluent.Option {
	return append(stableOpts(testLogger(t)),
		confluent.WithRequestTimeout(5*time.Second),
		confluent.WithOrdering(confluent.ByKey),
		confluent.WithRetry(confluent.Retry{MaxAttempts: maxAttempts, Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}),
		confluent.WithDeadLetter(dlq))
}

// retryHandler runs l's handler for each message.
func retryHandler(l *adaptertest.RetryLedger) func(context.Context, *kafka.Message) error {
	return func(_ context.Context, m *kafka.Message) error {
		return l.Handle(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value, confluent.Permanent)
	}
}

// retryConsumer runs this adapter for the shared retry tests.
func retryConsumer() adaptertest.RetryConsumer {
	return adaptertest.RetryConsumer{
		Start: func(t *testing.T, addrs []string, group, src, dlq string, maxAttempts int, quiet bool, l *adaptertest.RetryLedger) (func() adaptertest.RetryStats, func() error) {
			opts := retryOpts(t, dlq, maxAttempts)
			if quiet {
				opts = append(opts, confluent.WithLogger(adaptertest.DiscardLogger()))
			}
			cons, err := confluent.NewConsumer(addrs, group, []string{src}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runConsumer(t, cons, retryHandler(l))
			return func() adaptertest.RetryStats { return retryStats(cons.Stats()) }, stop
		},
	}
}

// retryStats reads what the retry tests need of Stats.
func retryStats(ss []confluent.PartitionStats) adaptertest.RetryStats {
	st := adaptertest.RetryStats{CommitPoints: make(map[int32]int64, len(ss))}
	for _, s := range ss {
		st.Retries += s.Retries
		st.Dead += s.DeadLettered
		st.DeadFails += s.DeadLetterFailures
		st.CommitPoints[s.Partition] = s.CommitPoint
	}
	return st
}

func TestRetryByKeyDeadLettersPoisonAndPermanentInKeyOrder(t *testing.T) {
	adaptertest.CheckRetryByKeyDeadLetters(t, retryConsumer())
}

func TestRetryHoldsTheCommitWhileTheDeadLetterTopicIsMissing(t *testing.T) {
	adaptertest.CheckRetryHoldsTheCommitWhileTheDeadLetterTopicIsMissing(t, retryConsumer())
}
