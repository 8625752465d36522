package franz_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func TestCloseFromAHandler(t *testing.T) {
	adaptertest.CheckCloseFromAHandler(t, func(t testing.TB, c *kafkatest.Cluster, group, topic string, revoke time.Duration) adaptertest.ClosingConsumer {
		cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
			append(stableOpts(testLogger(t)), franz.WithRevokeTimeout(revoke),
				franz.WithRebalanceTimeout(revoke+30*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.ClosingConsumer{
			Run: func(h adaptertest.Handler) error {
				return cons.Run(context.Background(), func(hctx context.Context, r *kgo.Record) error {
					return h(hctx, r.Partition, r.Offset)
				})
			},
			Close: cons.Close,
		}
	})
}
