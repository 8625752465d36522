package adaptertest

// The checks of issue 21 every adapter runs: mistakes explained once,
// loudly, then quietly (an unreachable broker, a subscribed topic that does
// not exist, a Run that never joined), and the same Info story in every
// adapter (one line per assignment and revocation, one per dead letter,
// nothing from the client library), with the user's error type named in
// the dead-letter header and the metrics.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/inorder/inorder/internal/kafkatest"
)

// MistakeConfig is the consumer a mistake check asks the adapter for.
type MistakeConfig struct {
	Brokers []string
	Group   string
	Topics  []string
	// Logger gets every line, Debug included.
	Logger *slog.Logger
	// RequestTimeout is the adapter's WithRequestTimeout.
	RequestTimeout time.Duration
	// DeadLetterTopic, when set, is the adapter's WithDeadLetterTopic.
	DeadLetterTopic string
	// MeterProvider, when set, is the adapter's WithMeterProvider.
	MeterProvider metric.MeterProvider
	// Handle is the handler, given each message's partition, offset and
	// value; nil handles everything.
	Handle func(ctx context.Context, p int32, o int64, value []byte) error
}

// StartMistake starts the adapter's consumer as cfg says (with its short
// test timeouts otherwise) and returns Run's stop (see Run).
type StartMistake func(t *testing.T, cfg MistakeConfig) (stop func() error)

// LogBuffer is a slog handler's text output, safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// NewLogBuffer returns a logger of every level writing to a new LogBuffer.
func NewLogBuffer() (*slog.Logger, *LogBuffer) {
	b := &LogBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// Write appends p (one or more log lines).
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Lines returns the lines at level or above (slog's text levels: "DEBUG",
// "INFO", "WARN", "ERROR") that contain every one of subs.
func (l *LogBuffer) Lines(level slog.Level, subs ...string) []string {
	l.mu.Lock()
	text := l.b.String()
	l.mu.Unlock()
	var out []string
	for ln := range strings.SplitSeq(text, "\n") {
		lv, ok := lineLevel(ln)
		if !ok || lv < level {
			continue
		}
		for _, s := range subs {
			ok = ok && strings.Contains(ln, s)
		}
		if ok {
			out = append(out, ln)
		}
	}
	return out
}

func lineLevel(ln string) (slog.Level, bool) {
	i := strings.Index(ln, " level=")
	if i < 0 {
		return 0, false
	}
	f, _, _ := strings.Cut(ln[i+len(" level="):], " ")
	var lv slog.Level
	if lv.UnmarshalText([]byte(f)) != nil {
		return 0, false
	}
	return lv, true
}

// ClosedPort returns the address of a 127.0.0.1 port nothing listens on
// (one just closed).
func ClosedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// CheckUnreachableBroker runs a consumer against a closed port with a 1s
// RequestTimeout for 4s, then stops it: the log must hold one Warn naming
// the address and saying it cannot connect, and at most 2 lines at Warn or
// above in all (not one per retry); Run must return an error wrapping
// neverJoined (the adapter's ErrNeverJoined).
func CheckUnreachableBroker(t *testing.T, start StartMistake, neverJoined error) {
	addr := ClosedPort(t)
	log, buf := NewLogBuffer()
	stop := start(t, MistakeConfig{Brokers: []string{addr}, Group: NextGroup("unreachable"),
		Topics: []string{"orders"}, Logger: log, RequestTimeout: time.Second})
	time.Sleep(4 * time.Second)
	err := stop()
	if !errors.Is(err, neverJoined) {
		t.Errorf("Run = %v, want an error wrapping %v", err, neverJoined)
	}
	warns := buf.Lines(slog.LevelWarn)
	named := buf.Lines(slog.LevelWarn, "cannot connect", addr)
	if len(named) != 1 || len(warns) > 2 {
		t.Errorf("%d Warn lines naming %s and saying it cannot connect (want 1), %d at Warn or above (want at most 2):\n%s",
			len(named), addr, len(warns), strings.Join(warns, "\n"))
	}
}

// CheckMissingTopic runs a consumer of "present" (one partition) and
// "absent" (which the cluster does not have, nor creates) for 4s: the log
// must hold exactly one Warn naming "absent" as a topic that does not
// exist, no other line at Warn or above naming it; Run, which joined, must
// return nil.
func CheckMissingTopic(t *testing.T, start StartMistake) {
	c := kafkatest.Start(t, kafkatest.WithTopic("present", 1))
	log, buf := NewLogBuffer()
	stop := start(t, MistakeConfig{Brokers: c.Addrs(), Group: NextGroup("missing"),
		Topics: []string{"present", "absent"}, Logger: log, RequestTimeout: 2 * time.Second})
	ctx := Timeout(t, 30*time.Second)
	WaitFor(ctx, t, "the assignment of present", func() bool {
		return len(buf.Lines(slog.LevelInfo, "partitions assigned", "present[0]")) > 0
	})
	time.Sleep(4 * time.Second)
	if err := stop(); err != nil {
		t.Errorf("Run = %v, want nil (it joined)", err)
	}
	named := buf.Lines(slog.LevelWarn, "absent")
	want := buf.Lines(slog.LevelWarn, "topic does not exist", "topic=absent")
	if len(want) != 1 || len(named) != 1 {
		t.Errorf("%d Warn lines saying topic absent does not exist (want 1), %d at Warn or above naming it (want 1):\n%s",
			len(want), len(named), strings.Join(named, "\n"))
	}
}

// RejectedError is the user's error type the Info-story check's handler
// returns, wrapped in the adapter's Permanent.
type RejectedError struct{ Reason string }

// Error returns "rejected: " and the reason.
func (e *RejectedError) Error() string { return "rejected: " + e.Reason }

// CheckInfoStory consumes 20 messages of "orders" (2 partitions) with a
// dead-letter topic, the first message of partition 0 failing with
// permanent(&RejectedError{}) (permanent is the adapter's Permanent), and
// stops. At Info and above the log must hold exactly: one line naming the
// assignment "orders[0 1]", one line for the dead letter (topic, partition,
// offset, error, error type), one line naming the revocation
// "orders[0 1]", and nothing else (no client-library chatter). The
// dead-letter record's kafka_dlt-exception-fqcn must be
// "*adaptertest.RejectedError", the duration histogram's error.type too,
// and inorder.messages.finished must count the 20 messages.
func CheckInfoStory(t *testing.T, start StartMistake, permanent func(error) error) {
	const n, src, dlt = 20, "orders", "orders-dlt"
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 2), kafkatest.WithTopic(dlt, 2))
	ctx := Timeout(t, 60*time.Second)
	if _, err := c.Produce(ctx, src, n); err != nil {
		t.Fatal(err)
	}
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	log, buf := NewLogBuffer()
	group := NextGroup("story")
	stop := start(t, MistakeConfig{Brokers: c.Addrs(), Group: group, Topics: []string{src}, Logger: log,
		RequestTimeout: 5 * time.Second, DeadLetterTopic: dlt, MeterProvider: mp,
		Handle: func(_ context.Context, p int32, o int64, _ []byte) error {
			if p == 0 && o == 0 {
				return permanent(&RejectedError{"no stock"})
			}
			return nil
		}})
	WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := CommittedAtEnd(ctx, c, group, src); return ok })
	finished := MetricValues(t, r, "inorder.messages.finished", group)
	errType := errorTypes(t, r, "messaging.process.duration")
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if finished["0"]+finished["1"] != n {
		t.Errorf("inorder.messages.finished %v, want %d in all", finished, n)
	}
	if !errType["*adaptertest.RejectedError"] || errType["_OTHER"] {
		t.Errorf("error.type values %v, want *adaptertest.RejectedError and no _OTHER", errType)
	}
	recs, err := c.ReadN(ctx, dlt, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range recs[0].Headers {
		if h.Key == "kafka_dlt-exception-fqcn" && string(h.Value) != "*adaptertest.RejectedError" {
			t.Errorf("%s = %q, want *adaptertest.RejectedError", h.Key, h.Value)
		}
	}
	info := buf.Lines(slog.LevelInfo)
	assigned := buf.Lines(slog.LevelInfo, "partitions assigned", `"orders[0 1]"`)
	revoked := buf.Lines(slog.LevelInfo, "partitions revoked", `"orders[0 1]"`)
	dead := buf.Lines(slog.LevelInfo, "dead-lettered", "topic=orders", "partition=0", "offset=0",
		`error="rejected: no stock"`, "*adaptertest.RejectedError")
	if len(assigned) != 1 || len(revoked) != 1 || len(dead) != 1 || len(info) != 3 {
		t.Errorf("at Info and above: %d assignment lines, %d revocation lines, %d dead-letter lines (want 1 each), %d in all (want 3):\n%s",
			len(assigned), len(revoked), len(dead), len(info), strings.Join(info, "\n"))
	}
}

// errorTypes returns the error.type values of instrument name's points.
func errorTypes(t testing.TB, r *sdkmetric.ManualReader, name string) map[string]bool {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					if v, ok := dp.Attributes.Value("error.type"); ok {
						out[v.AsString()] = true
					}
				}
			}
		}
	}
	return out
}
