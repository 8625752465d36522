package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// reading is one collection of a manual reader.
type reading struct{ rm metricdata.ResourceMetrics }

func collect(t testing.TB, r *sdkmetric.ManualReader) reading {
	t.Helper()
	var rd reading
	if err := r.Collect(context.Background(), &rd.rm); err != nil {
		t.Fatal(err)
	}
	return rd
}

// value returns the sum of the data points of instrument name whose
// attributes include every key/value pair of kv (a histogram counts its
// measurements), and whether any matched.
func (rd reading) value(name string, kv ...string) (float64, bool) {
	match := func(set attribute.Set) bool {
		for i := 0; i+1 < len(kv); i += 2 {
			v, ok := set.Value(attribute.Key(kv[i]))
			if !ok || v.String() != kv[i+1] {
				return false
			}
		}
		return true
	}
	var sum float64
	found := false
	for _, sm := range rd.rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if match(dp.Attributes) {
						sum, found = sum+float64(dp.Value), true
					}
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					if match(dp.Attributes) {
						sum, found = sum+float64(dp.Value), true
					}
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					if match(dp.Attributes) {
						sum, found = sum+dp.Value, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					if match(dp.Attributes) {
						sum, found = sum+float64(dp.Count), true
					}
				}
			}
		}
	}
	return sum, found
}

// expect fails unless instrument name (filtered by kv) reads want.
func (rd reading) expect(t *testing.T, want float64, name string, kv ...string) {
	t.Helper()
	got, ok := rd.value(name, kv...)
	if !ok {
		t.Errorf("%s%v: not reported, want %v", name, kv, want)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, kv, got, want)
	}
}

// absent fails if instrument name (filtered by kv) is reported.
func (rd reading) absent(t *testing.T, name string, kv ...string) {
	t.Helper()
	if got, ok := rd.value(name, kv...); ok {
		t.Errorf("%s%v = %v, want not reported", name, kv, got)
	}
}

func sdkProvider(t testing.TB) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return r, mp
}

const pid = "messaging.destination.partition.id"

func TestMetricsFollowTheEngine(t *testing.T) {
	r, mp := sdkProvider(t)
	c := cfg().ForGroup("g")
	c.MeterProvider = mp
	release := make(chan struct{})
	errBoom := errors.New("boom")
	e := engine.New(c, func(_ context.Context, o int64) error {
		switch o {
		case 3:
			<-release
		case 5:
			return errBoom
		}
		return nil
	}, nil)

	e.Start(context.Background())
	defer e.Stop()
	fb := &fakeBroker{}
	var failAll atomic.Bool
	s := e.NewSession(func(ctx context.Context, offs []engine.Offset) ([]error, error) {
		if failAll.Load() {
			return nil, errors.New("coordinator not available")
		}
		return fb.commit(ctx, offs)
	})
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for o := range int64(10) {
		if err := s.Deliver(ctx, p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return e.Handled() == 9 })
	p.SetLogEnd(10)
	if err := s.CommitNow(ctx); err != nil {
		t.Fatal(err)
	}

	rd := collect(t, r)
	// Offset 3 is running: delivered to the application, so consumed.
	rd.expect(t, 10, engine.MetricConsumed, pid, "0", "messaging.consumer.group.name", "g",
		"messaging.destination.name", "t", "messaging.system", "kafka")
	rd.expect(t, 3, engine.MetricCommitPoint, pid, "0")
	rd.expect(t, 3, engine.MetricCommitted, pid, "0")
	rd.expect(t, 7, engine.MetricLag, pid, "0")
	rd.expect(t, 1, engine.MetricPending, pid, "0")
	rd.expect(t, 1, engine.MetricHandlerErrors, pid, "0")
	rd.expect(t, 1, engine.MetricCommits, pid, "0")
	rd.expect(t, 0, engine.MetricPaused, pid, "0")
	rd.expect(t, 1, engine.MetricRebalancePartitions, "inorder.rebalance.event", "assigned")
	rd.expect(t, 0, engine.MetricRetries, pid, "0")
	rd.expect(t, 0, engine.MetricDeadLettered, pid, "0")
	if got := fb.all(); len(got) != 1 || got[0].Metadata == "" {
		t.Fatalf("commits %+v, want one at 3 with metadata", got)
	} else {
		rd.expect(t, float64(len(got[0].Metadata)), engine.MetricMetadataSize, pid, "0")
	}
	// The slow handler shows as the age of the oldest pending message.
	waitUntil(t, func() bool {
		v, _ := collect(t, r).value(engine.MetricOldestPendingAge, pid, "0")
		return v > 0
	})

	close(release)
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	if err := s.CommitNow(ctx); err != nil {
		t.Fatal(err)
	}
	rd = collect(t, r)
	rd.expect(t, 10, engine.MetricConsumed, pid, "0")
	rd.expect(t, 10, engine.MetricCommitPoint, pid, "0")
	rd.expect(t, 10, engine.MetricCommitted, pid, "0")
	rd.expect(t, 0, engine.MetricLag, pid, "0")
	rd.expect(t, 0, engine.MetricPending, pid, "0")
	rd.expect(t, 0, engine.MetricOldestPendingAge, pid, "0")
	rd.expect(t, 10, engine.MetricProcessDuration, pid, "0") // every call
	rd.expect(t, 2, engine.MetricCommits, pid, "0")
	rd.expect(t, 2, engine.MetricCommitDuration)
	rd.absent(t, engine.MetricCommitErrors)

	// A refused partition, then a failed request: two commit errors.
	fb.refuse = errors.New("illegal generation")
	if err := s.Deliver(ctx, p, 10, 10); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	if err := s.CommitNow(ctx); err == nil {
		t.Fatal("refused commit: no error")
	}
	fb.refuse = nil
	failAll.Store(true)
	if err := s.CommitNow(ctx); err == nil {
		t.Fatal("failed commit request: no error")
	}
	failAll.Store(false)
	rd = collect(t, r)
	rd.expect(t, 2, engine.MetricCommitErrors, pid, "0")
	rd.expect(t, 1, engine.MetricCommitDuration, "error.type", "_OTHER")
	rd.expect(t, 2, engine.MetricCommits, pid, "0")
	rd.expect(t, 10, engine.MetricCommitted, pid, "0")
	rd.expect(t, 11, engine.MetricCommitPoint, pid, "0")

	// Revoke: gauges stop, counters stay.
	s.Revoke(ctx, tp)
	rd = collect(t, r)
	rd.absent(t, engine.MetricCommitPoint)
	rd.absent(t, engine.MetricLag)
	rd.expect(t, 11, engine.MetricConsumed, pid, "0")
	rd.expect(t, 3, engine.MetricCommits, pid, "0")
	rd.expect(t, 1, engine.MetricHandlerErrors, pid, "0")
	rd.expect(t, 1, engine.MetricRebalancePartitions, "inorder.rebalance.event", "revoked")
	s.Close(ctx)
	// A stopped engine reports no more partition instruments.
	e.Stop()
	collect(t, r).absent(t, engine.MetricConsumed)
}

func TestMetricsCountPausesRestoresAndLosses(t *testing.T) {
	r, mp := sdkProvider(t)
	c := cfg()
	c.MeterProvider = mp
	c.Window = 4
	block := make(chan struct{})
	defer close(block)
	var first atomic.Bool
	e := engine.New(c, func(_ context.Context, o int64) error {
		if o == 0 && !first.Swap(true) {
			<-block
		}
		return nil
	}, nil)

	e.Start(context.Background())
	defer func() { go e.Stop() }() // the blocked handler would hold Stop
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	defer s.Close(context.Background())
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	// Offset 4 does not fit the window of 4: it waits in the backlog and
	// the partition is paused.
	if _, err := s.Offer(p, []int64{0, 1, 2, 3, 4}, []int64{0, 1, 2, 3, 4}, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return p.Watermark().Pending() == 1 })
	rd := collect(t, r)
	rd.expect(t, 1, engine.MetricPaused, pid, "0")
	rd.expect(t, 4, engine.MetricConsumed, pid, "0")
	rd.absent(t, engine.MetricLag) // log end unknown
	if err := s.CommitNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	meta := fb.all()[0].Metadata // done: 1, 2, 3

	// Lost, then assigned again from that commit: 1..3 are restored.
	s.Lose(tp)
	s2 := e.NewSession(fb.commit)
	defer s2.Close(context.Background())
	p2, err := s2.Assign(tp, 0, meta, -1)
	if err != nil {
		t.Fatal(err)
	}
	for o := range int64(4) {
		if err := s2.TryDeliver(p2, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return p2.Watermark().Pending() == 0 })
	rd = collect(t, r)
	rd.expect(t, 3, engine.MetricRestored, pid, "0")
	rd.expect(t, 5, engine.MetricConsumed, pid, "0") // 0..3, then 0 again
	rd.expect(t, 0, engine.MetricPaused, pid, "0")
	rd.expect(t, 1, engine.MetricRebalancePartitions, "inorder.rebalance.event", "lost")
	rd.expect(t, 2, engine.MetricRebalancePartitions, "inorder.rebalance.event", "assigned")
	rd.absent(t, engine.MetricConsumed, "messaging.consumer.group.name", "") // no group given: no attribute
}

func TestProcessDurationRecordsEveryCall(t *testing.T) {
	r, mp := sdkProvider(t)
	c := cfg()
	c.MeterProvider = mp
	c.Concurrency = 1 // handler calls in offset order: call n is offset n-1
	const n = 2*128 + 3
	e := engine.New(c, func(_ context.Context, o int64) error {
		if o == 128 {
			return errors.New("boom")
		}
		return nil
	}, nil)

	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	for o := range int64(n) {
		if err := s.Deliver(context.Background(), p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	rd := collect(t, r)
	rd.expect(t, n, engine.MetricConsumed, pid, "0")
	rd.expect(t, n, engine.MetricProcessDuration, pid, "0", "messaging.operation.name", "process")
	rd.expect(t, 1, engine.MetricProcessDuration, pid, "0", "error.type", "*errors.errorString")
	rd.expect(t, 1, engine.MetricHandlerErrors, pid, "0")
}

func TestNilMeterProviderIsRefusedByName(t *testing.T) {
	o, err := engine.NewOptions(&mine{}, []engine.Option{engine.WithMeterProvider(nil)})
	if err != nil {
		t.Fatal(err)
	}
	err = o.Validate()
	if !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), "WithMeterProvider") {
		t.Fatalf("err = %v, want ErrConfig naming WithMeterProvider", err)
	}
}

// hotPath is an engine with one partition and a no-op handler.
type hotPath struct {
	e    *engine.Engine[int64]
	s    *engine.Session[int64]
	p    *engine.Part
	next int64
}

func newHotPath(b *testing.B, c engine.Config) *hotPath {
	e := engine.New(c, func(context.Context, int64) error { return nil }, nil)
	e.Start(context.Background())
	s := e.NewSession(func(context.Context, []engine.Offset) ([]error, error) { return nil, nil })
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Close(context.Background())
		e.Stop()
	})
	return &hotPath{e: e, s: s, p: p}
}

// run delivers n messages and waits until all are handled.
func (h *hotPath) run(b *testing.B, n int) {
	ctx := context.Background()
	for range n {
		if err := h.s.Deliver(ctx, h.p, h.next, h.next); err != nil {
			b.Fatal(err)
		}
		h.next++
	}
	if err := h.p.Watermark().Drain(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHotPath runs a no-op handler through the engine (Deliver, a
// worker, Ack) with the default (global, no-op) meter provider and with an
// SDK provider whose manual reader collects every instrument, in
// alternating rounds of the same run (the machine is shared: alternating
// spreads its noise over both). It reports wall and CPU ns per message of
// each and their ratios.
func BenchmarkHotPath(b *testing.B) {
	const round = 4096
	def := newHotPath(b, cfg())
	c := cfg()
	_, c.MeterProvider = sdkProvider(b)
	sdk := newHotPath(b, c)
	def.run(b, round) // warm up both
	sdk.run(b, round)
	// Wall time and CPU time (which other processes do not inflate) of
	// each, for default (0) and sdk (1).
	var wall, cpu [2]time.Duration
	hp := [2]*hotPath{def, sdk}
	b.ReportAllocs()
	b.ResetTimer()
	for i, done := 0, 0; done < b.N; i, done = i+1, done+round {
		n := min(round, b.N-done)
		for k := range 2 {
			j := (i + k) % 2 // alternate which goes first
			t0, c0 := time.Now(), cpuTime()
			hp[j].run(b, n)
			wall[j] += time.Since(t0)
			cpu[j] += cpuTime() - c0
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(wall[0]), "default-ns/msg")
	b.ReportMetric(per(wall[1]), "sdk-ns/msg")
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "sdk/default")
	if cpu[0] > 0 {
		b.ReportMetric(per(cpu[0]), "default-cpu-ns/msg")
		b.ReportMetric(per(cpu[1]), "sdk-cpu-ns/msg")
		b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "sdk/default-cpu")
	}
}

// BenchmarkSampledCall is what a sampled handler call adds with an SDK
// provider (Enabled, two clock reads, Record with the partition's
// attributes), beside the clock reads alone: BenchmarkHotPath's sdk/default
// ratio should be about 1 + this/(default ns per message).
func BenchmarkSampledCall(b *testing.B) {
	_, mp := sdkProvider(b)
	h, err := mp.Meter("bench").Float64Histogram(engine.MetricProcessDuration)
	if err != nil {
		b.Fatal(err)
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.consumer.group.name", "g"),
		attribute.String("messaging.destination.name", "t"),
		attribute.String(pid, "0"),
		attribute.String("messaging.operation.name", "process")))}
	ctx := context.Background()
	b.Run("what=clock", func(b *testing.B) {
		var d time.Duration
		for range b.N {
			t0 := time.Now()
			d += time.Since(t0)
		}
		_ = d
	})
	b.Run("what=clock+record", func(b *testing.B) {
		for range b.N {
			if h.Enabled(ctx) {
				t0 := time.Now()
				h.Record(ctx, time.Since(t0).Seconds(), opts...)
			}
		}
	})
}
