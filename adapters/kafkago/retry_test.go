package kafkago_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// retryOpts are fastOpts with a long session (a single member counting
// exact handler calls must not be fenced by a loaded machine), ByKey
// ordering, fast retries and the dead-letter topic dlq.
func retryOpts(t *testing.T, dlq string, maxAttempts int) []kafkago.Option {
	return append(fastOpts(testLogger(t)),
		kafkago.WithSessionTimeout(15*time.Second),
		kafkago.WithHeartbeatInterval(500*time.Millisecond),
		kafkago.WithRebalanceTimeout(30*time.Second),
		kafkago.WithRequestTimeout(5*time.Second),
		kafkago.WithOrdering(kafkago.ByKey),
		kafkago.WithRetry(kafkago.Retry{MaxAttempts: maxAttempts, Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}),
		kafkago.WithDeadLetter(dlq))
}

// retryHandler runs l's handler for each message.
func retryHandler(l *adaptertest.RetryLedger) func(context.Context, kafka.Message) error {
	return func(_ context.Context, m kafka.Message) error {
		return l.Handle(int32(m.Partition), m.Offset, m.Value, kafkago.Permanent)
	}
}

// retryConsumer runs this adapter for the shared retry tests.
func retryConsumer() adaptertest.RetryConsumer {
	return adaptertest.RetryConsumer{
		Start: func(t *testing.T, addrs []string, group, src, dlq string, maxAttempts int, quiet bool, l *adaptertest.RetryLedger) (func() adaptertest.RetryStats, func() error) {
			opts := retryOpts(t, dlq, maxAttempts)
			if quiet {
				opts = append(opts, kafkago.WithLogger(adaptertest.DiscardLogger()))
			}
			cons, err := kafkago.NewConsumer(addrs, group, []string{src}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runConsumer(t, cons, retryHandler(l))
			return func() adaptertest.RetryStats { return retryStats(cons.Stats()) }, stop
		},
		Leaks: func() func(*testing.T) {
			base, _ := clientGoroutines()
			return func(t *testing.T) { checkNoLeak(t, base) }
		},
	}
}

// retryStats reads what the retry tests need of Stats.
func retryStats(ss []kafkago.PartitionStats) adaptertest.RetryStats {
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
