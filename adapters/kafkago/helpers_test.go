package kafkago_test

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// fastOpts are short timeouts so that rebalances and shutdowns take
// fractions of a second against the embedded broker.
func fastOpts(log *slog.Logger) []kafkago.Option {
	return []kafkago.Option{
		kafkago.WithSessionTimeout(1500 * time.Millisecond),
		kafkago.WithHeartbeatInterval(200 * time.Millisecond),
		kafkago.WithRebalanceTimeout(4 * time.Second),
		kafkago.WithRevokeTimeout(2 * time.Second),
		kafkago.WithCommitInterval(100 * time.Millisecond),
		kafkago.WithFetchMaxWait(100 * time.Millisecond),
		kafkago.WithRetryBackoff(50 * time.Millisecond),
		kafkago.WithLogger(log),
	}
}

// testLogger logs warnings and errors to the test's output.
func testLogger(t testing.TB) *slog.Logger { return adaptertest.Logger(t) }

// recorder records handled messages (see adaptertest.Recorder).
type recorder struct{ *adaptertest.Recorder }

func newRecorder() recorder { return recorder{adaptertest.NewRecorder()} }

func (r recorder) add(m kafka.Message) { r.Add(int32(m.Partition), m.Offset, m.Value) }

// runConsumer runs cons in a goroutine and returns a function that cancels
// it and returns Run's error.
func runConsumer(t testing.TB, cons *kafkago.Consumer, h func(context.Context, kafka.Message) error) (stop func() error) {
	return adaptertest.Run(t, func(ctx context.Context) error { return cons.Run(ctx, h) })
}

// clientGoroutines counts the goroutines running code of kafka-go, the
// engine or this adapter (not the tests, not the broker).
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
		if strings.Contains(g, "github.com/segmentio/kafka-go") ||
			strings.Contains(g, "inorder/adapters/internal/engine.") ||
			strings.Contains(g, "inorder/adapters/kafkago.") {
			count++
			if first == "" {
				first = g
			}
		}
	}
	return count, first
}

// checkNoLeak fails the test if, after a short retry (goroutines of closed
// connections exit asynchronously), more client goroutines run than before.
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
