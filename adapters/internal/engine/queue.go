package engine

// This file holds the queue between the deliveries and the workers.

import "sync"

// jobQueue is an unbounded FIFO of ready messages. push never blocks: the
// windows of the owned partitions bound what can be queued. pop blocks
// until a message is ready or quit is closed.
type jobQueue[M any] struct {
	mu    sync.Mutex
	items []job[M]
	head  int
	ready chan struct{} // one token per push, up to the number of workers
}

func newJobQueue[M any](workers int) jobQueue[M] {
	return jobQueue[M]{ready: make(chan struct{}, workers)}
}

func (q *jobQueue[M]) push(j job[M]) {
	q.mu.Lock()
	q.items = append(q.items, j)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // as many wake-ups pending as workers: one of them will take it
	}
}

func (q *jobQueue[M]) pop(quit <-chan struct{}) (job[M], bool) {
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
				// Pass the wake-up on: a push whose token was dropped (the
				// buffer was full) relies on a worker that finds more.
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
