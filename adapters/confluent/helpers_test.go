package confluent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
)

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLogger logs warnings and errors to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	var w io.Writer = os.Stderr
	if tt, ok := t.(*testing.T); ok {
		w = tt.Output()
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// fastOpts are short timeouts so that rebalances and shutdowns take
// fractions of a second against the embedded broker.
func fastOpts(log *slog.Logger) []confluent.Option {
	return []confluent.Option{
		confluent.WithSessionTimeout(2 * time.Second),
		confluent.WithHeartbeatInterval(200 * time.Millisecond),
		confluent.WithRebalanceTimeout(6 * time.Second),
		confluent.WithRevokeTimeout(2 * time.Second),
		confluent.WithCommitInterval(100 * time.Millisecond),
		confluent.WithFetchMaxWait(50 * time.Millisecond),
		confluent.WithLogger(log),
	}
}

// stableOpts are fastOpts with a long session and rebalance timeout, for
// single-member tests that count exact deliveries: a loaded machine (-race,
// shared cores) must not expire the session and cause a redelivery.
func stableOpts(log *slog.Logger) []confluent.Option {
	return append(fastOpts(log),
		confluent.WithSessionTimeout(15*time.Second),
		confluent.WithHeartbeatInterval(500*time.Millisecond),
		confluent.WithRebalanceTimeout(30*time.Second))
}

// strategy returns the option that selects a partition assignment strategy
// (and so the rebalance protocol).
func strategy(s string) confluent.Option {
	return confluent.WithConfigMap(kafka.ConfigMap{"partition.assignment.strategy": s})
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

type tpo struct {
	p int32
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

func (r *recorder) add(m *kafka.Message) {
	r.mu.Lock()
	r.seen[tpo{m.TopicPartition.Partition, int64(m.TopicPartition.Offset)}]++
	r.values[string(m.Value)]++
	r.total++
	r.mu.Unlock()
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
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
// it and returns Run's error (bounded: a hang fails the test).
func runConsumer(t testing.TB, cons *confluent.Consumer, h func(context.Context, *kafka.Message) error) (stop func() error) {
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
