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
// ordering safety; fetch.queue.backoff.ms as the Consumer sets it, see
// consumePlain). Target: ratio >= 1.0 in every run.
//
// BenchmarkNoopCPU: the no-op case's CPU time per record, the whole
// process's (getrusage: less sensitive to other processes' load than the
// wall clock, but it includes the embedded broker and each run's join and
// close), for this consumer and the plain loops, in turn in every
// iteration; the goroutines of each run carry the pprof label variant=NAME,
// so that one -cpuprofile separates them (go tool pprof -tagfocus
// variant=inorder). NOOPCPU_VARIANTS picks the variants (comma-separated;
// default all): inorder; plain (as above); plain-same (the same-buffers
// row); plain-ours (the plain loop given this consumer's whole librdkafka
// configuration but offset storing and commits).
//
//	go test -run '^$' -bench NoopCPU -benchtime 8x -v ./adapters/confluent/
//
// BenchmarkSlowHandler: 1 partition, handler waits 1ms: this consumer with
// Concurrency 64 vs the sequential Poll -> handle -> CommitMessage loop.
// Target: ratio >= 40.
//
// Each iteration runs this consumer and the baseline (in turns first: see
// adaptertest.Pairs), each over the topic
// with a fresh group; the clock runs from the first message received to the
// last one handled (the group join is not counted, for either). Reported:
// the median rates (inorder-msgs/s, baseline-msgs/s) and the median of the
// per-iteration ratios (ratio), as in the other adapters; -v also prints
// every iteration's figures. Use -benchtime 5x or more: the embedded broker
// shares the machine's cores.

import (
	"context"
	"maps"
	"os"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
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
func consumePlain(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(), commitEach bool, more ...kafka.ConfigMap) time.Duration {
	cm := kafka.ConfigMap{
		"bootstrap.servers":  c.Addrs()[0],
		"group.id":           adaptertest.NextGroup("plain"),
		"auto.offset.reset":  "earliest",
		"fetch.wait.max.ms":  100,
		"session.timeout.ms": 6000,
		"log_level":          3,
		// The Consumer's own setting: with librdkafka's default (1s) this
		// loop stalled in about half its runs (a full local queue holds the
		// next fetch back a second; 0.55-0.85s runs or 1.2-1.5s ones, the
		// same CPU time), which made the ratio swing between 0.7x and 2.3x.
		"fetch.queue.backoff.ms": 50,
	}
	if commitEach {
		cm["enable.auto.commit"] = false
	}
	for _, m := range more {
		maps.Copy(cm, m)
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
		m, ok := kc.Poll(100).(*kafka.Message)
		// The deadline only when Poll came back without a message, or
		// every 1024: a clock read per message cost this loop ~4%.
		if (!ok || got&1023 == 0) && time.Now().After(deadline) {
			b.Fatal("timeout")
		}
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

func BenchmarkNoopHandler(b *testing.B) {
	const (
		topic = "noop"
		n     = 400000
	)
	c := benchCluster(b, topic, 8, n)
	noop := func() {}
	b.Run("partitions=8/inorder-vs-confluent-poll-autocommit", func(b *testing.B) {
		var p adaptertest.Pairs
		for range b.N {
			p.Run(n, n,
				func() time.Duration { return consumeInorder(b, c, topic, n, noop) },
				func() time.Duration { return consumePlain(b, c, topic, n, noop, false) })
		}
		p.Report(b)
	})
	// The same with the baseline's librdkafka buffers bounded as this
	// consumer's are by its default memory budget (64 MiB: a quarter in
	// librdkafka's queue, as fetch.max.bytes too) and its partition EOF
	// events on: what is left of the difference once both fetch alike.
	b.Run("partitions=8/inorder-vs-confluent-poll-autocommit-same-buffers", func(b *testing.B) {
		same := kafka.ConfigMap{
			"queued.max.messages.kbytes": confluent.DefaultMaxBufferedBytes / 4 / 1024,
			"fetch.max.bytes":            confluent.DefaultMaxBufferedBytes / 4,
			"enable.partition.eof":       true,
		}
		var p adaptertest.Pairs
		for range b.N {
			p.Run(n, n,
				func() time.Duration { return consumeInorder(b, c, topic, n, noop) },
				func() time.Duration { return consumePlain(b, c, topic, n, noop, false, same) })
		}
		p.Report(b)
	})
}

func BenchmarkNoopCPU(b *testing.B) {
	const (
		topic = "noopcpu"
		n     = 400000
	)
	c := benchCluster(b, topic, 8, n)
	noop := func() {}
	same := kafka.ConfigMap{
		"queued.max.messages.kbytes": confluent.DefaultMaxBufferedBytes / 4 / 1024,
		"fetch.max.bytes":            confluent.DefaultMaxBufferedBytes / 4,
		"enable.partition.eof":       true,
	}
	cons, err := confluent.NewConsumer(c.Addrs(), "unused", []string{topic})
	if err != nil {
		b.Fatal(err)
	}
	ours := cons.ConfigMap()
	for _, k := range []string{"group.id", "enable.auto.offset.store", "enable.auto.commit"} {
		delete(ours, k)
	}
	var pauses, polls atomic.Int64
	variants := map[string]func() time.Duration{
		"inorder": func() time.Duration {
			return consumeInorder(b, c, topic, n, noop,
				confluent.WithPauseHook(func(confluent.TopicPartition, bool) { pauses.Add(1) }),
				confluent.WithPollHook(func(*kafka.Consumer) { polls.Add(1) }))
		},
		"plain":      func() time.Duration { return consumePlain(b, c, topic, n, noop, false) },
		"plain-same": func() time.Duration { return consumePlain(b, c, topic, n, noop, false, same) },
		"plain-ours": func() time.Duration { return consumePlain(b, c, topic, n, noop, false, ours) },
	}
	names := []string{"inorder", "plain", "plain-same", "plain-ours"}
	if v := os.Getenv("NOOPCPU_VARIANTS"); v != "" {
		names = strings.Split(v, ",")
	}
	for _, name := range names {
		if variants[name] == nil {
			b.Fatalf("NOOPCPU_VARIANTS: no variant %q", name)
		}
	}
	b.Logf("load average at start: %s", loadavg())
	cpu, wall := map[string][]float64{}, map[string][]float64{}
	for i := range b.N {
		for j := range names {
			name := names[(i+j)%len(names)]
			var d time.Duration
			c0 := processCPU()
			pprof.Do(context.Background(), pprof.Labels("variant", name), func(context.Context) { d = variants[name]() })
			cpu[name] = append(cpu[name], float64(processCPU()-c0)/n)
			wall[name] = append(wall[name], float64(d)/n)
		}
	}
	b.Logf("load average at end: %s", loadavg())
	for _, name := range names {
		b.ReportMetric(adaptertest.Median(cpu[name]), name+"-cpu-ns/msg")
		b.ReportMetric(adaptertest.Median(wall[name]), name+"-wall-ns/msg")
		b.Logf("%s: cpu ns/msg %.0f; wall ns/msg %.0f", name, cpu[name], wall[name])
	}
	if k := len(cpu["inorder"]); k > 0 {
		// Polls per record 1.0 (not more): the loop does not spin while
		// a batch is pending.
		b.Logf("inorder: %d pauses and resumes, %.4f polls per record", pauses.Load(), float64(polls.Load())/float64(k*n))
	}
	b.ReportMetric(0, "ns/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
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
		var p adaptertest.Pairs
		for range b.N {
			p.Run(nIn, nSeq,
				func() time.Duration { return consumeInorder(b, c, topic, nIn, wait, confluent.WithConcurrency(64)) },
				func() time.Duration { return consumePlain(b, c, topic, nSeq, wait, true) })
		}
		p.Report(b)
	})
}

// BenchmarkOrdering: ByKey against Unordered through this consumer (see
// adaptertest.BenchByKeyVsUnordered).
//
//	go test -run '^$' -bench Ordering -benchtime 5x -count 5 ./adapters/confluent/
func BenchmarkOrdering(b *testing.B) {
	adaptertest.BenchByKeyVsUnordered(b, func(c *kafkatest.Cluster, topic string, n int, h func(), byKey bool) time.Duration {
		o := confluent.Unordered
		if byKey {
			o = confluent.ByKey
		}
		return consumeInorder(b, c, topic, n, h, confluent.WithConcurrency(64), confluent.WithOrdering(o))
	})
}
