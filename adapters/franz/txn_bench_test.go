package franz_test

// Exactly-once consume → produce against at-least-once, in the same run
// (issue 23):
//
//	go test -run '^$' -bench Txn -benchtime 5x ./adapters/franz/
//
// Both consumers: Concurrency 64, a handler that waits 1ms and writes one
// output per input. Exactly once: franz.Produce with WithTransactionalID
// (one transaction per 100ms commit interval). At least once: the handler
// produces the output through a shared kgo producer (idempotent, acks from
// every in-sync replica) and returns once it is acknowledged; the commit
// follows. An output counts when a read_committed reader of the output
// topic has it.
//
// BenchmarkTxnThroughput: 60,000 inputs already in 8 partitions, each
// iteration runs both consumers (fresh groups and output topics) and times
// them from Run to the last output visible: eos-msgs/s, alo-msgs/s and the
// median ratio (target >= 0.7).
//
// BenchmarkTxnLatency: inputs produced at 2,000/s for 5s while both
// consumers run (one after the other): the input's timestamp to the
// output's arrival at the reader, p50 and p99 of each.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

var txnBenchSeq atomic.Int64

// visibleReader reads topic with read_committed isolation and calls seen
// with each record as it arrives, until ctx ends.
func visibleReader(ctx context.Context, b *testing.B, c *kafkatest.Cluster, topic string, seen func(*kgo.Record, time.Time)) (wait func()) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(64<<20), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) { seen(r, now) })
		}
	}()
	return func() { <-done }
}

// runProducing runs a consumer of in (exactly once if eos) that writes one
// output per input to a fresh topic, until want outputs are visible to a
// read_committed reader, and returns how long that took from Run and each
// output's latency (its input's timestamp to the reader).
func runProducing(b *testing.B, c *kafkatest.Cluster, in string, eos bool, want int, started func()) (time.Duration, []time.Duration) {
	d, lats, _ := runProducingStats(b, c, in, eos, want, started)
	return d, lats
}

// txnStats are the commits of a run: how many, and their total and longest
// duration (in the exactly-once mode each is a transaction: produce the
// outputs, commit the offsets, end).
type txnStats struct {
	n          uint64
	total, max time.Duration
}

// runProducingStats is runProducing, with the run's commit statistics.
func runProducingStats(b *testing.B, c *kafkatest.Cluster, in string, eos bool, want int, started func()) (time.Duration, []time.Duration, txnStats) {
	i := txnBenchSeq.Add(1)
	out := fmt.Sprintf("%s-out-%d", in, i)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.CreateTopic(ctx, out, 8); err != nil {
		b.Fatal(err)
	}
	var (
		got   atomic.Int64
		lats  = make([]time.Duration, 0, want)
		all   = make(chan struct{})
		rctx  context.Context
		rstop context.CancelFunc
	)
	rctx, rstop = context.WithCancel(ctx)
	wait := visibleReader(rctx, b, c, out, func(r *kgo.Record, at time.Time) {
		ns, _ := strconv.ParseInt(string(r.Value), 10, 64)
		lats = append(lats, at.Sub(time.Unix(0, ns)))
		if got.Add(1) == int64(want) {
			close(all)
		}
	})
	defer func() { rstop(); wait() }()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	opts := []franz.Option{
		franz.WithLogger(slogDiscard()), franz.WithConcurrency(64), franz.WithMeterProvider(mp),
		franz.WithFetchMaxWait(100 * time.Millisecond), franz.WithSessionTimeout(6 * time.Second),
	}
	var h func(context.Context, *kgo.Record) error
	output := func(m *kgo.Record) *kgo.Record {
		return &kgo.Record{Topic: out, Key: m.Key, Value: strconv.AppendInt(nil, m.Timestamp.UnixNano(), 10)}
	}
	if eos {
		opts = append(opts, franz.WithTransactionalID(fmt.Sprintf("bench-%d", i)))
		h = func(ctx context.Context, m *kgo.Record) error {
			time.Sleep(time.Millisecond)
			return franz.Produce(ctx, output(m))
		}
	} else {
		prod, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
		if err != nil {
			b.Fatal(err)
		}
		defer prod.Close()
		h = func(ctx context.Context, m *kgo.Record) error {
			time.Sleep(time.Millisecond)
			return prod.ProduceSync(ctx, output(m)).FirstErr()
		}
	}
	cons, err := franz.NewConsumer(c.Addrs(), adaptertest.NextGroup("txnbench"), []string{in}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	stop := adaptertest.Run(b, func(ctx context.Context) error { return cons.Run(ctx, h) })
	if started != nil {
		for len(cons.Stats()) == 0 { // joined: the inputs from now on meet a running consumer
			if ctx.Err() != nil {
				b.Fatal("the consumer never got partitions")
			}
			time.Sleep(10 * time.Millisecond)
		}
		started()
	}
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatalf("%d of %d outputs visible", got.Load(), want)
	}
	d := time.Since(start)
	var st txnStats
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		b.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "inorder.commit.duration" {
				for _, dp := range h.DataPoints {
					st.n += dp.Count
					st.total += time.Duration(dp.Sum * float64(time.Second))
					if mx, ok := dp.Max.Value(); ok {
						st.max = max(st.max, time.Duration(mx*float64(time.Second)))
					}
				}
			}
		}
	}
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	return d, lats, st
}

func BenchmarkTxnThroughput(b *testing.B) {
	const n = 60000
	c := benchCluster(b, "txnb", 8, n)
	var p adaptertest.Pairs
	var txns txnStats
	var eosTime time.Duration
	for b.Loop() {
		p.Run(n, n,
			func() time.Duration {
				d, _, st := runProducingStats(b, c, "txnb", true, n, nil)
				txns.n, txns.total, txns.max = txns.n+st.n, txns.total+st.total, max(txns.max, st.max)
				eosTime += d
				return d
			},
			func() time.Duration { d, _ := runProducing(b, c, "txnb", false, n, nil); return d })
	}
	p.Report(b)
	// What a consumer that stops handling while each transaction commits
	// (Parallel Consumer's transactional mode) would lose: the time spent
	// in commits, as a share of the run, and the longest single pause.
	if txns.n > 0 {
		b.ReportMetric(float64(txns.total.Microseconds())/1000/float64(txns.n), "eos-txn-mean-ms")
		b.ReportMetric(float64(txns.max.Microseconds())/1000, "eos-txn-max-ms")
		b.ReportMetric(txns.total.Seconds()/eosTime.Seconds(), "eos-txn-share")
	}
}

func BenchmarkTxnLatency(b *testing.B) {
	const (
		rate = 2000
		secs = 5
		n    = rate * secs
	)
	all := map[string][]time.Duration{}
	for b.Loop() {
		for _, eos := range []bool{true, false} {
			topic := fmt.Sprintf("txnl-%d", txnBenchSeq.Add(1))
			c := kafkatest.Start(b, kafkatest.WithTopic(topic, 8))
			pace := func() {
				go func() {
					ctx := context.Background()
					t := time.NewTicker(time.Second / 100)
					defer t.Stop()
					for i := range 100 * secs {
						<-t.C
						if _, err := c.Produce(ctx, topic, rate/100, kafkatest.FirstIndex(i*rate/100)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			_, lats := runProducing(b, c, topic, eos, n, pace)
			name := "alo"
			if eos {
				name = "eos"
			}
			all[name] = append(all[name], lats...)
		}
	}
	// Over every iteration's outputs.
	for name, lats := range all {
		slices.Sort(lats)
		b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}
