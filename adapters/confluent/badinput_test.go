package confluent_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: each bad input is refused by NewConsumer with an error naming the
// field or the librdkafka setting; settings that would break the
// guarantees are refused.
func TestNewConsumerRefusesBadConfig(t *testing.T) {
	b, g, tp := []string{"127.0.0.1:9092"}, "g", []string{"t"}
	cm := func(k string, v kafka.ConfigValue) confluent.Option {
		return confluent.WithConfigMap(kafka.ConfigMap{k: v})
	}
	for _, tc := range []struct {
		name    string
		brokers []string
		group   string
		topics  []string
		opts    []confluent.Option
		field   string
	}{
		{"no brokers", nil, g, tp, nil, "Brokers"},
		{"empty broker", []string{""}, g, tp, nil, "Brokers[0]"},
		{"brokers twice", b, g, tp, []confluent.Option{cm("bootstrap.servers", "x:1")}, "bootstrap.servers"},
		{"no group", b, "", tp, nil, "Group"},
		{"no topics", b, g, nil, nil, "Topics"},
		{"empty topic", b, g, []string{"t", ""}, nil, "Topics[1]"},
		{"zero concurrency", b, g, tp, []confluent.Option{confluent.WithConcurrency(0)}, "Concurrency"},
		{"negative window", b, g, tp, []confluent.Option{confluent.WithWindow(-5)}, "Window"},
		{"negative metadata size", b, g, tp, []confluent.Option{confluent.WithMetadataMaxBytes(-1)}, "MetadataMaxBytes"},
		{"zero commit interval", b, g, tp, []confluent.Option{confluent.WithCommitInterval(0)}, "CommitInterval"},
		{"negative revoke timeout", b, g, tp, []confluent.Option{confluent.WithRevokeTimeout(-time.Second)}, "RevokeTimeout"},
		{"revoke timeout not below rebalance timeout", b, g, tp,
			[]confluent.Option{confluent.WithRevokeTimeout(time.Minute), confluent.WithRebalanceTimeout(time.Minute)}, "RevokeTimeout"},
		{"revoke timeout not below max.poll.interval.ms from the map", b, g, tp,
			[]confluent.Option{confluent.WithRevokeTimeout(time.Minute), cm("max.poll.interval.ms", 30000)}, "max.poll.interval.ms"},
		{"zero session timeout", b, g, tp, []confluent.Option{confluent.WithSessionTimeout(0)}, "SessionTimeout"},
		{"negative heartbeat", b, g, tp, []confluent.Option{confluent.WithHeartbeatInterval(-1)}, "HeartbeatInterval"},
		{"bad start offset", b, g, tp, []confluent.Option{confluent.WithStartOffset(42)}, "StartOffset"},
		{"negative fetch size", b, g, tp, []confluent.Option{confluent.WithFetchMaxBytes(-1)}, "FetchMaxBytes"},
		{"zero request timeout", b, g, tp, []confluent.Option{confluent.WithRequestTimeout(0)}, "RequestTimeout"},
		{"sub-millisecond request timeout", b, g, tp, []confluent.Option{confluent.WithRequestTimeout(time.Microsecond)}, "RequestTimeout"},
		{"zero rebalance timeout", b, g, tp, []confluent.Option{confluent.WithRebalanceTimeout(0)}, "RebalanceTimeout"},
		{"sub-millisecond rebalance timeout", b, g, tp, []confluent.Option{confluent.WithRebalanceTimeout(500 * time.Microsecond)}, "RebalanceTimeout"},
		{"sub-millisecond session timeout", b, g, tp, []confluent.Option{confluent.WithSessionTimeout(time.Nanosecond)}, "SessionTimeout"},
		{"sub-millisecond heartbeat", b, g, tp, []confluent.Option{confluent.WithHeartbeatInterval(999 * time.Microsecond)}, "HeartbeatInterval"},
		{"negative fetch wait", b, g, tp, []confluent.Option{confluent.WithFetchMaxWait(-time.Millisecond)}, "FetchMaxWait"},
		{"sub-millisecond fetch wait", b, g, tp, []confluent.Option{confluent.WithFetchMaxWait(time.Microsecond)}, "FetchMaxWait"},
		{"unknown error policy", b, g, tp, []confluent.Option{confluent.WithErrorPolicy(7)}, "ErrorPolicy"},
		{"nil logger", b, g, tp, []confluent.Option{confluent.WithLogger(nil)}, "Logger"},
		{"auto offset store", b, g, tp, []confluent.Option{cm("enable.auto.offset.store", true)}, "enable.auto.offset.store"},
		{"auto offset store as a string", b, g, tp, []confluent.Option{cm("enable.auto.offset.store", "true")}, "enable.auto.offset.store"},
		{"auto commit", b, g, tp, []confluent.Option{cm("enable.auto.commit", true)}, "enable.auto.commit"},
		{"auto commit interval", b, g, tp, []confluent.Option{cm("auto.commit.interval.ms", 100)}, "auto.commit.interval.ms"},
		{"partition eof off", b, g, tp, []confluent.Option{cm("enable.partition.eof", false)}, "enable.partition.eof"},
		{"application rebalance", b, g, tp, []confluent.Option{cm("go.application.rebalance.enable", true)}, "go.application.rebalance.enable"},
		{"events channel", b, g, tp, []confluent.Option{cm("go.events.channel.enable", true)}, "go.events.channel.enable"},
		{"group in the map", b, g, tp, []confluent.Option{cm("group.id", "other")}, "group.id"},
		{"auto offset reset error", b, g, tp, []confluent.Option{cm("auto.offset.reset", "error")}, "auto.offset.reset"},
		{"unknown librdkafka setting", b, g, tp, []confluent.Option{cm("no.such.setting", 1)}, "no.such.setting"},
		{"bad librdkafka value", b, g, tp, []confluent.Option{cm("fetch.min.bytes", "lots")}, "fetch.min.bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := confluent.NewConsumer(tc.brokers, tc.group, tc.topics, tc.opts...)
			if c != nil || !errors.Is(err, confluent.ErrInvalidConfig) {
				t.Fatalf("NewConsumer = %v, %v; want ErrInvalidConfig", c, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
	t.Run("valid config is accepted", func(t *testing.T) {
		ok := []confluent.Option{
			// The guarded settings may be repeated with the values the
			// Consumer needs.
			confluent.WithConfigMap(kafka.ConfigMap{
				"enable.auto.offset.store": false, "enable.auto.commit": "false",
				"enable.partition.eof": true, "client.id": "me",
			}),
		}
		if _, err := confluent.NewConsumer(b, g, tp, ok...); err != nil {
			t.Fatal(err)
		}
		if _, err := confluent.NewConsumer(nil, g, tp, confluent.WithConfigMap(kafka.ConfigMap{"bootstrap.servers": "h:1"})); err != nil {
			t.Fatalf("bootstrap.servers instead of Brokers: %v", err)
		}
	})
}

// librdkafka's fetch.queue.backoff.ms (1s) would stall a consumer whose
// local queue filled for a second at a time: the Consumer sets 50 ms, and a
// ConfigMap may set its own.
func TestFetchQueueBackoff(t *testing.T) {
	b, g, tp := []string{"127.0.0.1:1"}, "g", []string{"t"}
	c, err := confluent.NewConsumer(b, g, tp)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConfigValue("fetch.queue.backoff.ms"); got != 50 {
		t.Errorf("fetch.queue.backoff.ms = %v, want 50", got)
	}
	c, err = confluent.NewConsumer(b, g, tp, confluent.WithConfigMap(kafka.ConfigMap{"fetch.queue.backoff.ms": 200}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConfigValue("fetch.queue.backoff.ms"); got != 200 {
		t.Errorf("with a ConfigMap of 200: fetch.queue.backoff.ms = %v, want 200", got)
	}
}

// librdkafka's socket.timeout.ms bounds each request, a commit's included
// (see the package doc): the Consumer sets it from RequestTimeout, at
// least FetchMaxWait + 1s, and a ConfigMap may set it instead of
// WithRequestTimeout, not as well.
func TestSocketTimeoutFollowsRequestTimeout(t *testing.T) {
	b, g, tp := []string{"127.0.0.1:1"}, "g", []string{"t"}
	for _, tc := range []struct {
		name string
		opts []confluent.Option
		want int
	}{
		{"default", nil, 10000},
		{"request timeout 30s", []confluent.Option{confluent.WithRequestTimeout(30 * time.Second)}, 30000},
		{"request timeout below the fetch wait + 1s", []confluent.Option{confluent.WithRequestTimeout(100 * time.Millisecond)}, 1500},
		{"capped at librdkafka's maximum", []confluent.Option{confluent.WithRequestTimeout(time.Hour)}, 300000},
		{"from the ConfigMap", []confluent.Option{confluent.WithConfigMap(kafka.ConfigMap{"socket.timeout.ms": 20000})}, 20000},
	} {
		c, err := confluent.NewConsumer(b, g, tp, tc.opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.ConfigValue("socket.timeout.ms"); got != tc.want {
			t.Errorf("%s: socket.timeout.ms = %v, want %d", tc.name, got, tc.want)
		}
	}
	_, err := confluent.NewConsumer(b, g, tp, confluent.WithRequestTimeout(time.Second),
		confluent.WithConfigMap(kafka.ConfigMap{"socket.timeout.ms": 20000}))
	if !errors.Is(err, confluent.ErrInvalidConfig) || !strings.Contains(err.Error(), "socket.timeout.ms") {
		t.Errorf("RequestTimeout and socket.timeout.ms both set: err = %v, want ErrInvalidConfig naming socket.timeout.ms", err)
	}
}

func TestRunRefusesNilHandlerAndSecondRun(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 1))
	cons, err := confluent.NewConsumer(c.Addrs(), "g", []string{"t"}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Run(context.Background(), nil); !errors.Is(err, confluent.ErrInvalidConfig) {
		t.Fatalf("nil handler: %v", err)
	}
	stop := runConsumer(t, cons, func(context.Context, *kafka.Message) error { return nil })
	adaptertest.WaitFor(adaptertest.Timeout(t, 30*time.Second), t, "the partition to be assigned", func() bool { return cons.Stats() != nil && len(cons.Stats()) == 1 })
	if err := cons.Run(context.Background(), func(context.Context, *kafka.Message) error { return nil }); !errors.Is(err, confluent.ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Run again after it returned: allowed.
	stop = runConsumer(t, cons, func(context.Context, *kafka.Message) error { return nil })
	adaptertest.WaitFor(adaptertest.Timeout(t, 30*time.Second), t, "the partition to be assigned again", func() bool { return len(cons.Stats()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Close is final: a Run after it returns ErrClosed without joining.
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cons.Run(context.Background(), func(context.Context, *kafka.Message) error { return nil }); !errors.Is(err, confluent.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if s := cons.Stats(); s != nil {
		t.Fatalf("Stats after a refused Run: %v", s)
	}
}

// Issue: under StopOnError a failing handler stops Run with its error, and
// nothing at or past the failed message is committed.
func TestStopOnErrorNeverCommitsPastTheFailure(t *testing.T) {
	const (
		topic = "fail"
		group = "fail-group"
		bad   = 137
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, 1000, 60*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithErrorPolicy(confluent.StopOnError),
			confluent.WithCommitHook(func(o []confluent.Offset, e []error) { t.Logf("commit %+v %v", o, e) }),
			confluent.WithAssignHook(func(_ string, tps []confluent.TopicPartition) { t.Logf("assign %v", tps) }),
			confluent.WithRevokeHook(func(tps []confluent.TopicPartition, lost bool) { t.Logf("revoke %v lost=%v", tps, lost) }))...)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(ctx, func(_ context.Context, m *kafka.Message) error {
			if m.TopicPartition.Offset == bad {
				return boom
			}
			return nil
		})
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, confluent.ErrHandler) || !errors.Is(err, boom) {
			t.Fatalf("Run = %v, want ErrHandler wrapping the handler's error", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not stop on the handler error")
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := com[0].Offset; got > bad {
		t.Fatalf("committed %d, past the failed offset %d", got, bad)
	}
}

// Issue: a panicking handler is an error like any other (LogAndAck: logged,
// acked, the commit point moves on).
func TestHandlerPanicIsLoggedAndAcked(t *testing.T) {
	const topic, group = "panic", "panic-group"
	c, ctx := adaptertest.StartProduced(t, topic, 1, 50, 60*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, stableOpts(slogDiscard())...)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	stop := runConsumer(t, cons, func(_ context.Context, m *kafka.Message) error {
		calls.Add(1)
		if m.TopicPartition.Offset == 10 {
			panic("handler bug")
		}
		return nil
	})
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 50 {
		t.Fatalf("%d handler calls, want 50", calls.Load())
	}
}
