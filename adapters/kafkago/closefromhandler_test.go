package kafkago_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func TestCloseFromAHandler(t *testing.T) {
	adaptertest.CheckCloseFromAHandler(t, func(t testing.TB, c *kafkatest.Cluster, group, topic string, revoke time.Duration) adaptertest.ClosingConsumer {
		cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic},
			append(fastOpts(testLogger(t)), kafkago.WithSessionTimeout(10*time.Second),
				kafkago.WithRevokeTimeout(revoke), kafkago.WithRebalanceTimeout(revoke+30*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.ClosingConsumer{
			Run: func(h adaptertest.Handler) error {
				return cons.Run(context.Background(), func(hctx context.Context, m kafka.Message) error {
					return h(hctx, int32(m.Partition), m.Offset)
				})
			},
			Close: cons.Close,
		}
	})
}
