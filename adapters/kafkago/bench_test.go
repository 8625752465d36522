package kafkago_test

// Benchmarks against the embedded broker, each next to the baseline it is
// compared with, in the same run:
//
//	go test -run '^$' -bench . -benchtime 3x ./adapters/kafkago/
//
// BenchmarkNoopHandler: 8 partitions, no-op handler: this consumer vs
// kafka-go's Reader with a GroupID committing every second (how users
// consume today, without ordering safety). Target: >= 90%.
//
// BenchmarkSlowHandler: 1 partition, handler waits 1ms: this consumer with
// Concurrency 64 vs the sequential FetchMessage -> handle -> CommitMessages
// loop. Target: >= 40x.
//
// Each iteration consumes the whole topic with a fresh group, group join
// included; the metric is msgs/s.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func benchCluster(b *testing.B, topic string, partitions int32, n int) *kafkatest.Cluster {
	c, _ := adaptertest.StartProduced(b, topic, partitions, n, 2*time.Minute, kafkatest.ValueSize(100))
	return c
}

// consumeInorder consumes n messages of topic with a fresh group and returns
// how long it took from Run to the n-th handled message.
func consumeInorder(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(), opts ...kafkago.Option) time.Duration {
	opts = append([]kafkago.Option{
		kafkago.WithLogger(slogDiscard()),
		kafkago.WithFetchMaxWait(100 * time.Millisecond),
		kafkago.WithSessionTimeout(6 * time.Second),
		kafkago.WithRevokeTimeout(5 * time.Second),
	}, opts...)
	cons, err := kafkago.NewConsumer(c.Addrs(), adaptertest.NextGroup("inorder"), []string{topic}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(ctx, func(context.Context, kafka.Message) error {
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
	d := time.Since(start)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return d
}

// consumeReader consumes n messages with kafka-go's Reader in a group. With
// commitEach, every message is committed synchronously after the handler
// (the sequential loop); otherwise commits go out every second.
func consumeReader(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(), commitEach bool) time.Duration {
	cfg := kafka.ReaderConfig{
		Brokers:     c.Addrs(),
		GroupID:     adaptertest.NextGroup("reader"),
		Topic:       topic,
		MinBytes:    1,
		MaxBytes:    1 << 20,
		MaxWait:     100 * time.Millisecond,
		StartOffset: kafka.FirstOffset,
	}
	if !commitEach {
		cfg.CommitInterval = time.Second
	}
	r := kafka.NewReader(cfg)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	for range n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		h()
		if err := r.CommitMessages(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

func report(b *testing.B, n int, total time.Duration) {
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op") // per-iteration time is not meaningful here
}

func BenchmarkNoopHandler(b *testing.B) {
	const (
		topic = "noop"
		n     = 200000
	)
	c := benchCluster(b, topic, 8, n)
	noop := func() {}
	b.Run("consumer=inorder/partitions=8", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			total += consumeInorder(b, c, topic, n, noop)
		}
		report(b, n, total)
	})
	b.Run("consumer=kafka-go-reader-groupid/partitions=8", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			total += consumeReader(b, c, topic, n, noop, false)
		}
		report(b, n, total)
	})
}

func BenchmarkSlowHandler(b *testing.B) {
	const topic = "slow"
	c := benchCluster(b, topic, 1, 20000)
	wait := func() { time.Sleep(time.Millisecond) }
	b.Run("consumer=inorder/concurrency=64", func(b *testing.B) {
		const n = 20000
		var total time.Duration
		for range b.N {
			total += consumeInorder(b, c, topic, n, wait, kafkago.WithConcurrency(64))
		}
		report(b, n, total)
	})
	b.Run("consumer=sequential-fetch-handle-commit", func(b *testing.B) {
		const n = 1000
		var total time.Duration
		for range b.N {
			total += consumeReader(b, c, topic, n, wait, true)
		}
		report(b, n, total)
	})
}
