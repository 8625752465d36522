package engine

// This file holds the batch handler (NewBatch): workers take up to
// BatchSize messages per visit to the scheduler (sched.takeBatch), wait up
// to BatchWait to fill a batch, call the handler once, and apply its
// outcome per message: all done, done up to a BatchError's Index (the one
// at Index failed, those behind handed out again without an attempt), or
// every message failed once.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BatchHandler handles a batch of messages in one call; see BatchError for
// how it reports a failure of one message. M is the client's message type.
// The slice is the engine's: the handler must not keep it after returning.
type BatchHandler[M any] func(ctx context.Context, msgs []M) error

// NewBatch is New for a batch handler: the workers hand bh batches of up
// to cfg.BatchSize messages (see Config.BatchSize, BatchWait). It panics on
// a nil bh (programmer error: the adapters check it first).
func NewBatch[M any](cfg Config, bh BatchHandler[M], key func(M) []byte) *Engine[M] {
	if bh == nil {
		panic("engine: nil batch handler")
	}
	e := New(cfg, func(context.Context, M) error { return nil }, key)
	e.handler = nil
	e.batch = bh
	return e
}

// nextBatch releases the messages of w's last batch and fills w with the
// next: up to max messages (sched.takeBatch), waiting up to wait for more
// once it has one; it waits for one, and returns false once the engine
// stopped. While it waits to fill, a push that makes enough messages ready
// to fill it (see fillWake) wakes it at once.
func (r *runq[M]) nextBatch(w *workerRun[M], max int, wait time.Duration) bool {
	r.mu.Lock()
	prev := r.releaseLocked(w)
	for !r.stopped {
		var ok bool
		if w.tasks, ok = r.s.takeBatch(w.tasks, max); !ok {
			r.idle++
			r.cond.Wait()
			if r.stopped {
				break
			}
			r.signaled--
			continue
		}
		if len(w.tasks) < max && wait > 0 {
			// Counted as spinning, so that a push does not wake another
			// worker for what this one can take.
			r.spinning++
			deadline := time.Now().Add(wait)
			for len(w.tasks) < max && !r.stopped {
				d := time.Until(deadline)
				if d <= 0 {
					break
				}
				if r.fillc == nil {
					r.fillc = make(chan struct{})
					r.fillNeed = max
				}
				r.fillNeed = min(r.fillNeed, max-len(w.tasks))
				c := r.fillc
				r.mu.Unlock()
				if w.fillT == nil {
					w.fillT = time.NewTimer(d)
				} else {
					w.fillT.Reset(d)
				}
				select {
				case <-c:
				case <-w.fillT.C:
				}
				w.fillT.Stop()
				r.mu.Lock()
				w.tasks, _ = r.s.takeBatch(w.tasks, max)
			}
			r.spinning--
		}
		var pm *partMetrics
		var n int64
		for i := range w.tasks {
			if m := w.tasks[i].p.m; m != pm {
				if pm != nil {
					pm.consumed.Add(n)
				}
				pm, n = m, 0
			}
			n++
		}
		if pm != nil {
			pm.consumed.Add(n)
		}
		r.run = len(w.tasks)
		k := r.wakes()
		r.mu.Unlock()
		for range k {
			r.cond.Signal()
		}
		if len(w.tasks) < prev {
			clear(w.tasks[len(w.tasks):prev])
		}
		return true
	}
	r.mu.Unlock()
	clear(w.tasks[:prev])
	return false
}

// fillWake wakes the workers waiting to fill a batch (under mu) once the
// ready messages would fill the emptiest-needing one, or the engine stops:
// a trickle of messages does not wake them per message, a fetch does.
func (r *runq[M]) fillWake() {
	if r.fillc != nil && (r.s.nready >= r.fillNeed || r.stopped) {
		close(r.fillc)
		r.fillc = nil
	}
}

// batchWorker is worker for a batch handler.
func (e *Engine[M]) batchWorker(w *workerRun[M], c *workerCtrs) {
	var msgs []M
	var calls []*task[M]
	for e.queue.nextBatch(w, e.cfg.BatchSize, e.cfg.BatchWait) {
		calls, msgs = e.runBatch(w.tasks, c, calls[:0], msgs[:0])
		clear(msgs)
		clear(calls)
		var fp *Part
		var freed int64
		for i := range w.tasks {
			t := &w.tasks[i]
			if e.size == nil || t.again || t.rt != nil && t.rt.pending {
				continue // not finished: its bytes stay counted
			}
			if t.p != fp {
				e.addBytes(fp, -freed)
				fp, freed = t.p, 0
			}
			freed += int64(e.size(&t.msg))
		}
		e.addBytes(fp, -freed)
	}
}

// runBatch handles the batch ts once: the messages that are not to be
// handled (revoked, stopping) are left unacked, those the handler is done
// with go to the dead letter one by one, the others to the batch handler
// in one call, whose outcome it applies per message. It returns its
// buffers for reuse.
func (e *Engine[M]) runBatch(ts []task[M], c *workerCtrs, calls []*task[M], msgs []M) ([]*task[M], []M) {
	held := false // a dead letter failed: what follows waits (ByKey, ByPartition)
	for i := range ts {
		t := &ts[i]
		if e.frozen.holding() {
			e.afterFreeze(t.p) // frozen.go, as in run
		}
		switch {
		case t.p.revoking.Load() || e.failed.Load():
			t.p.addUnackable() // redelivered to the next owner, as in run
		case held:
			t.again = true
		case t.rt != nil && t.rt.dead:
			e.deadLetter(t.p, &t.job, t.rt.err, t.rt.attempts)
			// Its key or partition stays held while it waits: the later
			// messages must not be handled before it is done.
			held = t.rt.pending && e.cfg.Ordering != Unordered
		default:
			calls = append(calls, t)
			msgs = append(msgs, t.msg)
		}
	}
	if len(calls) == 0 {
		return calls, msgs
	}
	p := calls[0].p
	var start time.Time
	if e.m.timing() {
		start = time.Now()
	}
	e.m.batch(len(msgs))
	err := e.callBatch(calls, msgs)
	e.m.handled(p, start, err)
	c.handled.Add(int64(len(calls)))
	if err == nil {
		e.ackAll(calls)
		return calls, msgs
	}
	var be *BatchError
	if errors.As(err, &be) {
		if be.Index >= 0 && be.Index < len(calls) {
			e.ackAll(calls[:be.Index])
			c.errs.Add(1)
			t := calls[be.Index]
			e.failOne(t.p, &t.job, be.Err)
			for _, t := range calls[be.Index+1:] {
				t.again = true
			}
			return calls, msgs
		}
		if p.logTurn() {
			e.log.Error("inorder: batch handler returned a BatchError whose Index is outside the batch; the whole batch failed",
				"index", be.Index, "batch_size", len(calls), "error", be.Err,
				"errors_not_logged", p.errLogsSkipped.Swap(0))
		}
		err = fmt.Errorf("batch Index %d outside a batch of %d: %w", be.Index, len(calls), be.Err)
	}
	c.errs.Add(int64(len(calls)))
	for _, t := range calls {
		e.failOne(t.p, &t.job, err)
	}
	return calls, msgs
}

// ackAll acks the messages of ts, done (ErrClosed: a late ack after
// revoke, ignored), and counts them finished once per partition.
func (e *Engine[M]) ackAll(ts []*task[M]) {
	var p *Part
	var n int64
	for _, t := range ts {
		_ = t.p.wm.Ack(t.offset)
		if t.p != p {
			e.settle(p, 0, n)
			p, n = t.p, 0
		}
		n++
	}
	e.settle(p, 0, n)
}

// callBatch calls the batch handler, with the context of the batch's
// partition if it has one, else the engine's (ends at Stop). Its frame
// marks a handler call (see handlerFrame): it must not be inlined.
//
//go:noinline
func (e *Engine[M]) callBatch(calls []*task[M], msgs []M) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = e.recovered("batch handler", r)
		}
	}()
	p := calls[0].p
	ctx := p.ctx
	for _, t := range calls[1:] {
		if t.p != p {
			ctx = nil
			break
		}
	}
	if ctx == nil {
		ctx = e.hctx
	}
	return e.batch(ctx, msgs)
}
