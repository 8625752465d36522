package adaptertest

// The metrics check every adapter runs: its consumer, read by an OTel SDK
// reader, counts every message once and shows every partition committed
// to its log end.

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// MetricValues returns instrument name's values by partition id, for the
// data points whose group attribute is group.
func MetricValues(t testing.TB, r *sdkmetric.ManualReader, name, group string) map[string]int64 {
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

// CheckMetrics produces 3,000 messages to topic "m" (3 partitions) of a
// new cluster, runs the adapter's consumer through run (group "g", topic
// "m", meter provider mp, a handler that does nothing) and checks that the
// consumed counter equals each partition's log end, that the committed
// gauge reaches it, and that the partition gauges are gone once stop
// returned.
func CheckMetrics(t *testing.T, run func(t *testing.T, addrs []string, group, topic string, mp metric.MeterProvider) (stop func() error)) {
	t.Helper()
	const n = 3000
	c, ctx := StartProduced(t, "m", 3, n, 60*time.Second)
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	stop := run(t, c.Addrs(), "g", "m", mp)
	WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := CommittedAtEnd(ctx, c, "g", "m"); return ok })
	ends, err := c.LogEnd(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	// The consumer commits before the reader sees the log end in a fetch
	// response, and the broker stores a commit before the consumer reads
	// its answer: wait for the lag to reach 0 and the committed gauge the
	// log end everywhere (a gauge that never gets there fails on the
	// deadline).
	WaitFor(ctx, t, "lag 0 and committed at the log end", func() bool {
		lag := MetricValues(t, r, "inorder.partition.lag", "g")
		committed := MetricValues(t, r, "inorder.partition.committed", "g")
		for p, end := range ends {
			id := strconv.Itoa(int(p))
			if v, ok := lag[id]; !ok || v != 0 || committed[id] != end {
				return false
			}
		}
		return true
	})
	consumed := MetricValues(t, r, "messaging.client.consumed.messages", "g")
	committed := MetricValues(t, r, "inorder.partition.committed", "g")
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
	if got := MetricValues(t, r, "inorder.partition.committed", "g"); len(got) != 0 {
		t.Errorf("partition gauges after Run: %v, want none", got)
	}
}
