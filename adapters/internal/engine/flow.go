package engine

// This file holds the intake and the flow control, once for every adapter.
//
// Intake: the adapter offers each partition's fetched messages (Offer). The
// engine tracks and queues what fits in the partition's window and keeps the
// rest in the partition's backlog, tracked in order as the window makes
// room (a pump goroutine per backlogged partition waits for it). Offer never
// blocks and never refuses a message for room, so the adapter holds nothing.
//
// Flow: the engine decides which partitions the client should stop
// fetching, from two budgets: the partition's window (a partition with a
// backlog is paused) and MaxBufferedBytes, the bytes (key, value, headers)
// of the messages fetched and not yet finished across the consumer. Once
// the consumer holds half its budget, a partition holding its share (the
// budget over the partitions owned) or more is paused; once it holds the
// whole budget, every partition holding anything is. A partition holding
// nothing is never paused for the budget, so a hot partition cannot starve
// the others, and the buffered bytes stay within the budget plus one fetch
// per partition (what was fetched before the pause took effect). A paused
// partition resumes once its backlog is tracked and either it holds nothing
// or the consumer is below the thresholds with some hysteresis (three
// quarters of the budget; three eighths for a partition over half its
// share). A message larger than the budget is taken like any other (it
// was fetched already): its partition is paused until it is finished.
//
// Memory of the process: the Go heap grows to about twice what is live
// between collections (GOGC=100), so a consumer's RSS is about twice what
// it buffers plus the runtime and the client (measured: bench/cmd/memory);
// GOMEMLIMIT makes the collector keep it closer.
//
// The adapter applies the decisions on the goroutine its client requires:
// ApplyFlow after each poll (FlowChanged is ready when there is something
// to apply), or WaitFlow in a fetch loop of its own.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/inorder/inorder/watermark"
)

// intake is a partition's offered messages not yet tracked (its backlog).
// Under mu: the Offer of the fetch side and the pump take turns, which keeps
// the watermark's one-tracking-goroutine rule.
type intake[M any] struct {
	mu      sync.Mutex
	backlog []item[M] // in offset order
	pumping bool      // a pump goroutine owns the wait for room
	offs    []int64   // scratch for the pump
	msgs    []M
}

// item is a backlogged message, or a gap: every offset below off not
// offered is done (gap true).
type item[M any] struct {
	off int64
	msg M
	gap bool
}

// flowState is the engine's side of the flow control.
type flowState struct {
	bytes   atomic.Int64 // buffered bytes of every owned partition
	_       [56]byte     // the workers update bytes: keep it off the other fields' line
	nparts  atomic.Int64 // partitions registered, for the share
	nover   atomic.Int64 // partitions paused for the budget
	dirty   atomic.Bool  // a partition's wanted state changed since the last ApplyFlow
	changed chan struct{}
	wake    chan struct{} // bytes freed while partitions are paused for the budget
}

// SetSize sets how many bytes a message holds (key, value and headers),
// for MaxBufferedBytes; without it every message counts 0. Call it before
// Start. The function is called on the intake and the worker goroutines.
func (e *Engine[M]) SetSize(size func(*M) int) { e.size = size }

// itemBytes is the size of the messages of its (gaps count 0).
func (e *Engine[M]) itemBytes(its []item[M]) int64 {
	if e.size == nil {
		return 0
	}
	var n int64
	for k := range its {
		if !its[k].gap {
			n += int64(e.size(&its[k].msg))
		}
	}
	return n
}

func (e *Engine[M]) sizeOf(msgs []M) int64 {
	if e.size == nil {
		return 0
	}
	var n int64
	for i := range msgs {
		n += int64(e.size(&msgs[i]))
	}
	return n
}

// addBytes counts n more (or, negative, fewer) bytes buffered for p, and
// wakes the flow loop when bytes freed may resume a partition.
func (e *Engine[M]) addBytes(p *Part, n int64) {
	if n == 0 {
		return
	}
	pb := p.bytes.Add(n)
	total := e.flow.bytes.Add(n)
	if n < 0 && e.flow.nover.Load() > 0 {
		budget := e.cfg.MaxBufferedBytes
		if total < budget*3/4 || p.over.Load() && pb <= 0 {
			select {
			case e.flow.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (e *Engine[M]) share() int64 {
	return e.cfg.MaxBufferedBytes / max(1, e.flow.nparts.Load())
}

// overBudget reports whether p should be paused for the budget, with the
// hysteresis of the file comment (was: it is paused for it now).
func (e *Engine[M]) overBudget(p *Part, was bool) bool {
	budget, total, pb, share := e.cfg.MaxBufferedBytes, e.flow.bytes.Load(), p.bytes.Load(), e.share()
	if pb <= 0 {
		return false
	}
	if was {
		return total >= budget*3/4 || pb >= share/2 && total >= budget*3/8
	}
	return total >= budget || pb >= share && total >= budget/2
}

// decide sets p's wanted fetch state from its backlog (backlogged) and the
// budget. Any goroutine.
func (e *Engine[M]) decide(p *Part, backlogged bool) {
	if p.revoking.Load() {
		return
	}
	p.flowMu.Lock()
	for {
		over := e.overBudget(p, p.over.Load())
		if over == p.over.Load() {
			break
		}
		p.over.Store(over)
		if over {
			e.flow.nover.Add(1)
		} else {
			e.flow.nover.Add(-1)
		}
		// Again: bytes freed before p.over was stored did not wake the
		// flow loop (addBytes reads p.over), so they are counted here.
	}
	want := backlogged || p.over.Load()
	changed := want != p.want.Load()
	if changed {
		p.want.Store(want)
		if p.flowCh != nil {
			close(p.flowCh)
			p.flowCh = nil
		}
	}
	p.flowMu.Unlock()
	if changed {
		e.flow.dirty.Store(true)
		select {
		case e.flow.changed <- struct{}{}:
		default:
		}
	}
}

// Offer hands p's fetched messages to the engine: msgs[i] at offs[i],
// offsets increasing; every offset below end (if end is above them) not
// among them is a gap (a transaction marker, aborted or compacted records),
// as is every offset between two of them. Messages at offsets below what
// was offered before (fetched again after a seek, or a truncated log) are
// dropped and counted in stale. The rest is taken: tracked and queued as far
// as the window goes, kept in p's backlog beyond it (and p is paused until
// the backlog is tracked), never refused for room. Messages the commit
// metadata marked done are not handed out. It returns ErrClosed (the
// message are dropped) once p is revoked or lost, ErrStopped once the
// engine stopped. It never blocks on the workers or the window. Fetch side
// of p only (one goroutine at a time; the engine's pump takes turns with it).
func (s *Session[M]) Offer(p *Part, offs []int64, msgs []M, end int64) (stale int, err error) {
	if len(offs) != len(msgs) {
		panic("engine: Offer: offsets and messages differ in length") // programmer error
	}
	e := s.e
	in := p.in.(*intake[M])
	in.mu.Lock()
	defer in.mu.Unlock()
	if p.revoking.Load() {
		return 0, watermark.ErrClosed
	}
	next := p.next.Load()
	// Drop what was offered before, keeping the order strict.
	i := 0
	for i < len(offs) && offs[i] < next {
		i++
	}
	stale = i
	offs, msgs = offs[i:], msgs[i:] // the order of the rest: tracking refuses it (ErrOutOfOrder)
	top := next                     // one past the last message offered
	if len(offs) > 0 {
		top = offs[len(offs)-1] + 1
	}
	gap := end > top
	p.next.Store(max(top, end))

	if len(in.backlog) == 0 {
		n, err := s.intake(p, offs, msgs)
		if err != nil {
			return stale, err
		}
		offs, msgs = offs[n:], msgs[n:]
		if len(offs) == 0 && gap {
			if err := p.wm.Skip(end); !errors.Is(err, watermark.ErrWindowFull) {
				if err != nil {
					return stale, err
				}
				gap = false
			}
		}
	}
	for i := range offs {
		in.backlog = append(in.backlog, item[M]{off: offs[i], msg: msgs[i]})
	}
	if gap {
		in.backlog = append(in.backlog, item[M]{off: end, gap: true})
	}
	e.addBytes(p, e.sizeOf(msgs))
	backlogged := len(in.backlog) > 0
	if backlogged && !in.pumping {
		in.pumping = true
		go s.pump(p, in)
	}
	// Nothing to decide while the consumer is under half its budget and p
	// neither has a backlog nor is paused: the common case, skipped cheaply.
	if backlogged || p.want.Load() || e.flow.bytes.Load() >= e.cfg.MaxBufferedBytes/2 {
		e.decide(p, backlogged)
	}
	return stale, nil
}

// intake tracks and queues the prefix of msgs that fits in the window and
// returns how many it consumed; it stops at ErrWindowFull without an error.
// Under p's intake lock.
func (s *Session[M]) intake(p *Part, offs []int64, msgs []M) (int, error) {
	done := 0
	for done < len(offs) {
		n, err := s.tryDeliverBatch(p, offs[done:min(len(offs), done+intakeMax)], msgs[done:min(len(offs), done+intakeMax)])
		done += n
		switch {
		case err == nil:
		case errors.Is(err, watermark.ErrWindowFull):
			return done, nil
		default:
			return done, err // ErrClosed, ErrStopped
		}
	}
	return done, nil
}

// intakeMax bounds the messages queued under one lock of the scheduler.
const intakeMax = 256

// pump tracks p's backlog as its window makes room, then decides p's flow
// again. One per backlogged partition; it ends when the backlog is empty or
// p is revoked.
func (s *Session[M]) pump(p *Part, in *intake[M]) {
	e := s.e
	for {
		in.mu.Lock()
		if p.revoking.Load() {
			in.pumping = false
			in.mu.Unlock()
			return
		}
		freed := s.pumpLocked(p, in)
		if len(in.backlog) == 0 {
			in.pumping = false
			in.mu.Unlock()
			e.addBytes(p, -freed)
			e.decide(p, false)
			return
		}
		at := in.backlog[0].off
		if in.backlog[0].gap {
			at--
		}
		in.mu.Unlock()
		e.addBytes(p, -freed)
		if err := p.wm.WaitRoom(p.ctx, at); err != nil {
			in.mu.Lock()
			in.pumping = false
			in.mu.Unlock()
			return // revoked (its backlog is dropped) or stopping
		}
	}
}

// pumpLocked tracks what fits of the backlog and returns the bytes of the
// messages it took out of it (they are counted again as they are queued).
// Under in.mu.
func (s *Session[M]) pumpLocked(p *Part, in *intake[M]) int64 {
	e := s.e
	var freed int64
	i := 0
	for i < len(in.backlog) {
		if it := in.backlog[i]; it.gap {
			if err := p.wm.Skip(it.off); errors.Is(err, watermark.ErrWindowFull) {
				break
			}
			i++
			continue
		}
		j := i
		in.offs, in.msgs = in.offs[:0], in.msgs[:0]
		for j < len(in.backlog) && !in.backlog[j].gap && j-i < intakeMax {
			in.offs = append(in.offs, in.backlog[j].off)
			in.msgs = append(in.msgs, in.backlog[j].msg)
			j++
		}
		n, err := s.intake(p, in.offs, in.msgs)
		clear(in.msgs)
		if err != nil { // revoked or stopping: the rest is dropped
			freed += e.itemBytes(in.backlog[i:])
			i = len(in.backlog)
			break
		}
		freed += e.itemBytes(in.backlog[i : i+n])
		i += n
		if n < len(in.offs) {
			break
		}
	}
	clear(in.backlog[:i])
	in.backlog = in.backlog[i:]
	if len(in.backlog) == 0 {
		in.backlog = nil
	}
	return freed
}

// dropBacklog drops p's backlog (p is revoked or lost): its messages were
// never tracked, the next owner fetches them.
func (e *Engine[M]) dropBacklog(p *Part) {
	in, _ := p.in.(*intake[M])
	if in == nil {
		return
	}
	in.mu.Lock()
	b := e.itemBytes(in.backlog)
	in.backlog = nil
	in.mu.Unlock()
	e.addBytes(p, -b)
	p.flowMu.Lock()
	if p.over.Load() {
		p.over.Store(false)
		e.flow.nover.Add(-1)
	}
	p.flowMu.Unlock()
}

// flowLoop re-decides the partitions paused for the budget when bytes were
// freed (addBytes wakes it), until the engine stops.
func (e *Engine[M]) flowLoop() {
	for {
		select {
		case <-e.quit:
			return
		case <-e.flow.wake:
		}
		for _, p := range e.owned() {
			if !p.over.Load() {
				continue
			}
			in, _ := p.in.(*intake[M])
			backlogged := false
			if in != nil {
				in.mu.Lock()
				backlogged = len(in.backlog) > 0
				in.mu.Unlock()
			}
			e.decide(p, backlogged)
		}
	}
}

// Buffered returns the bytes of the messages fetched and not yet finished
// (see Config.MaxBufferedBytes). Any goroutine.
func (e *Engine[M]) Buffered() int64 { return e.flow.bytes.Load() }

// FlowChanged is ready when a partition's wanted fetch state changed since
// the last ApplyFlow. Any goroutine.
func (e *Engine[M]) FlowChanged() <-chan struct{} { return e.flow.changed }

// ApplyFlow brings the fetch state of the owned partitions to what the
// engine wants: it calls apply(p, true) for each partition to pause and
// apply(p, false) for each to resume, and records it in their State. Call
// it on the goroutine the client requires for pausing, after each poll; it
// costs one atomic load when nothing changed. Partitions being revoked are
// left to the adapter (see Part.FetchPaused).
func (e *Engine[M]) ApplyFlow(apply func(p *Part, pause bool)) {
	if !e.flow.dirty.Load() || !e.flow.dirty.Swap(false) {
		return
	}
	for _, p := range e.owned() {
		if p.revoking.Load() {
			continue
		}
		if want := p.want.Load(); want != p.applied {
			apply(p, want)
			p.applied = want
			p.SetPaused(want)
		}
	}
}

// WaitFlow waits while the engine wants p paused (its backlog is being
// tracked, or it is over its share of the budget), recording the pause in
// p's State. It returns nil when p may be fetched again, ctx.Err() when ctx
// ends, watermark.ErrClosed once p is revoked. For an adapter that runs a
// fetch loop per partition: that loop's goroutine only.
func (e *Engine[M]) WaitFlow(ctx context.Context, p *Part) error {
	for {
		p.flowMu.Lock()
		if !p.want.Load() {
			p.flowMu.Unlock()
			if p.applied {
				p.applied = false
				p.SetPaused(false)
			}
			return nil
		}
		if p.flowCh == nil {
			p.flowCh = make(chan struct{})
		}
		ch := p.flowCh
		p.flowMu.Unlock()
		if !p.applied {
			p.applied = true
			p.SetPaused(true)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.gone:
			return watermark.ErrClosed
		}
	}
}

// Paused reports whether the engine wants p paused now. Any goroutine.
func (p *Part) Paused() bool { return p.want.Load() }

// FetchPaused reports whether the adapter's client has p paused, as last
// applied by ApplyFlow or WaitFlow: an adapter whose client keeps a pause
// across an unassign resumes a revoked partition that has it. The
// adapter's goroutine only.
func (p *Part) FetchPaused() bool { return p.applied }

// Next returns one past the highest offset offered for p (or its start):
// where its fetching goes on. Any goroutine.
func (p *Part) Next() int64 { return p.next.Load() }
