package franz_test

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: a config without brokers, group or topics, with out-of-range
// options, or with kgo options that would break the guarantees, is refused
// by NewConsumer with an error naming the field or the kgo option.
func TestNewConsumerRefusesBadConfig(t *testing.T) {
	b, g, tp := []string{"127.0.0.1:9092"}, "g", []string{"t"}
	noop := func(context.Context, *kgo.Client, map[string][]int32) {}
	cli := franz.WithClientOptions
	for _, tc := range []struct {
		name    string
		brokers []string
		group   string
		topics  []string
		opts    []franz.Option
		field   string
	}{
		{"no brokers", nil, g, tp, nil, "Brokers"},
		{"empty broker", []string{""}, g, tp, nil, "Brokers[0]"},
		{"no group", b, "", tp, nil, "Group"},
		{"no topics", b, g, nil, nil, "Topics"},
		{"empty topic", b, g, []string{"t", ""}, nil, "Topics[1]"},
		{"nil option", b, g, tp, []franz.Option{nil}, "nil Option"},
		{"zero concurrency", b, g, tp, []franz.Option{franz.WithConcurrency(0)}, "Concurrency"},
		{"negative window", b, g, tp, []franz.Option{franz.WithWindow(-5)}, "Window"},
		{"negative metadata size", b, g, tp, []franz.Option{franz.WithMetadataMaxBytes(-1)}, "MetadataMaxBytes"},
		{"fetch size above int32", b, g, tp, []franz.Option{franz.WithFetchMaxBytes(math.MaxInt32 + 1)}, "FetchMaxBytes"},
		{"zero fetch wait", b, g, tp, []franz.Option{franz.WithFetchMaxWait(0)}, "FetchMaxWait"},
		{"zero commit interval", b, g, tp, []franz.Option{franz.WithCommitInterval(0)}, "CommitInterval"},
		{"revoke timeout not below rebalance timeout", b, g, tp,
			[]franz.Option{franz.WithRevokeTimeout(time.Minute), franz.WithRebalanceTimeout(time.Minute)}, "RevokeTimeout"},
		{"heartbeat not below session timeout", b, g, tp, []franz.Option{franz.WithHeartbeatInterval(time.Minute)}, "HeartbeatInterval"},
		{"bad start offset", b, g, tp, []franz.Option{franz.WithStartOffset(42)}, "StartOffset"},
		{"unknown error policy", b, g, tp, []franz.Option{franz.WithErrorPolicy(7)}, "ErrorPolicy"},
		{"nil logger", b, g, tp, []franz.Option{franz.WithLogger(nil)}, "Logger"},
		{"empty client id", b, g, tp, []franz.Option{franz.WithClientID("")}, "ClientID"},
		{"nil kgo option", b, g, tp, []franz.Option{cli(nil)}, "option 0 is nil"},
		{"kgo rejects the option", b, g, tp, []franz.Option{cli(kgo.TransactionalID(""))}, "kgo"},
		{"group by kgo option", b, g, tp, []franz.Option{cli(kgo.ConsumerGroup("other"))}, "ConsumerGroup"},
		{"topics by kgo option", b, g, tp, []franz.Option{cli(kgo.ConsumeTopics("other"))}, "ConsumeTopics"},
		{"regex topics", b, g, tp, []franz.Option{cli(kgo.ConsumeRegex())}, "ConsumeRegex"},
		{"direct partitions", b, g, tp,
			[]franz.Option{cli(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {0: kgo.NewOffset()}}))}, "direct-partition"}, // kgo's own refusal
		{"auto-commit marks", b, g, tp, []franz.Option{cli(kgo.AutoCommitMarks())}, "AutoCommitMarks"},
		{"auto-commit disabled by the user", b, g, tp, []franz.Option{cli(kgo.DisableAutoCommit())}, "DisableAutoCommit"},
		{"greedy auto-commit", b, g, tp, []franz.Option{cli(kgo.GreedyAutoCommit())}, "GreedyAutoCommit"},
		{"auto-commit interval", b, g, tp, []franz.Option{cli(kgo.AutoCommitInterval(time.Second))}, "AutoCommitInterval"},
		{"auto-commit callback", b, g, tp, []franz.Option{cli(kgo.AutoCommitCallback(
			func(*kgo.Client, *kmsg.OffsetCommitRequest, *kmsg.OffsetCommitResponse, error) {}))}, "AutoCommitCallback"},
		{"reset offset", b, g, tp, []franz.Option{cli(kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))}, "ConsumeResetOffset"},
		{"start offset", b, g, tp, []franz.Option{cli(kgo.ConsumeStartOffset(kgo.NewOffset().At(7)))}, "ConsumeStartOffset"},
		{"own revoke callback", b, g, tp, []franz.Option{cli(kgo.OnPartitionsRevoked(noop))}, "OnPartitionsRevoked"},
		{"own lost callback", b, g, tp, []franz.Option{cli(kgo.OnPartitionsLost(noop))}, "OnPartitionsLost"},
		{"own assigned callback", b, g, tp, []franz.Option{cli(kgo.OnPartitionsAssigned(noop))}, "OnPartitionsAssigned"},
		{"transactional id", b, g, tp, []franz.Option{cli(kgo.TransactionalID("tx"))}, "TransactionalID"},
		{"session timeout by kgo option", b, g, tp, []franz.Option{cli(kgo.SessionTimeout(time.Minute))}, "SessionTimeout"},
		{"read uncommitted by kgo option", b, g, tp, []franz.Option{cli(kgo.FetchIsolationLevel(kgo.ReadUncommitted()))}, "WithReadCommitted"},
		{"client id by kgo option", b, g, tp, []franz.Option{cli(kgo.ClientID("x"))}, "WithClientID"},
		{"seed brokers by kgo option", b, g, tp, []franz.Option{cli(kgo.SeedBrokers("10.0.0.1:9092"))}, "SeedBrokers"},
		{"response size below the fetch size", b, g, tp, []franz.Option{cli(kgo.FetchMaxBytes(64 << 10))}, "use WithFetchMaxBytes"},
		{"retry backoff by kgo option", b, g, tp,
			[]franz.Option{cli(kgo.RetryBackoffFn(func(int) time.Duration { return time.Second }))}, "RetryBackoffFn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := franz.NewConsumer(tc.brokers, tc.group, tc.topics, tc.opts...)
			if c != nil || !errors.Is(err, franz.ErrInvalidConfig) {
				t.Fatalf("NewConsumer = %v, %v; want ErrInvalidConfig", c, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
	t.Run("valid config with harmless kgo options is accepted", func(t *testing.T) {
		_, err := franz.NewConsumer(b, g, tp, franz.WithClientOptions(
			kgo.DialTLSConfig(&tls.Config{}), kgo.Balancers(kgo.RangeBalancer()), kgo.FetchMaxBytes(8<<20), // raises the response's size
			kgo.SessionTimeout(franz.DefaultSessionTimeout), // repeats the shared option's value
			kgo.BlockRebalanceOnPoll(), kgo.KeepControlRecords()))
		if err != nil {
			t.Fatal(err)
		}
	})
}

// Issue: a nil handler, a second Run while running, Run after Close; Close
// is idempotent, may be called before, during and after Run, from several
// goroutines at once, and makes a running Run drain, commit and return nil.
func TestRunAndCloseLifecycle(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "t", 2, 100, 60*time.Second)
	noop := func(context.Context, *kgo.Record) error { return nil }

	cons, err := franz.NewConsumer(c.Addrs(), "g", []string{"t"}, stableOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Run(ctx, nil); !errors.Is(err, franz.ErrInvalidConfig) {
		t.Fatalf("nil handler: %v", err)
	}
	before, _ := clientGoroutines()
	errc := make(chan error, 1)
	go func() { errc <- cons.Run(ctx, noop) }()
	adaptertest.WaitFor(ctx, t, "both partitions owned", func() bool { return len(cons.Stats()) == 2 })
	if err := cons.Run(ctx, noop); !errors.Is(err, franz.ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "g", "t"); return ok })
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := cons.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	// Close returns once Run's last deferred step ran: the partitions are
	// released by then (whether Run's goroutine has received its result
	// yet is not observable).
	if st := cons.Stats(); st != nil {
		t.Fatalf("Close returned while Run still owned %v", st)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run after Close = %v, want nil", err)
	}
	if err := cons.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	if err := cons.Run(ctx, noop); !errors.Is(err, franz.ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
	checkNoLeak(t, before)

	fresh, err := franz.NewConsumer(c.Addrs(), "g2", []string{"t"}, stableOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Run(ctx, noop); !errors.Is(err, franz.ErrClosed) {
		t.Fatalf("Run after Close before any Run: %v, want ErrClosed", err)
	}
}

// Issue: a cluster that refuses the group (authorization) stops Run with
// ErrClient instead of retrying for ever.
func TestGroupAuthorizationFailureStopsRun(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 1))
	c.Fake().ControlKey(int16(kmsg.JoinGroup), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.JoinGroupRequest)
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = 30 // GROUP_AUTHORIZATION_FAILED
		return resp, nil, true
	})
	cons, err := franz.NewConsumer(c.Addrs(), "g", []string{"t"}, stableOpts(slogDiscard())...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := adaptertest.Timeout(t, 30*time.Second)
	err = cons.Run(ctx, func(context.Context, *kgo.Record) error { return nil })
	if !errors.Is(err, franz.ErrClient) || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want ErrClient before the hang guard", err, ctx.Err())
	}
}
