package kafkago_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// metricValues returns instrument name's values by partition id, for the
// data points whose group attribute is group.
func metricValues(t *testing.T, r *sdkmetric.ManualReader, name, group string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	add := func(set attribute.Set, v int64) {
		if g, _ := set.Value("messaging.consumer.group.name"); g.AsString() != group {
			return
		}
		p, _ := set.Value("messaging.destination.partition.id")
		out[p.AsString()] += v
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes, dp.Value)
				}
			}
		}
	}
	return out
}

// Issue 13: the consumer's metrics, read by an SDK reader, count every
// message once and show every partition committed to its log end.
func TestMetricsCountEveryMessageAndCommitsAtLogEnd(t *testing.T) {
	const n = 3000
	c, ctx := adaptertest.StartProduced(t, "m", 3, n, 60*time.Second)
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	cons, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"m"},
		append(fastOpts(testLogger(t)), kafkago.WithMeterProvider(mp))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, func(context.Context, kafka.Message) error { return nil })
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "g", "m"); return ok })
	ends, err := c.LogEnd(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	// The consumer commits before the reader sees the log end in a fetch
	// response, and the broker stores a commit before the consumer reads
	// its answer: wait for the lag to reach 0 and the committed gauge the
	// log end everywhere (a gauge that never gets there fails on the
	// deadline).
	adaptertest.WaitFor(ctx, t, "lag 0 and committed at the log end", func() bool {
		lag := metricValues(t, r, "inorder.partition.lag", "g")
		committed := metricValues(t, r, "inorder.partition.committed", "g")
		for p, end := range ends {
			id := strconv.Itoa(int(p))
			if v, ok := lag[id]; !ok || v != 0 || committed[id] != end {
				return false
			}
		}
		return true
	})
	consumed := metricValues(t, r, "messaging.client.consumed.messages", "g")
	committed := metricValues(t, r, "inorder.partition.committed", "g")
	total := int64(0)
	for p, end := range ends {
		id := strconv.Itoa(int(p))
		total += consumed[id]
		if consumed[id] != end || committed[id] != end {
			t.Errorf("partition %d: consumed %d, committed %d, want both the log end %d", p, consumed[id], committed[id], end)
		}
	}
	if total != n || len(consumed) != len(ends) {
		t.Errorf("consumed %v (total %d), want %d over %d partitions", consumed, total, n, len(ends))
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := metricValues(t, r, "inorder.partition.committed", "g"); len(got) != 0 {
		t.Errorf("partition gauges after Run: %v, want none", got)
	}
}

func TestNilMeterProviderIsRefused(t *testing.T) {
	_, err := kafkago.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, kafkago.WithMeterProvider(nil))
	if !errors.Is(err, kafkago.ErrInvalidConfig) || !strings.Contains(err.Error(), "WithMeterProvider") {
		t.Fatalf("err = %v, want ErrInvalidConfig naming WithMeterProvider", err)
	}
}
