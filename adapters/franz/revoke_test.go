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

// startMember is adaptertest.StartRangeMember for franz.
func startMember(t testing.TB, c *kafkatest.Cluster, group, topic string, ev *adaptertest.MemberEvents, h adaptertest.Handler) adaptertest.RangeMember {
	opts := append(fastOpts(testLogger(t)), balancer("range"))
	if ev != nil {
		opts = append(opts, franz.WithConcurrency(1),
			franz.WithRevokeHook(func(_ []franz.TopicPartition, lost bool) { ev.Revoked(lost) }),
			franz.WithCommitHook(func(_ string, _ int32, offs []franz.Offset, errs []error) {
				for i, o := range offs {
					ev.Committed(o.TP.Partition, o.Offset, errs[i])
				}
			}))
	}
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, func(hctx context.Context, r *kgo.Record) error { return h(hctx, r.Partition, r.Offset) })
	return adaptertest.RangeMember{Stop: stop, Owned: func() int { return len(cons.Stats()) }}
}

func TestRevokeDoesNotWaitForABusyWorker(t *testing.T) {
	adaptertest.CheckRevokeDoesNotWaitForABusyWorker(t, startMember)
}

func TestRunReturnsWhenAHandlerIgnoresCtx(t *testing.T) {
	adaptertest.CheckRunReturnsWhenAHandlerIgnoresCtx(t, func(ctx context.Context, c *kafkatest.Cluster, group, topic string, revoke time.Duration, h adaptertest.Handler) error {
		cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic}, append(fastOpts(slogDiscard()), franz.WithRevokeTimeout(revoke))...)
		if err != nil {
			return err
		}
		return cons.Run(ctx, func(hctx context.Context, r *kgo.Record) error { return h(hctx, r.Partition, r.Offset) })
	})
}
