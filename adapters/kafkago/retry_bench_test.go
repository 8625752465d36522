package kafkago_test

// BenchmarkRetryDeadLetter: the cost of retries and dead letters. 1
// partition, handler waits 1ms, Concurrency 64, Unordered: a run where 1%
// of the messages always fail (MaxAttempts 3, Backoff 10ms, then the
// dead-letter topic; every wait 10ms, jittered) vs the same run with no failures, alternating in the
// same process, each with a fresh group. Each run is timed from its first
// handler call (the group join excluded) until the commit point reaches
// the log end (every message acked: handled, or dead-lettered). Metrics:
// msgs/s of each, and their ratio (target >= 0.85).
//
//	go test -run '^$' -bench RetryDeadLetter -benchtime 3x ./adapters/kafkago/

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

var errBenchPoison = errors.New("poison")

// consumeToEnd consumes the n messages of topic's one partition with a
// fresh group, the handler waiting 1ms and failing the messages whose
// index (the value, before its padding) is poison, and returns the time from the first handler
// call until the commit point reached n, and the dead-lettered count.
func consumeToEnd(b *testing.B, c *kafkatest.Cluster, topic string, n int64, poison func(int) bool, opts ...kafkago.Option) (time.Duration, int64) {
	opts = append([]kafkago.Option{
		kafkago.WithLogger(slogDiscard()),
		kafkago.WithFetchMaxWait(100 * time.Millisecond),
		kafkago.WithSessionTimeout(6 * time.Second),
		kafkago.WithRevokeTimeout(5 * time.Second),
		kafkago.WithCommitInterval(100 * time.Millisecond),
		kafkago.WithConcurrency(64),
		kafkago.WithOrdering(kafkago.Unordered),
	}, opts...)
	cons, err := kafkago.NewConsumer(c.Addrs(), adaptertest.NextGroup("retry"), []string{topic}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	var (
		once  sync.Once
		start time.Time
		first = make(chan struct{})
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(ctx, func(_ context.Context, m kafka.Message) error {
			once.Do(func() { start = time.Now(); close(first) })
			time.Sleep(time.Millisecond)
			v, _, _ := bytes.Cut(m.Value, []byte{'.'}) // the index, padded with dots
			if i, err := strconv.Atoi(string(v)); err != nil || poison(i) {
				return errBenchPoison
			}
			return nil
		})
	}()
	deadline := time.After(2 * time.Minute)
	select {
	case <-first:
	case err := <-errc:
		b.Fatalf("Run returned early: %v", err)
	case <-deadline:
		b.Fatal("timeout")
	}
	var dead int64
	for done := false; !done; {
		for _, s := range cons.Stats() {
			if s.CommitPoint >= n {
				done, dead = true, s.DeadLettered
			}
		}
		if done {
			break
		}
		select {
		case err := <-errc:
			b.Fatalf("Run returned early: %v", err)
		case <-deadline:
			b.Fatal("timeout")
		case <-time.After(time.Millisecond):
		}
	}
	d := time.Since(start)
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return d, dead
}

func BenchmarkRetryDeadLetter(b *testing.B) {
	const (
		topic, dlq = "retry", "retry-dlt"
		n          = 40000
	)
	c := benchCluster(b, topic, 1, n)
	if err := c.CreateTopic(context.Background(), dlq, 1); err != nil {
		b.Fatal(err)
	}
	none := func(int) bool { return false }
	onePercent := func(i int) bool { return i%100 == 50 }
	var base, failing time.Duration
	for i := range b.N {
		run := func() {
			d, dead := consumeToEnd(b, c, topic, n, onePercent,
				kafkago.WithRetry(kafkago.Retry{MaxAttempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}),
				kafkago.WithDeadLetter(dlq))
			if dead != n/100 {
				b.Fatalf("%d dead-lettered, want %d", dead, n/100)
			}
			failing += d
		}
		if i%2 == 1 {
			run()
		}
		d, _ := consumeToEnd(b, c, topic, n, none)
		base += d
		if i%2 == 0 {
			run()
		}
	}
	baseRate := float64(n) * float64(b.N) / base.Seconds()
	failRate := float64(n) * float64(b.N) / failing.Seconds()
	b.ReportMetric(baseRate, "base-msgs/s")
	b.ReportMetric(failRate, "retry-msgs/s")
	b.ReportMetric(failRate/baseRate, "ratio")
	b.ReportMetric(0, "ns/op") // per-iteration time is not meaningful here
}
