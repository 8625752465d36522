package kafkago_test

import (
	"context"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// startMember is adaptertest.StartRangeMember for kafka-go. kafka-go has no
// revoke callback: a generation's revoke (drain, commit) has ended when the
// next generation starts, and the assignment was lost if the member id
// changed (the member was removed and joined again).
func startMember(t testing.TB, c *kafkatest.Cluster, group, topic string, ev *adaptertest.MemberEvents, h adaptertest.Handler) adaptertest.RangeMember {
	opts := append(fastOpts(testLogger(t)), kafkago.WithGroupBalancers(kafka.RangeGroupBalancer{}))
	if ev != nil {
		var mu sync.Mutex
		last := ""
		opts = append(opts, kafkago.WithConcurrency(1),
			kafkago.WithGenerationHook(func(member string, _ int32, _ []kafkago.TopicPartition) {
				mu.Lock()
				defer mu.Unlock()
				if last != "" {
					ev.Revoked(member != last)
				}
				last = member
			}),
			kafkago.WithCommitHook(func(_ string, _ int32, offs []kafkago.Offset, errs []error) {
				for i, o := range offs {
					var err error
					if errs != nil {
						err = errs[i]
					}
					ev.Committed(o.TP.Partition, o.Offset, err)
				}
			}))
	}
	cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, func(hctx context.Context, m kafka.Message) error { return h(hctx, int32(m.Partition), m.Offset) })
	return adaptertest.RangeMember{Stop: stop, Owned: func() int { return len(cons.Stats()) }}
}

func TestRevokeDoesNotWaitForABusyWorker(t *testing.T) {
	adaptertest.CheckRevokeDoesNotWaitForABusyWorker(t, startMember)
}
