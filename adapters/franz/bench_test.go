package franz_test

// Benchmarks against the embedded broker, each next to the baseline it is
// compared with, in the same run:
//
//	go test -run '^$' -bench . -benchtime 10x ./adapters/franz/
//
// BenchmarkNoopHandler: 8 partitions, no-op handler: this consumer vs kgo's
// own goroutine-per-partition loop (BlockRebalanceOnPoll, AutoCommitMarks,
// MarkCommitRecords after each batch: franz-go's pattern for concurrent
// processing, one goroutine per partition, each handling its records in
// order).
// Target: >= 90%. This consumer's fetch responses start at 64 KiB and
// grow to 1 MiB (kgo's default is up to 50 MiB; kgo decodes a response
// whole before the poll hands out any of it): its handlers run while the
// next response is decoded. The second sub-benchmark gives the baseline
// 1 MiB responses too.
//
// BenchmarkSlowHandler: 1 partition, handler waits 1ms: this consumer with
// Concurrency 64 vs the sequential PollFetches -> handle -> CommitRecords
// loop (a synchronous commit after each record, as the other adapters'
// baselines). Target: >= 40x.
//
// Each iteration consumes the whole topic with a fresh group, group join
// included, once with each consumer, alternately (the machines are shared:
// both see the same load). Reported, as in the other adapters: the median
// rates (inorder-msgs/s, baseline-msgs/s) and the median of the
// per-iteration ratios (ratio); -v also prints every iteration's figures.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func benchCluster(b *testing.B, topic string, partitions int32, n int) *kafkatest.Cluster {
	c, _ := adaptertest.StartProduced(b, topic, partitions, n, 2*time.Minute, kafkatest.ValueSize(100))
	return c
}

// consumeInorder consumes n records of topic with a fresh group and returns
// how long it took from Run to the n-th handled record.
func consumeInorder(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(), opts ...franz.Option) time.Duration {
	cons := benchConsumer(b, c, "inorder", topic, opts)
	var got atomic.Int64
	done := make(chan struct{})
	return timeUntil(b, "Run", done, func(ctx context.Context) error {
		return cons.Run(ctx, func(context.Context, *kgo.Record) error {
			h()
			if got.Add(1) == int64(n) {
				close(done)
			}
			return nil
		})
	})
}

// benchConsumer is a consumer of topic in a new group named after prefix,
// with the benchmarks' options before opts.
func benchConsumer(b *testing.B, c *kafkatest.Cluster, prefix, topic string, opts []franz.Option) *franz.Consumer {
	opts = append([]franz.Option{
		franz.WithLogger(slogDiscard()),
		franz.WithFetchMaxWait(100 * time.Millisecond),
		franz.WithSessionTimeout(6 * time.Second),
		franz.WithRevokeTimeout(5 * time.Second),
	}, opts...)
	cons, err := franz.NewConsumer(c.Addrs(), adaptertest.NextGroup(prefix), []string{topic}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return cons
}

// timeUntil runs run (Run or RunBatch, named what) until done is closed,
// stops it, and returns the time from its start to done.
func timeUntil(b *testing.B, what string, done <-chan struct{}, run func(context.Context) error) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	select {
	case <-done:
	case err := <-errc:
		b.Fatalf("%s returned early: %v", what, err)
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

func baseOpts(c *kafkatest.Cluster, topic string, more ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(c.Addrs()...),
		kgo.ConsumerGroup(adaptertest.NextGroup("kgo")),
		kgo.ConsumeTopics(topic),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, more...)
}

// consumePerPartition consumes n records with kgo's goroutine-per-partition
// pattern: the poll loop hands each partition's records to its goroutine,
// which handles them and marks them for kgo's auto-commit.
func consumePerPartition(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(), more ...kgo.Opt) time.Duration {
	type worker struct {
		recs chan []*kgo.Record
		done chan struct{}
	}
	var (
		mu      sync.Mutex
		workers = map[int32]*worker{}
		got     atomic.Int64
		all     = make(chan struct{})
		cl      *kgo.Client
	)
	work := func(w *worker) {
		defer close(w.done)
		for recs := range w.recs {
			for range recs {
				h()
				if got.Add(1) == int64(n) {
					close(all)
				}
			}
			cl.MarkCommitRecords(recs...)
		}
	}
	stop := func(_ context.Context, cl *kgo.Client, revoked map[string][]int32) {
		mu.Lock()
		for _, ps := range revoked {
			for _, p := range ps {
				if w := workers[p]; w != nil {
					close(w.recs)
					<-w.done
					delete(workers, p)
				}
			}
		}
		mu.Unlock()
		_ = cl.CommitMarkedOffsets(context.Background())
	}
	start := time.Now() // kgo.NewClient starts joining the group
	cl, err := kgo.NewClient(baseOpts(c, topic, append(more,
		kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, ps := range assigned {
				for _, p := range ps {
					w := &worker{recs: make(chan []*kgo.Record, 4), done: make(chan struct{})}
					workers[p] = w
					go work(w)
				}
			}
		}),
		kgo.OnPartitionsRevoked(stop), kgo.OnPartitionsLost(stop))...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.CloseAllowingRebalance()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { // a poll waiting for records ends once everything is handled
		select {
		case <-all:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		fs := cl.PollFetches(ctx)
		select {
		case <-all:
			d := time.Since(start)
			cl.AllowRebalance()
			return d
		default:
		}
		if ctx.Err() != nil {
			b.Fatalf("timeout: %d of %d handled", got.Load(), n)
		}
		fs.EachError(func(t string, p int32, err error) { b.Logf("fetch error %s[%d]: %v", t, p, err) })
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			mu.Lock()
			w := workers[p.Partition]
			mu.Unlock()
			if w != nil && len(p.Records) > 0 {
				w.recs <- p.Records
			}
		})
		cl.AllowRebalance()
	}
}

// consumeSequential consumes n records with the sequential loop: poll,
// handle each record, commit it synchronously.
func consumeSequential(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func()) time.Duration {
	start := time.Now() // kgo.NewClient starts joining the group
	cl, err := kgo.NewClient(baseOpts(c, topic, kgo.DisableAutoCommit())...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatal("timeout")
		}
		for it := fs.RecordIter(); !it.Done() && got < n; got++ {
			r := it.Next()
			h()
			if err := cl.CommitRecords(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	return time.Since(start)
}

// pair runs inorder and baseline b.N times each, alternately (see
// adaptertest.Pairs), and reports the medians.
func pair(b *testing.B, nIn, nBase int, inorder, baseline func() time.Duration) {
	var p adaptertest.Pairs
	for range b.N {
		p.Run(nIn, nBase, inorder, baseline)
	}
	p.Report(b)
}

func BenchmarkNoopHandler(b *testing.B) {
	const (
		topic = "noop"
		n     = 200000
	)
	c := benchCluster(b, topic, 8, n)
	noop := func() {}
	b.Run("partitions=8/vs=kgo-goroutine-per-partition-marks", func(b *testing.B) {
		pair(b, n, n,
			func() time.Duration { return consumeInorder(b, c, topic, n, noop) },
			func() time.Duration { return consumePerPartition(b, c, topic, n, noop) })
	})
	// The same with the baseline's fetch responses capped as this
	// consumer's are (1 MiB, without the slow start): what is left of the
	// difference once both overlap decoding with handling alike.
	b.Run("partitions=8/vs=kgo-goroutine-per-partition-marks-1MiB-responses", func(b *testing.B) {
		pair(b, n, n,
			func() time.Duration { return consumeInorder(b, c, topic, n, noop) },
			func() time.Duration {
				return consumePerPartition(b, c, topic, n, noop, kgo.FetchMaxBytes(franz.DefaultFetchMaxBytes))
			})
	})
}

func BenchmarkSlowHandler(b *testing.B) {
	const (
		topic = "slow"
		n     = 20000 // inorder
		nSeq  = 1000  // the sequential loop
	)
	c := benchCluster(b, topic, 1, n)
	wait := func() { time.Sleep(time.Millisecond) }
	b.Run("partitions=1/concurrency=64/vs=sequential-poll-handle-commit", func(b *testing.B) {
		pair(b, n, nSeq,
			func() time.Duration { return consumeInorder(b, c, topic, n, wait, franz.WithConcurrency(64)) },
			func() time.Duration { return consumeSequential(b, c, topic, nSeq, wait) })
	})
}

// BenchmarkOrdering: ByKey against Unordered through this consumer (see
// adaptertest.BenchByKeyVsUnordered).
//
//	go test -run '^$' -bench Ordering -benchtime 5x -count 5 ./adapters/franz/
func BenchmarkOrdering(b *testing.B) {
	adaptertest.BenchByKeyVsUnordered(b, func(c *kafkatest.Cluster, topic string, n int, h func(), byKey bool) time.Duration {
		o := franz.Unordered
		if byKey {
			o = franz.ByKey
		}
		return consumeInorder(b, c, topic, n, h, franz.WithConcurrency(64), franz.WithOrdering(o))
	})
}

// consumeInorderBatch is consumeInorder with RunBatch: h gets each batch's
// length.
func consumeInorderBatch(b *testing.B, c *kafkatest.Cluster, topic string, n int, h func(int), opts ...franz.Option) time.Duration {
	cons := benchConsumer(b, c, "inorder-batch", topic, opts)
	var got atomic.Int64
	done := make(chan struct{})
	return timeUntil(b, "RunBatch", done, func(ctx context.Context) error {
		return cons.RunBatch(ctx, func(_ context.Context, recs []*kgo.Record) error {
			h(len(recs))
			if got.Add(int64(len(recs))) == int64(n) {
				close(done)
			}
			return nil
		})
	})
}

// BenchmarkBatch is RunBatch against Run through kgo and the embedded
// broker, 8 partitions, Concurrency 16: a sink-like handler (2 ms per call
// plus 10 µs per message; batches of up to 100) and a no-op one.
//
//	go test -run '^$' -bench Batch -benchtime 3x -count 3 ./adapters/franz/
func BenchmarkBatch(b *testing.B) {
	const (
		topic = "batch"
		n     = 200000
		nRun  = 2000 // Run with the sink: ~8,000 messages/s
	)
	c := benchCluster(b, topic, 8, n)
	sink := func(k int) { time.Sleep(2*time.Millisecond + time.Duration(k)*10*time.Microsecond) }
	b.Run("partitions=8/sink/RunBatch-vs-Run", func(b *testing.B) {
		pair(b, 40000, nRun,
			func() time.Duration { return consumeInorderBatch(b, c, topic, 40000, sink, franz.WithConcurrency(16)) },
			func() time.Duration {
				return consumeInorder(b, c, topic, nRun, func() { sink(1) }, franz.WithConcurrency(16))
			})
	})
	b.Run("partitions=8/noop/RunBatch-vs-Run", func(b *testing.B) {
		pair(b, n, n,
			func() time.Duration { return consumeInorderBatch(b, c, topic, n, func(int) {}) },
			func() time.Duration { return consumeInorder(b, c, topic, n, func() {}) })
	})
	// The same without the fill wait: at the end of the backlog the last,
	// partial batches wait BatchWait (10 ms) for messages that do not come,
	// as the option says; in these 0.1–0.2 s runs that end is 5–10% of
	// the time (the last 1% of the messages took 10.2–11.2 ms through
	// RunBatch, 0.09–0.24 ms through Run, 2026-12-06).
	b.Run("partitions=8/noop-batchwait=0/RunBatch-vs-Run", func(b *testing.B) {
		pair(b, n, n,
			func() time.Duration {
				return consumeInorderBatch(b, c, topic, n, func(int) {}, franz.WithBatch(100, 0))
			},
			func() time.Duration { return consumeInorder(b, c, topic, n, func() {}) })
	})
}
