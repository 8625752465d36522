package confluent_test

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// startMember is adaptertest.StartRangeMember for confluent.
func startMember(t testing.TB, c *kafkatest.Cluster, group, topic string, ev *adaptertest.MemberEvents, h adaptertest.Handler) adaptertest.RangeMember {
	opts := append(fastOpts(testLogger(t)), strategy("range"))
	if ev != nil {
		opts = append(opts, confluent.WithConcurrency(1),
			confluent.WithRevokeHook(func(_ []confluent.TopicPartition, lost bool) { ev.Revoked(lost) }),
			confluent.WithCommitHook(func(offs []confluent.Offset, errs []error) {
				for i, o := range offs {
					ev.Committed(o.TP.Partition, o.Offset, errs[i])
				}
			}))
	}
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, func(hctx context.Context, m *kafka.Message) error {
		return h(hctx, m.TopicPartition.Partition, int64(m.TopicPartition.Offset))
	})
	return adaptertest.RangeMember{Stop: stop, Owned: func() int { return len(cons.Stats()) }}
}

// The revoke must not wait for the stuck worker: otherwise librdkafka
// exceeds max.poll.interval.ms, leaves the group, and the commits come back
// "Unknown member".
func TestRevokeDoesNotWaitForBusyWorkers(t *testing.T) {
	adaptertest.CheckRevokeDoesNotWaitForABusyWorker(t, startMember)
}

func TestRunReturnsWhenAHandlerIgnoresCtx(t *testing.T) {
	adaptertest.CheckRunReturnsWhenAHandlerIgnoresCtx(t, func(ctx context.Context, c *kafkatest.Cluster, group, topic string, revoke time.Duration, h adaptertest.Handler) error {
		cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, append(fastOpts(slogDiscard()), confluent.WithRevokeTimeout(revoke))...)
		if err != nil {
			return err
		}
		return cons.Run(ctx, func(hctx context.Context, m *kafka.Message) error {
			return h(hctx, m.TopicPartition.Partition, int64(m.TopicPartition.Offset))
		})
	})
}
