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

func TestCloseFromAHandler(t *testing.T) {
	adaptertest.CheckCloseFromAHandler(t, func(t testing.TB, c *kafkatest.Cluster, group, topic string, revoke time.Duration) adaptertest.ClosingConsumer {
		cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
			append(stableOpts(testLogger(t)), confluent.WithRevokeTimeout(revoke),
				confluent.WithRebalanceTimeout(revoke+30*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.ClosingConsumer{
			Run: func(h adaptertest.Handler) error {
				return cons.Run(context.Background(), func(hctx context.Context, m *kafka.Message) error {
					return h(hctx, m.TopicPartition.Partition, int64(m.TopicPartition.Offset))
				})
			},
			Close: cons.Close,
		}
	})
}
