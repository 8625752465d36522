package engine

// The scheduler in Unordered mode against the single FIFO it replaced, in
// the same harness: producers push, workers take and count. Internal: the
// baseline is not part of the package.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// fifoQueue is the ready queue before the scheduler (commit 05ff760), kept
// as the baseline.
type fifoQueue[M any] struct {
	mu    sync.Mutex
	items []job[M]
	head  int
	ready chan struct{}
}

func (q *fifoQueue[M]) push(j job[M]) {
	q.mu.Lock()
	q.items = append(q.items, j)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *fifoQueue[M]) pop(quit <-chan struct{}) (job[M], bool) {
	for {
		q.mu.Lock()
		if q.head < len(q.items) {
			j := q.items[q.head]
			q.items[q.head] = job[M]{}
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			} else if q.head > 1024 && q.head*2 > len(q.items) {
				n := copy(q.items, q.items[q.head:])
				clear(q.items[n:])
				q.items, q.head = q.items[:n], 0
			}
			more := q.head < len(q.items)
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-quit:
			return job[M]{}, false
		case <-q.ready:
		}
	}
}

// benchQueue runs b.N messages through push and the workers' loop.
func benchQueue(b *testing.B, parts, workers int, push func(p *Part, o int64), loop func(handled func())) {
	ps := make([]*Part, parts)
	for i := range ps {
		ps[i] = &Part{TP: TopicPartition{Topic: "t", Partition: int32(i)}}
	}
	var n atomic.Int64
	all := make(chan struct{})
	handled := func() {
		if n.Add(1) == int64(b.N) {
			close(all)
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { loop(handled) })
	}
	b.ReportAllocs()
	b.ResetTimer()
	var pw sync.WaitGroup
	for pi, p := range ps {
		pw.Go(func() {
			for o := pi; o < b.N; o += parts {
				push(p, int64(o))
			}
		})
	}
	pw.Wait()
	<-all
	b.StopTimer()
	b.Cleanup(wg.Wait)
}

func BenchmarkQueueUnordered(b *testing.B) {
	for _, parts := range []int{1, 8} {
		for _, workers := range []int{4, 64} {
			name := fmt.Sprintf("parts=%d/workers=%d", parts, workers)
			b.Run(name+"/impl=fifo", func(b *testing.B) {
				q := &fifoQueue[int64]{ready: make(chan struct{}, workers)}
				quit := make(chan struct{})
				defer close(quit)
				benchQueue(b, parts, workers,
					func(_ *Part, o int64) { q.push(job[int64]{offset: o, msg: o}) },
					func(handled func()) {
						for {
							if _, ok := q.pop(quit); !ok {
								return
							}
							handled()
						}
					})
			})
			b.Run(name+"/impl=sched", func(b *testing.B) {
				c := DefaultConfig()
				c.Concurrency = workers
				r := newRunq[int64](c, nil)
				defer r.stop()
				benchQueue(b, parts, workers,
					func(p *Part, o int64) { r.pushBatch(p, []int64{o}, []int64{o}) },
					func(handled func()) {
						w := r.newWorker()
						for r.next(w, 1) {
							for j, _ := w.next(); j != nil; j, _ = w.next() {
								handled()
							}
						}
					})
			})
		}
	}
}
