package confluent_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func slogDiscard() *slog.Logger { return adaptertest.DiscardLogger() }

// testLogger logs warnings and errors to the test's output.
func testLogger(t testing.TB) *slog.Logger { return adaptertest.Logger(t) }

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

// recorder records handled messages (see adaptertest.Recorder).
type recorder struct{ *adaptertest.Recorder }

func newRecorder() recorder { return recorder{adaptertest.NewRecorder()} }

func (r recorder) add(m *kafka.Message) {
	r.Add(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value)
}

// handle is a handler that records m and acks it.
func (r recorder) handle(_ context.Context, m *kafka.Message) error {
	r.add(m)
	return nil
}

// runConsumer runs cons in a goroutine and returns a function that cancels
// it and returns Run's error (bounded: a hang fails the test).
func runConsumer(t testing.TB, cons *confluent.Consumer, h func(context.Context, *kafka.Message) error) (stop func() error) {
	return adaptertest.Run(t, func(ctx context.Context) error { return cons.Run(ctx, h) })
}

// logRecord is one line a captureHandler saw.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

// captureHandler is a slog.Handler that records every line (at any level).
// Safe for concurrent use.
type captureHandler struct {
	mu    *sync.Mutex
	recs  *[]logRecord
	attrs []slog.Attr
}

func newCapture() *captureHandler {
	return &captureHandler{mu: new(sync.Mutex), recs: new([]logRecord)}
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{mu: h.mu, recs: h.recs, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// records returns the lines seen so far that match keep.
func (h *captureHandler) records(keep func(logRecord) bool) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range *h.recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// commitAt sets group's committed offset of topic's partition p to off, as
// a client outside the group would (the group must have no members).
func commitAt(t testing.TB, addrs []string, group, topic string, p int32, off int64) {
	t.Helper()
	kc, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": strings.Join(addrs, ","), "group.id": group,
		"enable.auto.commit": false, "log_level": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	res, err := kc.CommitOffsets([]kafka.TopicPartition{{Topic: &topic, Partition: p, Offset: kafka.Offset(off)}})
	if err == nil && len(res) == 1 && res[0].Error != nil {
		err = res[0].Error
	}
	if err != nil {
		t.Fatalf("commit %s[%d] at %d: %v", topic, p, off, err)
	}
}

// handleAll runs cons with a handler that records every message, until all
// n are handled and the group's commits are at the log end of topic, then
// stops it; Run must return nil.
func handleAll(ctx context.Context, t *testing.T, c *kafkatest.Cluster, cons *confluent.Consumer, group, topic string, n int) {
	t.Helper()
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
