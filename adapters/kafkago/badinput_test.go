package kafkago_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func slogDiscard() *slog.Logger { return adaptertest.DiscardLogger() }

// Issue: a config without brokers, group or topics, or with negative sizes,
// is refused by NewConsumer with an error naming the field.
func TestNewConsumerRefusesBadConfig(t *testing.T) {
	b, g, tp := []string{"127.0.0.1:9092"}, "g", []string{"t"}
	for _, tc := range []struct {
		name    string
		brokers []string
		group   string
		topics  []string
		opts    []kafkago.Option
		field   string
	}{
		{"no brokers", nil, g, tp, nil, "Brokers"},
		{"empty broker", []string{""}, g, tp, nil, "Brokers[0]"},
		{"no group", b, "", tp, nil, "Group"},
		{"no topics", b, g, nil, nil, "Topics"},
		{"empty topic", b, g, []string{"t", ""}, nil, "Topics[1]"},
		{"negative concurrency", b, g, tp, []kafkago.Option{kafkago.WithConcurrency(-1)}, "Concurrency"},
		{"zero concurrency", b, g, tp, []kafkago.Option{kafkago.WithConcurrency(0)}, "Concurrency"},
		{"negative window", b, g, tp, []kafkago.Option{kafkago.WithWindow(-5)}, "Window"},
		{"negative metadata size", b, g, tp, []kafkago.Option{kafkago.WithMetadataMaxBytes(-1)}, "MetadataMaxBytes"},
		{"negative fetch size", b, g, tp, []kafkago.Option{kafkago.WithFetchMaxBytes(-1)}, "FetchMaxBytes"},
		{"fetch size above int32", b, g, tp, []kafkago.Option{kafkago.WithFetchMaxBytes(math.MaxInt32 + 1)}, "FetchMaxBytes"},
		{"fetch wait below a millisecond", b, g, tp, []kafkago.Option{kafkago.WithFetchMaxWait(999 * time.Microsecond)}, "FetchMaxWait"},
		{"zero fetch wait", b, g, tp, []kafkago.Option{kafkago.WithFetchMaxWait(0)}, "FetchMaxWait"},
		{"fetch wait above int32 milliseconds", b, g, tp, []kafkago.Option{kafkago.WithFetchMaxWait((math.MaxInt32 + 1) * time.Millisecond)}, "FetchMaxWait"},
		{"zero commit interval", b, g, tp, []kafkago.Option{kafkago.WithCommitInterval(0)}, "CommitInterval"},
		{"negative revoke timeout", b, g, tp, []kafkago.Option{kafkago.WithRevokeTimeout(-time.Second)}, "RevokeTimeout"},
		{"revoke timeout not below rebalance timeout", b, g, tp,
			[]kafkago.Option{kafkago.WithRevokeTimeout(time.Minute), kafkago.WithRebalanceTimeout(time.Minute)}, "RevokeTimeout"},
		{"negative session timeout", b, g, tp, []kafkago.Option{kafkago.WithSessionTimeout(-1)}, "SessionTimeout"},
		{"heartbeat not below session timeout", b, g, tp,
			[]kafkago.Option{kafkago.WithHeartbeatInterval(time.Minute)}, "HeartbeatInterval"},
		{"bad start offset", b, g, tp, []kafkago.Option{kafkago.WithStartOffset(42)}, "StartOffset"},
		{"unknown error policy", b, g, tp, []kafkago.Option{kafkago.WithErrorPolicy(7)}, "ErrorPolicy"},
		{"nil logger", b, g, tp, []kafkago.Option{kafkago.WithLogger(nil)}, "Logger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kafkago.NewConsumer(tc.brokers, tc.group, tc.topics, tc.opts...)
			if c != nil || !errors.Is(err, kafkago.ErrInvalidConfig) {
				t.Fatalf("NewConsumer = %v, %v; want ErrInvalidConfig", c, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
	t.Run("valid config is accepted", func(t *testing.T) {
		if _, err := kafkago.NewConsumer(b, g, tp); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRunRefusesNilHandlerAndSecondRun(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 1))
	cons, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"t"}, fastOpts(slogDiscard())...)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Run(context.Background(), nil); !errors.Is(err, kafkago.ErrInvalidConfig) {
		t.Fatalf("nil handler: %v", err)
	}
	started := make(chan struct{})
	var once sync.Once
	stop := runConsumer(t, cons, func(context.Context, kafka.Message) error { return nil })
	go func() {
		for len(cons.Stats()) == 0 { // joined and assigned (stopping earlier would be ErrNeverJoined)
			time.Sleep(10 * time.Millisecond)
		}
		once.Do(func() { close(started) })
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("consumer never got its partition")
	}
	if err := cons.Run(context.Background(), func(context.Context, kafka.Message) error { return nil }); !errors.Is(err, kafkago.ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// countingHandler counts log records at Warn and above.
type countingHandler struct {
	n atomic.Int64
}

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countingHandler) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *countingHandler) WithGroup(string) slog.Handler                { return h }

// Issue: an unreachable broker is retried with backoff; Run returns
// ErrNeverJoined when ctx ends; no busy loop, no panic, no Warn per
// attempt. Every failed attempt is followed by a backoff wait (counted
// through a hook, not the wall clock), and the waits grow as the backoff
// promises.
func TestUnreachableBrokerRetriesWithBackoffUntilCtxEnds(t *testing.T) {
	const first, attempts = 10 * time.Millisecond, 5
	h := &countingHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu    sync.Mutex
		waits []time.Duration
	)
	hook := kafkago.WithBackoffHook(func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		if len(waits) == attempts {
			cancel()
		}
	})
	// Port 1 on localhost refuses connections at once: without a backoff the
	// join loop would spin.
	cons, err := kafkago.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"},
		append(fastOpts(slog.New(h)), kafkago.WithRetryBackoff(first), hook)...)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(ctx, func(context.Context, kafka.Message) error {
			t.Error("handler called without a broker")
			return nil
		})
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, kafkago.ErrNeverJoined) {
			t.Fatalf("Run = %v, want ErrNeverJoined on ctx end (it never reached a broker)", err)
		}
	case <-time.After(30 * time.Second): // hang guard only
		t.Fatal("Run did not return after ctx ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := kafkago.BackoffWaits(first, attempts); !slices.Equal(waits, want) {
		t.Fatalf("backoff waits %v, want %v", waits, want)
	}
	// The attempts go to Debug; a Warn comes once no broker answered for
	// RequestTimeout (the shared CheckUnreachableBroker), not per attempt.
	if n := h.n.Load(); n > 1 {
		t.Fatalf("%d warnings for %d failed attempts, want at most one", n, attempts)
	}
}

// Issue: the retry backoff doubles up to 5s; a first wait above 5s stays
// as it is instead of shrinking after the first wait.
func TestRetryBackoffDoublesUpToTheCap(t *testing.T) {
	s, ms := time.Second, time.Millisecond
	for _, tc := range []struct {
		first time.Duration
		want  []time.Duration
	}{
		{250 * ms, []time.Duration{250 * ms, 500 * ms, s, 2 * s, 4 * s, 5 * s, 5 * s}},
		{8 * s, []time.Duration{8 * s, 8 * s, 8 * s}},
	} {
		if got := kafkago.BackoffWaits(tc.first, len(tc.want)); !slices.Equal(got, tc.want) {
			t.Errorf("WithRetryBackoff(%v): waits %v, want %v", tc.first, got, tc.want)
		}
	}
}
