package engine_test

// A sink-like handler (2ms per call, a round trip, plus 10µs per message)
// behind Run (one message per call) and RunBatch (up to 100 per call), in
// one process: Concurrency 16, 8 partitions. The issue wants the batch
// handler at >= 20x the messages/s of Run.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

func BenchmarkBatchSink(b *testing.B) {
	benchBatch(b, 2*time.Millisecond, 10*time.Microsecond)
}

// BenchmarkBatchNoop is the same with a handler that does nothing: the
// engine's own cost per message, batches against single calls (the issue
// wants the batch handler at >= 1.0x).
func BenchmarkBatchNoop(b *testing.B) { benchBatch(b, 0, 0) }

func benchBatch(b *testing.B, perCall, perMsg time.Duration) {
	const parts = 8
	sleep := func(d time.Duration) {
		if d > 0 {
			time.Sleep(d)
		}
	}
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey} {
		for _, size := range []int{1, 100} {
			name := fmt.Sprintf("ordering=%v/handler=run", mode)
			if size > 1 {
				name = fmt.Sprintf("ordering=%v/handler=batch%d", mode, size)
			}
			b.Run(name, func(b *testing.B) {
				c := cfg()
				c.Concurrency = 16
				c.Ordering = mode
				c.BatchSize, c.BatchWait = size, 10*time.Millisecond
				var handled, calls atomic.Int64
				all := make(chan struct{})
				count := func(n int) {
					calls.Add(1)
					if handled.Add(int64(n)) == int64(b.N) {
						close(all)
					}
				}
				key := func(m kmsg) []byte { return m.key }
				var e *engine.Engine[kmsg]
				if size == 1 {
					e = engine.New(c, func(context.Context, kmsg) error {
						sleep(perCall + perMsg)
						count(1)
						return nil
					}, key)
				} else {
					e = engine.NewBatch(c, func(_ context.Context, ms []kmsg) error {
						sleep(perCall + time.Duration(len(ms))*perMsg)
						count(len(ms))
						return nil
					}, key)
				}
				s, ps, stop := benchSession(e, parts)
				defer stop()
				keys := make([][]byte, 100)
				for i := range keys {
					keys[i] = fmt.Append(nil, "k", i)
				}
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for pi, p := range ps {
					wg.Go(func() {
						total := (b.N - pi + parts - 1) / parts
						for o := range total {
							m := kmsg{int32(pi), int64(o), keys[o%len(keys)]}
							if err := s.Deliver(context.Background(), p, int64(o), m); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				<-all
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
				b.ReportMetric(float64(b.N)/float64(calls.Load()), "msgs/call")
			})
		}
	}
}
