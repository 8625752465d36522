package confluent

// This file holds the feeder: the goroutine that tracks the messages the
// poll loop received and queues them to the engine's workers, and that
// pauses a partition whose window is full and resumes it when there is room.
//
// Why a goroutine of its own: librdkafka delivers every partition through
// one Poll loop, which is the consumer's critical path. The poll loop only
// polls and passes batches of messages here (one channel operation per
// batch); tracking and the hand-off to the workers run beside it.
//
// Why pause instead of wait: a full window must not stall the other
// partitions (the engine's Deliver would wait; the feeder uses TryDeliver
// and Skip, which do not). A message that does not fit is kept in its partition's queue, the partition is Paused (librdkafka), and
// the queue is retried every millisecond until there is room; then the
// partition is Resumed.
//
// The feeder is the only goroutine that calls Track and Skip (through the
// engine's TryDeliver, and directly) and that reads or writes the pstates. The
// rebalance callback changes the set of partitions through post, which runs
// a function here after every batch received before it; a revoke also marks
// the partitions revoked (pstate.revoked), which the feeder checks.

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
)

const (
	batchSize    = 256                   // messages per hand-off from the poll loop to the feeder
	pumpInterval = time.Millisecond      // retry period of the partitions waiting for room
	feedDepth    = 4                     // batches in flight between the poll loop and the feeder
	_            = batchSize * feedDepth // at most ~1000 messages received and not yet tracked
)

// pstate is an assigned partition as the feeder sees it. Feeder goroutine
// only (created by the rebalance callback, handed over through post),
// except revoked, ctx and cancel.
type pstate struct {
	tp     TopicPartition
	ktp    kafka.TopicPartition // topic and partition only, for Pause/Resume
	part   *engine.Part
	wm     *watermark.Partition
	next   int64  // one past the highest offset received: lower ones are redeliveries
	queue  []item // received, not yet delivered (did not fit); the partition is paused while non-empty
	paused bool

	// Set by the rebalance callback (poll goroutine) at revoke: the feeder
	// drops the partition's messages, and a Deliver waiting for a worker
	// gives up (the message is counted unackable, so the drain skips it).
	revoked atomic.Bool
	ctx     context.Context // ends at revoke (cancel), or with the feeder's
	cancel  context.CancelFunc
}

// item is a message, or a partition EOF (a skip to its offset), in the order
// the poll loop received them.
type item struct {
	msg *kafka.Message
	eof kafka.TopicPartition
}

// cmd is what the poll loop sends the feeder: a batch, or a function to run.
type cmd struct {
	batch []item
	fn    func()
}

// feed is the feeder goroutine. It returns when r.in is closed; once
// r.stopping is set it tracks nothing more (what is left is not handed out,
// so it is not committed and is delivered again).
//
// Deliveries run with their partition's context (pstate.ctx), a child of
// r.fctx. r.fctx does not end at shutdown (only when the feeder is given up
// on, see run): a message is tracked only when it fits, and then waits for a
// worker (the workers outlive the feeder), so that no tracked message is
// left behind undispatched and the drain has only messages it can wait for.
// A partition's context ends at its revoke.
func (r *runner) feed() {
	defer close(r.feedDone)
	timer := time.NewTimer(pumpInterval)
	timer.Stop()
	armed := false
	for {
		if len(r.blocked) > 0 && !armed {
			timer.Reset(pumpInterval)
			armed = true
		}
		select {
		case c, ok := <-r.in:
			if !ok {
				timer.Stop()
				return
			}
			if c.fn != nil {
				c.fn()
				continue
			}
			for i, it := range c.batch {
				if r.stopping.Load() {
					c.batch[i] = item{}
					continue
				}
				if it.msg != nil {
					r.deliver(it.msg)
				} else {
					r.eof(it.eof)
				}
				c.batch[i] = item{}
			}
			select {
			case r.free <- c.batch[:0]:
			default:
			}
		case <-timer.C:
			armed = false
			if !r.stopping.Load() {
				r.pump()
			}
		}
	}
}

// post has fn run on the feeder after every batch sent before, and before
// every batch sent after; it does not wait for it: the feeder can be blocked
// for as long as a handler runs (waiting for a free worker), and the
// rebalance callback must not be. It returns false, and fn never runs, if
// Run stops first (see handOff). Poll goroutine only.
func (r *runner) post(fn func()) bool {
	if !r.flush() {
		return false
	}
	return r.handOff(cmd{fn: fn})
}

// flush hands the batch being filled to the feeder. It returns false if
// Run stops first: the batch is dropped (never tracked, so never committed:
// delivered again). Poll goroutine only.
func (r *runner) flush() bool {
	if len(r.batch) == 0 {
		return true
	}
	if !r.handOff(cmd{batch: r.batch}) {
		clear(r.batch)
		r.batch = r.batch[:0]
		return false
	}
	select {
	case r.batch = <-r.free:
	default:
		r.batch = make([]item, 0, batchSize)
	}
	return true
}

// handOff sends c to the feeder, or returns false when Run's ctx ends or a
// handler failed (Stop policy) first. The feeder can be blocked for as long
// as a handler runs (it waits for a free worker), and a handler may ignore
// its context: were the poll goroutine to wait for it unconditionally, it
// would never see the stop, and Close would never return.
func (r *runner) handOff(c cmd) bool {
	select {
	case r.in <- c:
		return true
	default:
	}
	if r.cfg.onWait != nil {
		r.cfg.onWait()
	}
	select {
	case r.in <- c:
		return true
	case <-r.stopped:
		return false
	case <-r.eng.Fatal():
		return false
	}
}

func (r *runner) state(ktp kafka.TopicPartition) *pstate {
	if ktp.Topic == nil {
		return nil
	}
	// Messages come in runs of one partition: skip the map (and hashing
	// the topic) while the partition does not change.
	if ps := r.last; ps != nil && ps.tp.Partition == ktp.Partition && ps.tp.Topic == *ktp.Topic && !ps.revoked.Load() {
		return ps
	}
	ps := r.parts[TopicPartition{Topic: *ktp.Topic, Partition: ktp.Partition}]
	if ps != nil && ps.revoked.Load() {
		r.forget(ps)
		return nil
	}
	r.last = ps
	return ps
}

// forget removes a revoked partition and drops its queue.
func (r *runner) forget(ps *pstate) {
	if r.parts[ps.tp] == ps {
		delete(r.parts, ps.tp)
	}
	if r.blocked[ps.tp] == ps {
		delete(r.blocked, ps.tp)
	}
	clear(ps.queue)
	ps.queue = nil
	r.last = nil
}

// deliver hands m to the engine, or queues it (pausing the partition) when
// its window is full.
func (r *runner) deliver(m *kafka.Message) {
	ps := r.state(m.TopicPartition)
	if ps == nil {
		return // not (or no longer) ours
	}
	off := int64(m.TopicPartition.Offset)
	if off < ps.next {
		return // fetched again after a Pause/Resume: already received
	}
	ps.next = off + 1
	if len(ps.queue) > 0 || !r.send(ps, off, m) {
		r.enqueue(ps, item{msg: m})
	}
}

// send hands m to the engine. It returns false, having changed nothing,
// when m does not fit in the window yet (the engine does not wait for room:
// the caller queues m and pauses the partition).
func (r *runner) send(ps *pstate, off int64, m *kafka.Message) bool {
	ctx := ps.ctx
	err := r.sess.TryDeliver(ps.part, off, m)
	switch {
	case err == nil:
	case errors.Is(err, watermark.ErrWindowFull):
		return false
	case ctx.Err() != nil, errors.Is(err, watermark.ErrClosed):
	case errors.Is(err, watermark.ErrOutOfOrder):
		r.log.Warn("confluent: dropping offset below the partition's start or already delivered",
			"topic", ps.tp.Topic, "partition", ps.tp.Partition, "offset", off)
	default:
		r.log.Error("confluent: deliver", "topic", ps.tp.Topic, "partition", ps.tp.Partition, "offset", off, "error", err)
	}
	return true
}

// eof handles librdkafka's partition EOF: no offset below its position that
// was not delivered will ever come (transaction markers, aborted records),
// so the commit point may reach the log end.
func (r *runner) eof(ktp kafka.TopicPartition) {
	ps := r.state(ktp)
	if ps == nil || ktp.Offset < 0 {
		return
	}
	to := int64(ktp.Offset)
	ps.part.SetLogEnd(to)
	ps.next = max(ps.next, to)
	if len(ps.queue) > 0 || !r.skip(ps, to) {
		r.enqueue(ps, item{eof: ktp})
	}
}

// skip declares the offsets below to not delivered gaps. Like send, it
// returns false, having changed nothing, when to-1 does not fit in the
// window yet.
func (r *runner) skip(ps *pstate, to int64) bool {
	err := ps.wm.Skip(to)
	switch {
	case err == nil:
	case errors.Is(err, watermark.ErrWindowFull):
		return false
	case ps.ctx.Err() == nil && !errors.Is(err, watermark.ErrClosed):
		r.log.Error("confluent: skip to partition end", "topic", ps.tp.Topic, "partition", ps.tp.Partition, "offset", to, "error", err)
	}
	return true
}

func (r *runner) enqueue(ps *pstate, it item) {
	ps.queue = append(ps.queue, it)
	r.blocked[ps.tp] = ps
	if !ps.paused {
		if err := r.kc.Pause([]kafka.TopicPartition{ps.ktp}); err != nil {
			r.log.Warn("confluent: pause", "topic", ps.tp.Topic, "partition", ps.tp.Partition, "error", err)
		}
		ps.paused = true
		if r.cfg.onPause != nil {
			r.cfg.onPause(ps.tp, true)
		}
	}
}

// pump delivers what now fits of the queued items and resumes the
// partitions whose queue emptied.
func (r *runner) pump() {
	for tp, ps := range r.blocked {
		if ps.revoked.Load() {
			r.forget(ps)
			continue
		}
		for len(ps.queue) > 0 && !r.stopping.Load() {
			it := ps.queue[0]
			var sent bool
			if it.msg != nil {
				sent = r.send(ps, int64(it.msg.TopicPartition.Offset), it.msg)
			} else {
				sent = r.skip(ps, int64(it.eof.Offset))
			}
			if !sent {
				break
			}
			ps.queue[0] = item{}
			ps.queue = ps.queue[1:]
		}
		if len(ps.queue) == 0 {
			ps.queue = nil
			delete(r.blocked, tp)
			r.resume(ps)
		}
	}
}

func (r *runner) resume(ps *pstate) {
	if !ps.paused {
		return
	}
	if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
		r.log.Warn("confluent: resume", "topic", ps.tp.Topic, "partition", ps.tp.Partition, "error", err)
	}
	// librdkafka (2.11) may not fetch a resumed partition again for up
	// to a second; a Seek to where it stands wakes its fetcher at once.
	// Messages of this partition that the poll loop received before the
	// Pause took effect are ahead of the refetched ones and move next on:
	// the refetched copies are then dropped as redeliveries.
	at := ps.ktp
	at.Offset = kafka.Offset(ps.next)
	if err := r.kc.Seek(at, 0); err != nil {
		r.log.Warn("confluent: seek after resume", "topic", ps.tp.Topic, "partition", ps.tp.Partition, "error", err)
	}
	ps.paused = false
	if r.cfg.onPause != nil {
		r.cfg.onPause(ps.tp, false)
	}
}
