package kafkago_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// commitLog records what the commit hook of one member saw.
type commitLog struct {
	mu       sync.Mutex
	accepted map[int32]int64 // partition -> highest accepted offset
	refused  []error
}

func newCommitLog() *commitLog { return &commitLog{accepted: map[int32]int64{}} }

func (l *commitLog) hook() kafkago.Option {
	return kafkago.WithCommitHook(func(_ string, _ int32, offs []kafkago.Offset, errs []error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, o := range offs {
			if errs != nil && errs[i] != nil {
				l.refused = append(l.refused, errs[i])
				continue
			}
			if errs != nil {
				l.accepted[o.TP.Partition] = max(l.accepted[o.TP.Partition], o.Offset)
			}
		}
	})
}

func (l *commitLog) get(p int32) (int64, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted[p], append([]error(nil), l.refused...)
}

// Issue (review finding 1): a drain longer than the session timeout must not
// get the member evicted: kafka-go's heartbeat stops when the generation
// ends, so the drain heartbeats itself, and the final commit (which includes
// the slow message) is accepted.
func TestDrainLongerThanSessionTimeoutKeepsMembershipAndCommits(t *testing.T) {
	const (
		topic   = "slow"
		group   = "slow-group"
		session = 1500 * time.Millisecond
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, 100, 90*time.Second)
	var joins atomic.Int64
	c.Fake().ControlKey(int16(kmsg.JoinGroup), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		if kreq.(*kmsg.JoinGroupRequest).Group == group {
			joins.Add(1)
		}
		return nil, nil, false
	})
	opts := append(fastOpts(testLogger(t)),
		kafkago.WithSessionTimeout(session),
		kafkago.WithRevokeTimeout(8*time.Second),
		kafkago.WithRebalanceTimeout(12*time.Second))

	holding := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	logA := newCommitLog()
	a, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic}, append(opts, logA.hook())...)
	if err != nil {
		t.Fatal(err)
	}
	stopA := runConsumer(t, a, func(_ context.Context, m kafka.Message) error {
		if m.Offset == 50 {
			close(holding)
			<-release // ignores ctx on purpose: a slow handler
		}
		return nil
	})
	select {
	case <-holding:
	case <-ctx.Done():
		t.Fatal("offset 50 never reached the handler")
	}

	before := joins.Load()
	b, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopB := runConsumer(t, b, func(context.Context, kafka.Message) error { return nil })
	adaptertest.WaitFor(ctx, t, "B's JoinGroup at the broker", func() bool { return joins.Load() > before })
	// The rebalance has begun and A is draining with offset 50 in flight.
	// Hold it for twice the session timeout: this is the condition under
	// test, not a timing assertion.
	time.Sleep(2 * session)
	releaseOnce.Do(func() { close(release) })

	adaptertest.WaitFor(ctx, t, "A's final commit", func() bool {
		got, refused := logA.get(0)
		return got > 50 || len(refused) > 0
	})
	got, refused := logA.get(0)
	if len(refused) > 0 {
		t.Fatalf("A's commits refused after a long drain (evicted?): %v", refused)
	}
	if got <= 50 {
		t.Fatalf("A committed %d, want past the slow offset 50", got)
	}
	if err := stopB(); err != nil {
		t.Fatalf("B: %v", err)
	}
	if err := stopA(); err != nil {
		t.Fatalf("A: %v", err)
	}
}
