package engine_test

// Unordered through the whole engine (Deliver, scheduler, handler, Ack)
// with a handler that does nothing: what the engine itself costs per
// message. The same file runs against the engine before the scheduler
// (commit 05ff760, where New has no key argument) for the comparison.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/inorder/inorder/adapters/internal/engine"
)

func BenchmarkUnorderedEngine(b *testing.B) {
	for _, parts := range []int{1, 8} {
		for _, workers := range []int{4, 64} {
			b.Run(fmt.Sprintf("parts=%d/workers=%d", parts, workers), func(b *testing.B) {
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
						for o := pi; o < b.N; o += parts {
							if err := s.Deliver(context.Background(), p, int64(o/parts), int64(o)); err != nil {
								b.Error(err)
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
