package franz_test

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func slogDiscard() *slog.Logger { return adaptertest.DiscardLogger() }

// testLogger logs warnings and errors to the test's output.
func testLogger(t testing.TB) *slog.Logger { return adaptertest.Logger(t) }

// fastOpts are short timeouts so that rebalances and shutdowns take
// fractions of a second against the embedded broker.
func fastOpts(log *slog.Logger) []franz.Option {
	return []franz.Option{
		franz.WithSessionTimeout(2 * time.Second),
		franz.WithHeartbeatInterval(200 * time.Millisecond),
		franz.WithRebalanceTimeout(6 * time.Second),
		franz.WithRevokeTimeout(2 * time.Second),
		franz.WithCommitInterval(100 * time.Millisecond),
		franz.WithFetchMaxWait(50 * time.Millisecond),
		franz.WithRetryBackoff(50 * time.Millisecond),
		franz.WithLogger(log),
	}
}

// stableOpts are fastOpts with a long session timeout, for single-member
// tests that count exact deliveries on a loaded machine.
func stableOpts(log *slog.Logger) []franz.Option {
	return append(fastOpts(log),
		franz.WithSessionTimeout(15*time.Second),
		franz.WithHeartbeatInterval(500*time.Millisecond),
		franz.WithRebalanceTimeout(30*time.Second))
}

// balancer selects kgo's group balancer (and so the rebalance protocol).
func balancer(name string) franz.Option {
	b := kgo.CooperativeStickyBalancer()
	if name == "range" {
		b = kgo.RangeBalancer()
	}
	return franz.WithClientOptions(kgo.Balancers(b))
}

// recorder records handled records (see adaptertest.Recorder).
type recorder struct{ *adaptertest.Recorder }

func newRecorder() recorder { return recorder{adaptertest.NewRecorder()} }

func (r recorder) add(m *kgo.Record) { r.Add(m.Partition, m.Offset, m.Value) }

// handle is a handler that records m and acks it.
func (r recorder) handle(_ context.Context, m *kgo.Record) error {
	r.add(m)
	return nil
}

// runConsumer runs cons in a goroutine and returns a function that cancels
// it and returns Run's error (bounded: a hang fails the test).
func runConsumer(t testing.TB, cons *franz.Consumer, h func(context.Context, *kgo.Record) error) (stop func() error) {
	return adaptertest.Run(t, func(ctx context.Context) error { return cons.Run(ctx, h) })
}

// clientGoroutines counts the goroutines running code of kgo, the engine
// or this adapter (not the tests' own clients: those are closed by then).
func clientGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count, first := 0, ""
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "franz-go/pkg/kgo.") ||
			strings.Contains(g, "inorder/adapters/internal/engine.") ||
			strings.Contains(g, "inorder/adapters/franz.") {
			count++
			if first == "" {
				first = g
			}
		}
	}
	return count, first
}

// checkNoLeak fails the test if, after a short retry, more client
// goroutines run than before.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	var n int
	var example string
	for range 100 {
		if n, example = clientGoroutines(); n <= before {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%d client goroutines left after Run returned, %d before; for example:\n%s", n, before, example)
}
