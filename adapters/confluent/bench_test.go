package confluent_test

// Benchmarks against the embedded broker, each next to the baseline it is
// compared with, in the same run:
//
//	go test -run '^$' -bench NoopHandler -benchtime 5x -count 5 ./adapters/confluent/
//	go test -run '^$' -bench SlowHandler -benchtime 5x -count 5 ./adapters/confluent/
//
// BenchmarkNoopHandler: 8 partitions, no-op handler: this consumer vs a
// plain confluent Poll loop with auto commit (enable.auto.commit and
// enable.auto.offset.store left on: how users consume today, without
// ordering safety). Target: ratio >= 1.0 in every run.
//
// BenchmarkSlowHandler: 1 partition, handler waits 1ms: this consumer with
// Concurrency 64 vs the sequential Poll -> handle -> CommitMessage loop.
// Target: ratio >= 40.
//
// Each iteration runs the baseline then this consumer, each over the topic
// with a fresh group; the clock runs from the first message received to the
// last one handled (the group join is not counted, for either). Reported:
// the median rates (inorder-msgs/s, baseline-msgs/s) and the median of the
// per-iteration ratios (ratio), as in the other adapters; -v also prints
// every iteration's figures. Use -benchtime 5x or more: the embedded broker
// shares the machine's cores.

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func benchCluster(b *testing.B, topic string, partitions int32, n int) *kafkatest.Cluster {
	c, _ := adaptertest.StartProduced(b, topic, partitions, n, 2*time.Minute, kafkatest.ValueSize(100))
	return c
}

// consumeInorder consumes n messages of topic with a fresh group and returns
// the time from the first handled message to the n-th.
func consumeInorder(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(), opts ...confluent.Option) time.Duration {
	opts = append([]confluent.Option{
		confluent.WithLogger(slogDiscard()),
		confluent.WithFetchMaxWait(100 * time.Millisecond),
		confluent.WithSessionTimeout(6 * time.Second),
		confluent.WithRebalanceTimeout(20 * time.Second),
		confluent.WithRevokeTimeout(5 * time.Second),
	}, opts...)
	cons, err := confluent.NewConsumer(c.Addrs(), adaptertest.NextGroup("inorder"), []string{topic}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	var first atomic.Int64
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(ctx, func(context.Context, *kafka.Message) error {
			if first.Load() == 0 {
				first.CompareAndSwap(0, time.Now().UnixNano())
			}
			h()
			if got.Add(1) == int64(n) {
				close(done)
			}
			return nil
		})
	}()
	select {
	case <-done:
	case err := <-errc:
		b.Fatalf("Run returned early: %v", err)
	case <-time.After(2 * time.Minute):
		b.Fatal("timeout")
	}
	d := time.Since(time.Unix(0, first.Load()))
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return d
}

// consumePlain consumes n messages with a plain confluent Poll loop. With
// commitEach, every message is committed synchronously after the handler
// (the sequential loop); otherwise librdkafka auto-commits every second.
func consumePlain(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(), commitEach bool) time.Duration {
	cm := kafka.ConfigMap{
		"bootstrap.servers":  c.Addrs()[0],
		"group.id":           adaptertest.NextGroup("plain"),
		"auto.offset.reset":  "earliest",
		"fetch.wait.max.ms":  100,
		"session.timeout.ms": 6000,
		"log_level":          3,
	}
	if commitEach {
		cm["enable.auto.commit"] = false
	}
	kc, err := kafka.NewConsumer(&cm)
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	if err := kc.SubscribeTopics([]string{topic}, nil); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	var start time.Time
	for got := 0; got < n; {
		if time.Now().After(deadline) {
			b.Fatal("timeout")
		}
		m, ok := kc.Poll(100).(*kafka.Message)
		if !ok {
			continue
		}
		if got == 0 {
			start = time.Now()
		}
		h()
		if commitEach {
			if _, err := kc.CommitMessage(m); err != nil {
				b.Fatal(err)
			}
		}
		got++
	}
	return time.Since(start)
}

// pairs collects the rates of alternating runs of this consumer and its
// baseline (one after the other in each iteration, so that the noise of a
// shared machine falls on both alike) and reports their medians and the
// median of the per-iteration ratios: a stall of the embedded broker in one
// run does not move a median.
type pairs struct {
	in, base, ratio []float64
}

func (p *pairs) add(nIn, nBase int, in, base time.Duration) {
	i, b := float64(nIn)/in.Seconds(), float64(nBase)/base.Seconds()
	p.in, p.base, p.ratio = append(p.in, i), append(p.base, b), append(p.ratio, i/b)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (p *pairs) report(b *testing.B) {
	b.ReportMetric(median(p.in), "inorder-msgs/s")
	b.ReportMetric(median(p.base), "baseline-msgs/s")
	b.ReportMetric(median(p.ratio), "ratio")
	if testing.Verbose() {
		b.Logf("per iteration: ratio %.2f, inorder-msgs/s %.0f, baseline-msgs/s %.0f",
			p.ratio, p.in, p.base)
	}
	b.ReportMetric(0, "ns/op") // per-iteration time is not meaningful here
}

func BenchmarkNoopHandler(b *testing.B) {
	const (
		topic = "noop"
		n     = 400000
	)
	c := benchCluster(b, topic, 8, n)
	noop := func() {}
	b.Run("partitions=8/inorder-vs-confluent-poll-autocommit", func(b *testing.B) {
		var p pairs
		for range b.N {
			base := consumePlain(b, c, topic, n, noop, false)
			in := consumeInorder(b, c, topic, n, noop)
			p.add(n, n, in, base)
		}
		p.report(b)
	})
}

func BenchmarkSlowHandler(b *testing.B) {
	const (
		topic = "slow"
		nIn   = 20000
		nSeq  = 1000
	)
	c := benchCluster(b, topic, 1, nIn)
	wait := func() { time.Sleep(time.Millisecond) }
	b.Run("partitions=1/wait=1ms/concurrency=64/inorder-vs-sequential-poll-handle-commit", func(b *testing.B) {
		var p pairs
		for range b.N {
			seq := consumePlain(b, c, topic, nSeq, wait, true)
			in := consumeInorder(b, c, topic, nIn, wait, confluent.WithConcurrency(64))
			p.add(nIn, nSeq, in, seq)
		}
		p.report(b)
	})
}
