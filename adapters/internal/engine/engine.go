package engine

// This file holds the Engine: the worker pool that runs the handler, the
// error policy, panic recovery, and the registry of owned partitions that
// Stats reads.

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/inorder/inorder/watermark"
)

// Handler handles one message. M is the client's message type.
type Handler[M any] func(ctx context.Context, msg M) error

// TopicPartition names a partition.
type TopicPartition = watermark.TopicPartition

// Engine runs the handler on Concurrency workers for the partitions of its
// sessions. Create one per Run with New; Start, then Stop once every
// session is closed. Safe for concurrent use.
type Engine[M any] struct {
	cfg     Config
	log     *slog.Logger
	handler Handler[M]
	batch   BatchHandler[M] // NewBatch: the workers take batches
	size    func(*M) int    // SetSize; nil: every message counts 0
	flow    flowState       // flow.go

	queue    *runq[M] // ready messages; never blocks the fetch side (the windows bound it)
	quit     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	hctx     context.Context // parent of each assignment's handler context (Part.ctx); ends at Stop
	hcancel  context.CancelFunc

	fatalOnce sync.Once
	fatalErr  error
	fatal     chan struct{} // closed on the first fatal handler error
	failed    atomic.Bool

	mu    sync.Mutex
	parts map[TopicPartition]*Part // owned partitions, for Stats

	// One counter block per worker, each on its own cache lines, so that
	// the workers' hot path does not bounce one line between cores;
	// Handled, Errors and the Stop log sum them.
	ctrs []workerCtrs

	m *metrics // metrics.go

	notes engineNotes // mistakes.go

	frozen frozenState // frozen.go
	kept   keptState   // kept.go
}

// New returns an engine; cfg must be valid (see Config.Validate). key
// returns a message's key (ByKey ordering compares keys by bytes; nil and
// empty keys are keyless); it may be nil unless cfg.Ordering is ByKey. It
// is called on the delivering goroutine and must not keep the slice.
func New[M any](cfg Config, h Handler[M], key func(M) []byte) *Engine[M] {
	if err := cfg.Validate(); err != nil {
		panic(err) // programmer error: adapters validate in their constructor
	}
	if h == nil {
		panic("engine: nil handler")
	}
	if key == nil && cfg.Ordering == ByKey {
		panic("engine: ByKey ordering without a key function")
	}
	return &Engine[M]{
		cfg:     cfg,
		log:     cfg.Logger,
		handler: h,
		queue:   newRunq(cfg, key),
		quit:    make(chan struct{}),
		fatal:   make(chan struct{}),
		parts:   make(map[TopicPartition]*Part),
		ctrs:    make([]workerCtrs, cfg.Concurrency),
		m:       newMetrics(cfg),
		flow:    flowState{changed: make(chan struct{}, 1), wake: make(chan struct{}, 1)},
	}
}

// workerCtrs are one worker's counters. Only its worker writes them; any
// goroutine reads them.
type workerCtrs struct {
	handled atomic.Int64 // handler calls that returned (any result)
	errs    atomic.Int64 // handler errors and panics
	exited  atomic.Bool  // the worker returned (Stop counts those that did not)
	_       [ctrPad - 24]byte
}

// ctrPad is the size of a workerCtrs: two cache lines, as the adjacent
// line prefetcher of x86 pulls lines in pairs.
const ctrPad = 128

// sum adds up one counter over the workers.
func (e *Engine[M]) sum(f func(*workerCtrs) *atomic.Int64) int64 {
	var n int64
	for i := range e.ctrs {
		n += f(&e.ctrs[i]).Load()
	}
	return n
}

// Start starts the workers. Handlers get a context carrying ctx's values
// that is cancelled when their partition's revoke has closed it (after its
// drain and commit), or by Stop, not when ctx ends: on shutdown the drain
// must let running handlers finish (a handler cancelled mid-way would,
// under LogAndAck, be acked without having done its work).
func (e *Engine[M]) Start(ctx context.Context) {
	e.hctx, e.hcancel = context.WithCancel(context.WithoutCancel(ctx))
	e.queue.s.size, e.queue.s.bytes = e.size, e.addBytes
	go e.flowLoop()
	if e.cfg.FrozenAfter > 0 {
		go e.frozenLoop()
	}
	for i := range e.cfg.Concurrency {
		e.wg.Add(1)
		go e.worker(&e.ctrs[i])
	}
}

// Stop cancels the handlers' context, drops queued jobs and waits for the
// workers to return, at most RevokeTimeout: a handler that ignores its
// context is then abandoned (logged at Error level). Its goroutine keeps
// running until the handler returns; its late ack is ignored, its message
// was not committed and is delivered again to the next owner. Call it after
// the last session is closed. Safe to call more than once, concurrently;
// later calls return at once.
func (e *Engine[M]) Stop() {
	e.stopOnce.Do(func() {
		close(e.quit)
		e.m.close()
		e.queue.stop()
		if e.hcancel != nil {
			e.hcancel()
		}
		done := make(chan struct{})
		go func() {
			e.wg.Wait()
			close(done)
		}()
		t := time.NewTimer(e.cfg.RevokeTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			e.log.Error("inorder: handlers ignored the cancelled context for RevokeTimeout, abandoning them",
				"running", e.stuck(), "revoke_timeout", e.cfg.RevokeTimeout)
		}
	})
}

// stuck returns how many workers have not returned (each is in a handler
// call).
func (e *Engine[M]) stuck() int {
	n := 0
	for i := range e.ctrs {
		if !e.ctrs[i].exited.Load() {
			n++
		}
	}
	return n
}

// Fatal is closed when a handler error stops the engine (Stop policy).
func (e *Engine[M]) Fatal() <-chan struct{} { return e.fatal }

// Err returns the error that stopped the engine, or nil.
func (e *Engine[M]) Err() error {
	select {
	case <-e.fatal:
		return e.fatalErr
	default:
		return nil
	}
}

// Handled returns how many handler calls have returned; Errors how many of
// them failed or panicked. With a batch handler both count messages: those
// of the batches that returned, and those that failed.
func (e *Engine[M]) Handled() int64 {
	return e.sum(func(c *workerCtrs) *atomic.Int64 { return &c.handled })
}

// Errors returns how many handler calls failed or panicked.
func (e *Engine[M]) Errors() int64 {
	return e.sum(func(c *workerCtrs) *atomic.Int64 { return &c.errs })
}

func (e *Engine[M]) worker(c *workerCtrs) {
	defer e.wg.Done()
	defer c.exited.Store(true)
	w := e.queue.newWorker()
	want := 1
	runs := e.cfg.Ordering != ByPartition
	keyed := e.cfg.Ordering == ByKey
	if e.batch != nil {
		e.batchWorker(w, c)
		return
	}
	for e.queue.next(w, want) {
		// Size the next run by how long these calls took, so
		// that a run holds about runBudget of work: short handlers take
		// up to maxRun messages per lock of the scheduler, a handler
		// slower than runBudget one at a time (ByPartition: always one,
		// see sched.takeMore). (A run's messages that its
		// worker has not reached are stolen by any worker that finds
		// nothing else to do.) A run of one when more were wanted (the
		// queue was short) is not timed: it tells nothing about a run,
		// and the clock would be a cost per message.
		timed := want == 1 || w.size() > 1
		var start time.Time
		if timed {
			start = time.Now()
		}
		n := 0
		var fp *Part           // the partition of freed and done
		var freed, done int64  // counted once per partition and run: other workers write them too
		timing := e.m.timing() // once per run: a reader may start collecting meanwhile
		for j, p := w.next(); j != nil; j, p = w.next() {
			ok := e.run(j, p, c, timing)
			n++
			if p != fp {
				e.settle(fp, freed, done)
				fp, freed, done = p, 0, 0
			}
			if ok {
				done++
			}
			if e.size != nil && (j.rt == nil || !j.rt.pending) { // finished: its bytes are free
				freed += int64(e.size(&j.msg))
			}
			if keyed {
				w.finished()
			}
		}
		e.settle(fp, freed, done)
		if timed && n > 0 && runs {
			want = runSize(time.Since(start), n)
		}
	}
}

// A worker takes at most maxRun messages per visit to the scheduler, and
// about runBudget of handler time (Unordered).
const (
	maxRun    = 64
	runBudget = 20 * time.Microsecond
)

// runSize returns how many messages to take next after n calls took d.
func runSize(d time.Duration, n int) int {
	per := d / time.Duration(n)
	if per <= 0 {
		return maxRun
	}
	return int(min(max(runBudget/per, 1), maxRun))
}

// settle gives back the bytes of p's messages that a run freed and counts
// those its handler calls finished (MetricFinished).
func (e *Engine[M]) settle(p *Part, freed, done int64) {
	e.addBytes(p, -freed)
	if done > 0 && p.m != nil {
		p.m.finished.Add(done)
	}
}

// run handles t once: the handler, or the dead letter if the handler is
// done with. A failure to retry marks t.rt pending: the scheduler then holds
// the message for its wait when the worker reports it done. c is the
// worker's counters. It reports whether the handler succeeded, the message
// acked: the caller counts it finished (the other outcomes count
// themselves).
func (e *Engine[M]) run(j *job[M], p *Part, c *workerCtrs, timing bool) bool {
	if e.frozen.holding() {
		e.afterFreeze(p) // frozen.go: the group may have moved p meanwhile
	}
	if p.revoking.Load() || e.failed.Load() {
		// Revoked (or lost) before a worker took it, or Run is stopping on
		// an error: the message is not handled and not acked (it is
		// redelivered to the next owner).
		p.addUnackable()
		return false
	}
	if j.rt != nil && j.rt.dead {
		e.deadLetter(p, j, j.rt.err, j.rt.attempts)
		return false
	}
	var start time.Time
	if timing {
		start = time.Now()
	}
	err := e.call(p, j.msg)
	e.m.handled(p, start, err)
	c.handled.Store(c.handled.Load() + 1) // c is this worker's alone: no locked add
	if err == nil {
		_ = p.wm.Ack(j.offset) // ErrClosed: a late ack after revoke, ignored by design
		return true
	}
	c.errs.Add(1)
	e.failOne(p, j, err)
	return false
}

// failOne applies the retry policy, then the dead letter or the error
// policy, to j, a message of p whose handler call failed with err.
func (e *Engine[M]) failOne(p *Part, j *job[M], err error) {
	p.errors.Add(1)
	attempts := 1
	if j.rt != nil {
		attempts = j.rt.attempts + 1
	}
	if attempts < e.cfg.Retry.MaxAttempts && !isPermanent(err) {
		rt := j.retry()
		rt.attempts, rt.err = attempts, err
		rt.pending, rt.wait = true, e.cfg.Retry.wait(attempts)
		p.retries.Add(1)
		if p.m != nil {
			p.m.retries.Add(1)
		}
		return
	}
	if e.cfg.DeadLetter != nil {
		e.deadLetter(p, j, err, attempts)
		return
	}
	if e.cfg.ErrorPolicy == Stop {
		p.addUnackable()
		e.fail(fmt.Errorf("%w: %s[%d] offset %d: %w", ErrHandler, p.TP.Topic, p.TP.Partition, j.offset, err))
		return
	}
	ackErr := p.wm.Ack(j.offset)
	e.finish(p)
	e.logHandlerError(p, j.offset, err, ackErr)
}

// retry returns j's retry bookkeeping, allocating it at the first failure.
func (j *job[M]) retry() *retry[M] {
	if j.rt == nil {
		j.rt = &retry[M]{}
	}
	return j.rt
}

// deadLetter hands j, a message of p whose handler failed for the last
// time with err, to Config.DeadLetter, and acks it once that returned nil;
// an error from it (or a panic) is retried with the retry waits, never
// dropped.
func (e *Engine[M]) deadLetter(p *Part, j *job[M], err error, attempts int) {
	dlErr := e.callDeadLetter(p, j, err, attempts)
	if dlErr == nil {
		p.dead.Add(1)
		if p.m != nil {
			p.m.dlq.Add(1)
		}
		_ = p.wm.Ack(j.offset)
		e.deadLettered(p, j.offset, err)
		return
	}
	p.deadFails.Add(1)
	rt := j.retry()
	rt.dead, rt.err, rt.attempts = true, err, attempts
	rt.dlCalls++
	rt.pending, rt.wait = true, e.cfg.Retry.wait(rt.dlCalls)
	if !p.logTurn() {
		return
	}
	e.log.Warn("inorder: dead letter failed, retrying it (the message is not acked until it succeeds)",
		"topic", p.TP.Topic, "partition", p.TP.Partition, "offset", j.offset, "error", dlErr,
		"handler_error", err, "dead_letter_calls", rt.dlCalls, "errors_not_logged", p.errLogsSkipped.Swap(0))
}

// callDeadLetter calls Config.DeadLetter for j. In the exactly-once mode
// its context records outputs (AddOutput) as a handler call's do, stored
// with j's offset when it returned nil (txn.go): the dead-letter record
// goes in the transaction that commits j as done.
func (e *Engine[M]) callDeadLetter(p *Part, j *job[M], err error, attempts int) (dlErr error) {
	ctx, end := e.hctx, func(bool) {}
	if p.txo != nil {
		ctx, end = p.txo.begin(ctx, j.offset)
	}
	defer func() {
		if r := recover(); r != nil {
			dlErr = e.recovered("dead letter", r)
		}
		end(dlErr == nil)
	}()
	return e.cfg.DeadLetter(ctx, j.msg, err, attempts)
}

// logHandlerError logs a handler error under LogAndAck, at most once per
// partition per second; the records left out are counted in the next one.
func (e *Engine[M]) logHandlerError(p *Part, offset int64, err, ackErr error) {
	if !p.logTurn() {
		return
	}
	msg := "inorder: handler error, message acked (error policy LogAndAck)"
	if ackErr != nil {
		msg = "inorder: handler error after the partition was revoked, message not acked (redelivered to the next owner)"
	}
	e.log.Warn(msg, "topic", p.TP.Topic, "partition", p.TP.Partition, "offset", offset, "error", err,
		"errors_not_logged", p.errLogsSkipped.Swap(0))
}

// call calls the handler with msg, a message of p, turning a panic into
// an error. Its frame marks a handler call (see handlerFrame): it must not
// be inlined.
//
//go:noinline
func (e *Engine[M]) call(p *Part, msg M) (err error) {
	returned := false
	defer func() {
		if returned {
			return // recover only when the handler did not return: it costs a call
		}
		if r := recover(); r != nil {
			err = e.recovered("handler", r)
		}
	}()
	err = e.handler(p.ctx, msg)
	returned = true
	return err
}

func (e *Engine[M]) fail(err error) {
	e.fatalOnce.Do(func() {
		e.fatalErr = err
		e.failed.Store(true)
		e.log.Error("inorder: stopping on handler error (error policy Stop)", "error", err)
		close(e.fatal)
	})
}

// dispatchBatch queues tracked messages of p (offsets in order) for the
// workers, under one lock of the scheduler. It never waits: the queue holds
// at most the windows of the owned partitions. The messages not queued (p
// is revoked, or the engine stopped) stay tracked and are counted as
// unackable, so the drain does not wait for them.
func (e *Engine[M]) dispatchBatch(p *Part, offs []int64, msgs []M) error {
	k := e.queue.pushBatch(p, offs, msgs)
	e.addBytes(p, e.sizeOf(msgs[:k]))
	if k == len(offs) {
		return nil
	}
	addUnackable(p, int64(len(offs)-k))
	select {
	case <-e.quit:
		return ErrStopped
	default:
		return nil // revoked: dropped like the messages queued before
	}
}

// dropPart drops the messages of p still queued, for good: they are never
// handed to a worker, are counted as unackable (the drain does not wait for
// them) and their memory is released; later deliveries to p are dropped
// too. The session calls it when it revokes or loses p, after setting
// p.revoking. Running handler calls are not affected. Any goroutine.
func (e *Engine[M]) dropPart(p *Part) {
	e.queue.drop(p)
	e.dropBacklog(p)
}

func (e *Engine[M]) register(p *Part) {
	e.mu.Lock()
	if e.parts[p.TP] == nil {
		e.flow.nparts.Add(1)
	}
	e.parts[p.TP] = p
	e.mu.Unlock()
}

func (e *Engine[M]) unregister(p *Part) {
	e.mu.Lock()
	if e.parts[p.TP] == p {
		delete(e.parts, p.TP)
		e.flow.nparts.Add(-1)
	}
	e.mu.Unlock()
	e.dropPart(p) // releases the queue if the revoke did not drop it yet
}

// owned returns the partitions registered now.
func (e *Engine[M]) owned() []*Part {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Collect(maps.Values(e.parts))
}

// Stats returns the statistics of the partitions currently owned, sorted by
// topic and partition.
func (e *Engine[M]) Stats() []PartitionStats {
	e.mu.Lock()
	parts := slices.Collect(maps.Values(e.parts))
	e.mu.Unlock()
	out := make([]PartitionStats, 0, len(parts))
	for _, p := range parts {
		out = append(out, p.stats())
	}
	slices.SortFunc(out, func(a, b PartitionStats) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}
