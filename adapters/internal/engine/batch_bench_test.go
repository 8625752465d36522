package engine_test

// BenchmarkUnorderedEngine's harness with the fetch side delivering runs
// of 64 messages (DeliverBatch) beside one at a time (Deliver), in one
// process.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/inorder/inorder/adapters/internal/engine"
)

func BenchmarkUnorderedEngineBatch(b *testing.B) {
	const run = 64
	for _, parts := range []int{1, 8} {
		for _, workers := range []int{4, 64} {
			for _, batched := range []bool{false, true} {
				name := fmt.Sprintf("parts=%d/workers=%d/deliver=one", parts, workers)
				if batched {
					name = fmt.Sprintf("parts=%d/workers=%d/deliver=batch%d", parts, workers, run)
				}
				b.Run(name, func(b *testing.B) {
					c := cfg()
					c.Concurrency = workers
					var handled atomic.Int64
					all := make(chan struct{})
					e := engine.New(c, func(context.Context, int64) error {
						if handled.Add(1) == int64(b.N) {
							close(all)
						}
						return nil
					}, nil)
					s, ps, stop := benchSession(e, parts)
					defer stop()
					b.ReportAllocs()
					b.ResetTimer()
					var wg sync.WaitGroup
					for pi, p := range ps {
						wg.Go(func() {
							ctx := context.Background()
							// Partition pi gets messages pi, pi+parts, ... at
							// offsets 0, 1, ...
							total := (b.N - pi + parts - 1) / parts
							if !batched {
								for o := range total {
									if err := s.Deliver(ctx, p, int64(o), int64(pi+o*parts)); err != nil {
										b.Error(err)
										return
									}
								}
								return
							}
							offs, msgs := make([]int64, run), make([]int64, run)
							for o := 0; o < total; o += run {
								k := min(run, total-o)
								for i := range k {
									offs[i], msgs[i] = int64(o+i), int64(pi+(o+i)*parts)
								}
								if n, err := s.DeliverBatch(ctx, p, offs[:k], msgs[:k]); err != nil || n != k {
									b.Error(n, err)
									return
								}
							}
						})
					}
					wg.Wait()
					<-all
				})
			}
		}
	}
}
