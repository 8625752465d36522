package engine

// BenchmarkQueueUnordered's harness with runs of 64 messages pushed under
// one lock (runq.pushBatch) beside one push per message, in one process.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func BenchmarkQueueUnorderedBatch(b *testing.B) {
	const run = 64
	for _, parts := range []int{1, 8} {
		for _, workers := range []int{4, 64} {
			for _, batched := range []bool{false, true} {
				name := fmt.Sprintf("parts=%d/workers=%d/push=one", parts, workers)
				if batched {
					name = fmt.Sprintf("parts=%d/workers=%d/push=batch%d", parts, workers, run)
				}
				b.Run(name, func(b *testing.B) {
					c := DefaultConfig()
					c.Concurrency = workers
					r := newRunq[int64](c, nil)
					defer r.stop()
					ps := make([]*Part, parts)
					for i := range ps {
						ps[i] = &Part{TP: TopicPartition{Topic: "t", Partition: int32(i)}}
					}
					var n atomic.Int64
					all := make(chan struct{})
					var wg sync.WaitGroup
					for range workers {
						wg.Go(func() {
							w := r.newWorker()
							for r.next(w, 1) {
								for j, _ := w.next(); j != nil; j, _ = w.next() {
									if n.Add(1) == int64(b.N) {
										close(all)
									}
								}
							}
						})
					}
					b.ReportAllocs()
					b.ResetTimer()
					var pw sync.WaitGroup
					for pi, p := range ps {
						pw.Go(func() {
							total := (b.N - pi + parts - 1) / parts
							if !batched {
								for o := range total {
									r.pushBatch(p, []int64{int64(o)}, []int64{int64(o)})
								}
								return
							}
							offs := make([]int64, run)
							for o := 0; o < total; o += run {
								k := min(run, total-o)
								for i := range k {
									offs[i] = int64(o + i)
								}
								r.pushBatch(p, offs[:k], offs[:k])
							}
						})
					}
					pw.Wait()
					<-all
					b.StopTimer()
					b.Cleanup(wg.Wait)
				})
			}
		}
	}
}
