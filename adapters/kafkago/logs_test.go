package kafkago_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// logRecord is one captured log line: level, message and attributes.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r logRecord) String() string { return fmt.Sprintf("%v %q %v", r.level, r.msg, r.attrs) }

// captureHandler keeps every record at or above min. Safe for concurrent
// use.
type captureHandler struct {
	min  slog.Level
	mu   *sync.Mutex
	recs *[]logRecord
}

func newCapture(min slog.Level) (*slog.Logger, func() []logRecord) {
	h := captureHandler{min: min, mu: new(sync.Mutex), recs: new([]logRecord)}
	return slog.New(h), func() []logRecord {
		h.mu.Lock()
		defer h.mu.Unlock()
		return append([]logRecord(nil), *h.recs...)
	}
}

func (h captureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h captureHandler) Handle(_ context.Context, r slog.Record) error {
	lr := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool { lr.attrs[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	*h.recs = append(*h.recs, lr)
	h.mu.Unlock()
	return nil
}
func (h captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h captureHandler) WithGroup(string) slog.Handler      { return h }

// Issue 9: a normal consume (join, consume, commit, a second member joins
// and leaves, shutdown) logs nothing at Warn or Error.
func TestNormalConsumeLogsNothingAtWarn(t *testing.T) {
	const n = 2000
	c, ctx := adaptertest.StartProduced(t, "quiet", 4, n, 60*time.Second)
	log, logs := newCapture(slog.LevelWarn)
	rec := newRecorder()
	h := func(_ context.Context, m kafka.Message) error { rec.add(m); return nil }
	var gens sync.Map
	member := func(name string) func() error {
		cons, err := kafkago.NewConsumer(c.Addrs(), "quiet-group", []string{"quiet"},
			append(fastOpts(log), kafkago.WithGenerationHook(func(_ string, gen int32, _ []kafkago.TopicPartition) {
				gens.Store(name, gen)
			}))...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, h)
	}
	a := member("a")
	adaptertest.WaitFor(ctx, t, "half handled", func() bool { return rec.Distinct() >= n/2 })
	b := member("b")
	adaptertest.WaitFor(ctx, t, "a and b in one generation", func() bool {
		ga, oka := gens.Load("a")
		gb, okb := gens.Load("b")
		return oka && okb && ga == gb
	})
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "quiet-group", "quiet"); return ok })
	if err := b(); err != nil {
		t.Fatal(err)
	}
	if err := a(); err != nil {
		t.Fatal(err)
	}
	for _, r := range logs() {
		t.Errorf("logged during a normal consume: %v", r)
	}
}

// Issue 9: a committed offset below the log start (deleted by retention)
// or above the log end (topic recreated) applies the start offset policy,
// logged at Warn with the partition, the commit, the log bounds and the
// policy.
func TestCommittedOffsetOutOfRangeAppliesStartPolicy(t *testing.T) {
	c := kafkatest.Start(t)
	ctx := adaptertest.Timeout(t, 90*time.Second)
	for _, tc := range []struct {
		name      string
		committed int64
		policy    kafkago.StartOffset
		want      int64
	}{
		{"below the log start, Earliest", 5, kafkago.Earliest, 20},
		{"below the log start, Latest", 5, kafkago.Latest, 40},
		{"above the log end, Earliest", 500, kafkago.Earliest, 20},
		{"above the log end, Latest", 500, kafkago.Latest, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Offsets 20..39 exist (0..19 deleted), then 40..44 come.
			topic := adaptertest.NextGroup("oor")
			if err := c.CreateTopic(ctx, topic, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Produce(ctx, topic, 40); err != nil {
				t.Fatal(err)
			}
			if err := c.Fake().DeleteRecords(topic, 0, 20); err != nil {
				t.Fatal(err)
			}
			seedCommit(ctx, t, c, topic, topic, tc.committed)
			log, logs := newCapture(slog.LevelWarn)
			cons, err := kafkago.NewConsumer(c.Addrs(), topic, []string{topic},
				append(fastOpts(log), kafkago.WithStartOffset(tc.policy))...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
			adaptertest.WaitFor(ctx, t, "partition assigned", func() bool { _, ok := partStats(cons, 0); return ok })
			if s, _ := partStats(cons, 0); s.Committed != tc.want {
				t.Fatalf("started at %d, want %d", s.Committed, tc.want)
			}
			if _, err := c.Produce(ctx, topic, 5, kafkatest.FirstIndex(40)); err != nil {
				t.Fatal(err)
			}
			adaptertest.WaitFor(ctx, t, "a commit at the log end", func() bool {
				com, err := c.Committed(ctx, topic, topic)
				return err == nil && com[0].Offset == 45
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := int64(rec.Distinct()); got != 45-tc.want {
				t.Fatalf("handled %d messages, want %d (from %d)", got, 45-tc.want, tc.want)
			}
			var found []logRecord
			for _, r := range logs() {
				if strings.Contains(r.msg, "committed offset out of range, applying the start offset policy") {
					found = append(found, r)
				} else {
					t.Errorf("unexpected log line: %v", r)
				}
			}
			want := map[string]string{"topic": topic, "partition": "0", "committed": fmt.Sprint(tc.committed),
				"log_start": "20", "log_end": "40", "policy": tc.policy.String()}
			if len(found) != 1 || found[0].level != slog.LevelWarn {
				t.Fatalf("out-of-range lines %v, want one at Warn", found)
			}
			for k, v := range want {
				if found[0].attrs[k] != v {
					t.Errorf("log attribute %s = %q, want %q (%v)", k, found[0].attrs[k], v, found[0])
				}
			}
		})
	}
}

// Issue 9: LogEnd and Lag stay fresh while a slow message holds a
// partition: with room in the window (the fetch long-polls on) and with
// the window full (the fetch waits for room).
func TestLagOfAPartitionHeldByASlowMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int
	}{{"window with room", 1000}, {"window full", 8}} {
		t.Run(tc.name, func(t *testing.T) {
			c := kafkatest.Start(t, kafkatest.WithTopic("lag", 1))
			ctx := adaptertest.Timeout(t, 60*time.Second)
			if _, err := c.Produce(ctx, "lag", 10); err != nil {
				t.Fatal(err)
			}
			release := make(chan struct{})
			var releaseOnce sync.Once
			t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
			cons, err := kafkago.NewConsumer(c.Addrs(), "lag-group", []string{"lag"},
				append(fastOpts(testLogger(t)), kafkago.WithWindow(tc.window))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error {
				if m.Offset == 0 {
					<-release
				}
				return nil
			})
			lagIs := func(logEnd int64) func() bool {
				return func() bool {
					s, ok := partStats(cons, 0)
					return ok && s.CommitPoint == 0 && s.LogEnd == logEnd && s.Lag == logEnd
				}
			}
			adaptertest.WaitFor(ctx, t, "lag 10 behind the slow message", lagIs(10))
			// New messages while held: the lag follows the log end.
			if _, err := c.Produce(ctx, "lag", 20, kafkatest.FirstIndex(10)); err != nil {
				t.Fatal(err)
			}
			adaptertest.WaitFor(ctx, t, "lag 30 behind the slow message", lagIs(30))
			releaseOnce.Do(func() { close(release) })
			adaptertest.WaitFor(ctx, t, "lag 0", func() bool {
				s, ok := partStats(cons, 0)
				return ok && s.CommitPoint == 30 && s.Lag == 0
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
