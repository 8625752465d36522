package engine_test

// The shape of the franz no-op benchmark without a broker: one fetching
// goroutine hands each partition's fetched runs of messages to the engine
// (Offer, round-robin over the partitions), and a no-op handler
// counts them. Beside it, alternating in rounds in the same process, the
// baseline the franz benchmark compares with: one goroutine per partition
// receiving its runs through a channel and handling them in order (kgo's
// goroutine-per-partition loop, without the broker). The ratio is the
// engine's messages/s over the baseline's; 1 is parity. engine-ns/msg is
// the engine's wall time per message; engine-cpu-ns/msg the CPU time the
// process spent per message meanwhile (both cores, setup included), which
// other processes on a shared machine inflate less.
//
//	go test -run '^$' -bench OneFetcher -count 5 ./adapters/internal/engine/

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

func BenchmarkOneFetcher(b *testing.B) {
	const (
		parts  = 8
		run    = 256
		total  = 200_000
		rounds = 8
	)
	for _, workers := range []int{engine.DefaultConcurrency, parts} {
		b.Run(fmt.Sprintf("partitions=%d/workers=%d", parts, workers), func(b *testing.B) {
			var ratios []float64
			var tIn, tBase, cpuIn time.Duration
			for range b.N {
				for range rounds {
					c0 := cpuTime()
					in := oneFetcherEngine(b, parts, workers, run, total)
					cpuIn += cpuTime() - c0
					base := oneFetcherPerPartition(parts, run, total)
					tIn += in
					tBase += base
					ratios = append(ratios, float64(base)/float64(in))
				}
			}
			sort.Float64s(ratios)
			n := float64(b.N * rounds * total)
			b.ReportMetric(n/tIn.Seconds(), "engine-msgs/s")
			b.ReportMetric(n/tBase.Seconds(), "baseline-msgs/s")
			b.ReportMetric(ratios[len(ratios)/2], "ratio")
			b.ReportMetric(tIn.Seconds()*1e9/n, "engine-ns/msg")
			b.ReportMetric(cpuIn.Seconds()*1e9/n, "engine-cpu-ns/msg")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func oneFetcherEngine(b *testing.B, parts, workers, run, total int) time.Duration {
	c := cfg()
	c.Concurrency = workers
	var handled atomic.Int64
	all := make(chan struct{})
	e := engine.New(c, func(context.Context, int64) error {
		if handled.Add(1) == int64(total) {
			close(all)
		}
		return nil
	}, nil)
	s, ps, stop := benchSession(e, parts)
	defer stop()
	offs, msgs := make([]int64, run), make([]int64, run)
	start := time.Now()
	per := total / parts
	for o := 0; o < per; o += run {
		k := min(run, per-o)
		for _, p := range ps {
			for i := range k {
				offs[i], msgs[i] = int64(o+i), int64(o+i)
			}
			if _, err := s.Offer(p, offs[:k], msgs[:k], 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	<-all
	return time.Since(start)
}

func oneFetcherPerPartition(parts, run, total int) time.Duration {
	var handled atomic.Int64
	all := make(chan struct{})
	chans := make([]chan []int64, parts)
	var wg sync.WaitGroup
	for i := range chans {
		chans[i] = make(chan []int64, 4)
		wg.Go(func() {
			for msgs := range chans[i] {
				for range msgs {
					if handled.Add(1) == int64(total) {
						close(all)
					}
				}
			}
		})
	}
	start := time.Now()
	per := total / parts
	for o := 0; o < per; o += run {
		k := min(run, per-o)
		for _, ch := range chans {
			msgs := make([]int64, k) // a fetch's records are the consumer's to keep
			for i := range k {
				msgs[i] = int64(o + i)
			}
			ch <- msgs
		}
	}
	<-all
	d := time.Since(start)
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	return d
}

// benchSession starts e and a session that owns partitions 0..parts-1 of
// topic "t" from offset 0; stop closes the session and stops e.
func benchSession[M any](e *engine.Engine[M], parts int) (s *engine.Session[M], ps []*engine.Part, stop func()) {
	e.Start(context.Background())
	s = e.NewSession((&fakeBroker{}).commit)
	ps = make([]*engine.Part, parts)
	for i := range ps {
		ps[i], _ = s.Assign(engine.TopicPartition{Topic: "t", Partition: int32(i)}, 0, "", -1)
	}
	return s, ps, func() {
		s.Close(context.Background())
		e.Stop()
	}
}
