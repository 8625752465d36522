package kafkago_test

// Benchmarks against the embedded broker, each next to the baseline it is
// compared with, in the same run:
//
//	go test -run '^$' -bench NoopHandler -benchtime 5x -count 5 ./adapters/kafkago/
//	go test -run '^$' -bench SlowHandler -benchtime 5x -count 5 ./adapters/kafkago/
//
// BenchmarkNoopHandler: 8 partitions, no-op handler: this consumer vs
// kafka-go's Reader with a GroupID committing every second (how users
// consume today, without ordering safety). Target: ratio >= 1.5 in every
// run.
//
// BenchmarkSlowHandler: 1 partition, handler waits 1ms: this consumer with
// Concurrency 64 vs the sequential FetchMessage -> handle -> CommitMessages
// loop. Target: ratio >= 40.
//
// Each iteration runs this consumer and the baseline one after the other
// (this consumer first in even iterations, the baseline first in odd ones),
// each over the topic with a fresh group, so that the noise of the shared
// machine falls on both alike. The clock runs from the start (Run, or
// NewReader, which starts joining) to the n-th handled message: the group
// join is counted for both (both join with kafka-go's ConsumerGroup; the
// Reader's first message comes some 5 ms after NewReader on the embedded
// broker), the leave and final commit for neither. Starting the clock at the
// first handler call instead would favour this consumer: by then its fetch
// loops have often buffered 10,000 to 120,000 of the 400,000 messages in its
// window, where the Reader's queue holds 100. Reported: the median rates
// (inorder-msgs/s, baseline-msgs/s) and the median of the per-iteration
// ratios (ratio); -v also prints every iteration's figures. Use -benchtime
// 5x or more: the embedded broker shares the machine's cores.

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
// the time from Run to the n-th handled message.
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
	errc := make(chan error, 1)
	start := time.Now()
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

// consumeReader consumes n messages with kafka-go's Reader in a group and
// returns the time from NewReader to the n-th handled message. With commitEach, every message is committed synchronously after
// the handler (the sequential loop); otherwise CommitMessages queues the
// offsets and kafka-go commits them every second.
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
	start := time.Now() // NewReader starts joining the group
	r := kafka.NewReader(cfg)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
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

func BenchmarkNoopHandler(b *testing.B) {
	const (
		topic = "noop"
		n     = 400000
	)
	c := benchCluster(b, topic, 8, n)
	noop := func() {}
	b.Run("partitions=8/vs=kafka-go-reader-groupid", func(b *testing.B) {
		var p adaptertest.Pairs
		for range b.N {
			p.Run(n, n,
				func() time.Duration { return consumeInorder(b, c, topic, n, noop) },
				func() time.Duration { return consumeReader(b, c, topic, n, noop, false) })
		}
		p.Report(b)
	})
}

func BenchmarkSlowHandler(b *testing.B) {
	const (
		topic = "slow"
		nIn   = 20000 // inorder
		nSeq  = 1000  // the sequential loop
	)
	c := benchCluster(b, topic, 1, nIn)
	wait := func() { time.Sleep(time.Millisecond) }
	b.Run("partitions=1/wait=1ms/concurrency=64/vs=sequential-fetch-handle-commit", func(b *testing.B) {
		var p adaptertest.Pairs
		for range b.N {
			p.Run(nIn, nSeq,
				func() time.Duration {
					return consumeInorder(b, c, topic, nIn, wait, kafkago.WithConcurrency(64))
				},
				func() time.Duration { return consumeReader(b, c, topic, nSeq, wait, true) })
		}
		p.Report(b)
	})
}

// BenchmarkOrdering: ByKey against Unordered through this consumer (see
// adaptertest.BenchByKeyVsUnordered).
//
//	go test -run '^$' -bench Ordering -benchtime 5x -count 5 ./adapters/kafkago/
func BenchmarkOrdering(b *testing.B) {
	adaptertest.BenchByKeyVsUnordered(b, func(c *kafkatest.Cluster, topic string, n int, h func(), byKey bool) time.Duration {
		o := kafkago.Unordered
		if byKey {
			o = kafkago.ByKey
		}
		return consumeInorder(b, c, topic, n, h, kafkago.WithConcurrency(64), kafkago.WithOrdering(o))
	})
}
