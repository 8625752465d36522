package kafkago_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
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
func testLogger(t testing.TB) *slog.Logger {
	var w io.Writer = os.Stderr
	if tt, ok := t.(*testing.T); ok {
		w = tt.Output()
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

type tpo struct {
	p int
	o int64
}

// recorder records handled messages: how many times each (partition,
// offset) was handled and the values.
type recorder struct {
	mu     sync.Mutex
	seen   map[tpo]int
	values map[string]int
	total  int
}

func newRecorder() *recorder {
	return &recorder{seen: map[tpo]int{}, values: map[string]int{}}
}

func (r *recorder) add(m kafka.Message) {
	r.mu.Lock()
	r.seen[tpo{m.Partition, m.Offset}]++
	r.values[string(m.Value)]++
	r.total++
	r.mu.Unlock()
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) dups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total - len(r.seen)
}

// waitFor polls cond every 20ms until it holds or ctx ends (a hang guard,
// not a timing assertion).
func waitFor(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// committedAtEnd reports whether group's commits equal the log end offsets.
func committedAtEnd(ctx context.Context, c *kafkatest.Cluster, group, topic string) (bool, string) {
	ends, err := c.LogEnd(ctx, topic)
	if err != nil {
		return false, err.Error()
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		return false, err.Error()
	}
	for p, e := range ends {
		if com[p].Offset != e {
			return false, fmt.Sprintf("partition %d committed %d, log end %d", p, com[p].Offset, e)
		}
	}
	return true, ""
}

// runConsumer runs cons in a goroutine and returns a function that cancels
// it and returns Run's error.
func runConsumer(t testing.TB, cons *kafkago.Consumer, h func(context.Context, kafka.Message) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- cons.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				err = fmt.Errorf("Run did not return 30s after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
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
