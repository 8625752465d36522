package confluent

// This file holds what the poll goroutine does with each partition: track
// and hand out messages, pause a partition whose window is full and resume
// it when there is room, refresh the log end for the lag, and reseek a
// partition librdkafka has stopped fetching.
//
// Every call here runs on the poll goroutine (Run's), like the rebalance
// callback: librdkafka's Pause, Resume and Seek are never issued from two
// goroutines. The engine's TryDeliverBatch and Skip never wait, so the poll
// loop never waits for a worker; whether a partition is being revoked is
// read from the engine (Part.Revoked), the one owner of that state.
//
// Poll returns one message at a time; consecutive messages of one
// partition are gathered in its batch and handed to the engine together
// (one publication of the high mark and one scheduler lock per batch), as
// soon as Poll returns anything else (another partition's message, an
// event, or nothing: the loop polls without waiting while a batch is
// pending, so gathering adds no latency), or batchMax are gathered.

import (
	"errors"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
)

// waitPoll is the Poll timeout while a partition waits for room: acks make
// room without waking Poll, so this bounds the delay before it is resumed.
const waitPoll = 10 // ms

// pstate is what the poll goroutine needs to route a partition's messages
// to the engine and to hold those that do not fit yet. Created at assign,
// dropped at revoke; poll goroutine only.
type pstate struct {
	part   *engine.Part
	ktp    kafka.TopicPartition // topic and partition only, for Pause/Resume/Seek
	next   int64                // one past the highest offset received: lower ones are refetches
	queue  []item               // received, not delivered (did not fit): the partition is paused while non-empty
	paused bool

	// The batch: received, not yet handed to the engine (see flush);
	// empty while queue is not. Only the partition of runner.last has one.
	boffs []int64
	bmsgs []*kafka.Message

	logEnd   int64 // the log end last given to the engine (SetLogEnd); -1 unknown
	eofAt    int64 // offset of the last partition EOF (-1 none): the fetcher is at its end there
	idleFrom int64 // next at the last tick
	idle     int   // ticks in a row without anything received while the log end is above next
}

// item is a message, or a partition EOF (eof.Offset: skip to it).
type item struct {
	msg *kafka.Message
	eof kafka.TopicPartition
}

// state returns the pstate of ktp, or nil if the partition is not (or no
// longer) this member's.
func (r *runner) state(ktp kafka.TopicPartition) *pstate {
	if ktp.Topic == nil {
		return nil
	}
	// Messages come in runs of one partition: skip the map (and hashing the
	// topic) while the partition does not change.
	if ps := r.last; ps != nil && ps.ktp.Partition == ktp.Partition && *ps.ktp.Topic == *ktp.Topic {
		return ps
	}
	ps := r.parts[TopicPartition{Topic: *ktp.Topic, Partition: ktp.Partition}]
	if ps != nil {
		r.last = ps
	}
	return ps
}

// batchMax bounds a partition's batch.
const batchMax = 256

// deliver adds m to its partition's batch, delivering the batch of the
// previous message's partition first if that is another one, or holds m
// (the partition is paused) while earlier messages wait for room.
func (r *runner) deliver(m *kafka.Message) {
	prev := r.last
	ps := r.state(m.TopicPartition)
	if prev != nil && prev != ps {
		r.flushPart(prev)
	}
	if ps == nil {
		return
	}
	off := int64(m.TopicPartition.Offset)
	if off < ps.next {
		return // fetched again after a Resume and Seek: already received
	}
	ps.next = off + 1
	if len(ps.queue) > 0 {
		r.hold(ps, item{msg: m})
		return
	}
	ps.boffs = append(ps.boffs, off)
	ps.bmsgs = append(ps.bmsgs, m)
	if len(ps.boffs) == batchMax {
		r.flushPart(ps)
	}
}

// batched reports whether a batch waits to be handed to the engine: the
// loop then polls without waiting, and calls flush when Poll returns
// anything but a message.
func (r *runner) batched() bool { return r.last != nil && len(r.last.boffs) > 0 }

// flush hands the pending batch to the engine (see flushPart).
func (r *runner) flush() {
	if r.last != nil {
		r.flushPart(r.last)
	}
}

// flushPart hands ps's batch to the engine; what does not fit in the
// window is held (the partition is paused).
func (r *runner) flushPart(ps *pstate) {
	offs, msgs := ps.boffs, ps.bmsgs
	if len(offs) == 0 {
		return
	}
	i := 0
	for i < len(offs) {
		n, err := r.sess.TryDeliverBatch(ps.part, offs[i:], msgs[i:])
		i += n
		if err == nil {
			break
		}
		if errors.Is(err, watermark.ErrWindowFull) {
			for _, m := range msgs[i:] {
				r.hold(ps, item{msg: m})
			}
			break
		}
		if !r.refused(ps, offs[i], err) {
			break // revoked or stopping: the rest is redelivered to the next owner
		}
		i++ // dropped
	}
	clear(msgs)
	ps.boffs, ps.bmsgs = offs[:0], msgs[:0]
}

// refused logs why the message at off was refused (err, neither nil nor
// ErrWindowFull), and reports whether the messages after it may still be
// delivered: not once the partition is revoked or the engine stopped.
func (r *runner) refused(ps *pstate, off int64, err error) bool {
	switch {
	case errors.Is(err, watermark.ErrClosed), errors.Is(err, engine.ErrStopped):
		return false
	case errors.Is(err, watermark.ErrOutOfOrder):
		r.log.Warn("confluent: dropping offset below the partition's start or already delivered",
			"topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition, "offset", off)
	default:
		r.log.Error("confluent: deliver", "topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition,
			"offset", off, "error", err)
	}
	return true
}

// send hands m, a held message, to the engine. It returns false, having
// changed nothing, when m does not fit in the window yet.
func (r *runner) send(ps *pstate, off int64, m *kafka.Message) bool {
	err := r.sess.TryDeliver(ps.part, off, m)
	if errors.Is(err, watermark.ErrWindowFull) {
		return false
	}
	if err != nil {
		r.refused(ps, off, err)
	}
	return true
}

// eof handles librdkafka's partition EOF: no offset below its position that
// was not delivered will ever come (transaction markers, aborted records),
// so the commit point may reach it.
func (r *runner) eof(ktp kafka.TopicPartition) {
	r.flush() // the messages before it first
	ps := r.state(ktp)
	if ps == nil || ktp.Offset < 0 {
		return
	}
	to := int64(ktp.Offset)
	ps.eofAt = to
	r.setLogEnd(ps, max(to, ps.logEnd))
	ps.next = max(ps.next, to)
	if len(ps.queue) > 0 || !r.skip(ps, to) {
		r.hold(ps, item{eof: ktp})
	}
}

// skip declares the offsets below to that were not delivered gaps. Like
// send, it returns false, having changed nothing, when to-1 does not fit.
func (r *runner) skip(ps *pstate, to int64) bool {
	err := ps.part.Watermark().Skip(to)
	switch {
	case err == nil, errors.Is(err, watermark.ErrClosed):
	case errors.Is(err, watermark.ErrWindowFull):
		return false
	default:
		r.log.Error("confluent: skip to partition end", "topic", ps.part.TP.Topic,
			"partition", ps.part.TP.Partition, "offset", to, "error", err)
	}
	return true
}

// hold keeps it for later and pauses the partition.
func (r *runner) hold(ps *pstate, it item) {
	if len(ps.queue) == 0 {
		r.waiting = append(r.waiting, ps)
	}
	ps.queue = append(ps.queue, it)
	if ps.paused {
		return
	}
	if err := r.kc.Pause([]kafka.TopicPartition{ps.ktp}); err != nil {
		r.log.Warn("confluent: pause", "topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition, "error", err)
	}
	ps.paused = true
	if r.cfg.onPause != nil {
		r.cfg.onPause(ps.part.TP, true)
	}
}

// pump delivers what now fits of the held items and resumes the partitions
// whose queue emptied. Called after every Poll while a partition waits: a
// check is one Track attempt per waiting partition.
func (r *runner) pump() {
	kept := r.waiting[:0]
	for _, ps := range r.waiting {
		for len(ps.queue) > 0 {
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
		if len(ps.queue) > 0 {
			kept = append(kept, ps)
			continue
		}
		ps.queue = nil
		r.resume(ps)
	}
	clear(r.waiting[len(kept):])
	r.waiting = kept
}

// resume resumes a paused partition and Seeks it to where it stands:
// librdkafka (2.11) may not fetch a resumed partition again for up to a
// second otherwise. Messages received before the Pause took effect and
// refetched after the Seek are dropped as refetches (deliver).
func (r *runner) resume(ps *pstate) {
	if !ps.paused {
		return
	}
	if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
		r.log.Warn("confluent: resume", "topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition, "error", err)
	}
	r.seek(ps)
	ps.paused = false
	ps.idle = 0
	if r.cfg.onPause != nil {
		r.cfg.onPause(ps.part.TP, false)
	}
}

func (r *runner) seek(ps *pstate) {
	at := ps.ktp
	at.Offset = kafka.Offset(ps.next)
	if err := r.kc.Seek(at, 0); err != nil {
		r.log.Warn("confluent: seek", "topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition,
			"offset", ps.next, "error", err)
	}
}

// forget drops a revoked partition: its held messages are never delivered
// (the next owner gets them from the committed offset). A paused partition
// is resumed first: librdkafka keeps the pause flag across an unassign and
// would apply it when the partition comes back (#5591).
func (r *runner) forget(tp TopicPartition) {
	ps := r.parts[tp]
	if ps == nil {
		return
	}
	delete(r.parts, tp)
	if r.last == ps {
		r.last = nil
	}
	clear(ps.bmsgs) // not tracked: redelivered to the next owner
	ps.boffs, ps.bmsgs = nil, nil
	if len(ps.queue) > 0 {
		clear(ps.queue)
		ps.queue = nil
		for i, w := range r.waiting {
			if w == ps {
				r.waiting = append(r.waiting[:i], r.waiting[i+1:]...)
				break
			}
		}
	}
	if ps.paused {
		if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
			r.log.Debug("confluent: resume before unassign", "topic", tp.Topic, "partition", tp.Partition, "error", err)
		}
		ps.paused = false
	}
}

func (r *runner) setLogEnd(ps *pstate, v int64) {
	if v != ps.logEnd {
		ps.logEnd = v
		ps.part.SetLogEnd(v)
	}
}

// tick runs every CommitInterval on the poll goroutine: it refreshes every
// partition's log end from librdkafka's cached high watermark (no request:
// every fetch response updates it), so that Stats' Lag is fresh while a
// partition is consumed or stalled, not only at its EOF; and it reseeks a
// partition that librdkafka stopped fetching (see reseek).
func (r *runner) tick() {
	for _, ps := range r.parts {
		if _, hi, err := r.kc.GetWatermarkOffsets(ps.part.TP.Topic, ps.part.TP.Partition); err == nil && hi >= 0 {
			r.setLogEnd(ps, hi)
		}
		le := ps.logEnd
		// Stalled: nothing received since the last tick although the log
		// end is above the position, not paused by us, and the fetcher did
		// not report its end there (under read_committed an open
		// transaction holds the end below the high watermark).
		if ps.next != ps.idleFrom || ps.paused || le <= ps.next || ps.eofAt == ps.next {
			ps.idleFrom, ps.idle = ps.next, 0
			continue
		}
		ps.idle++
		if time.Duration(ps.idle)*r.opts.CommitInterval >= r.stallAfter {
			r.reseek(ps.part)
			ps.idle = 0
		}
	}
}

// reseek wakes the fetcher of p, a partition assigned to this member that
// librdkafka does not fetch although there is more to read: it logs it,
// resumes it (a stale pause flag, librdkafka #5591, is the known cause) and
// seeks it to where it stands. It does nothing for a partition that is not
// this member's, is being revoked, is paused because its window is full,
// or has nothing more to read. Poll goroutine only.
func (r *runner) reseek(p *engine.Part) {
	ps := r.parts[p.TP]
	if ps == nil || ps.part != p || p.Revoked() || ps.paused {
		return
	}
	wm := p.Watermark()
	if ps.logEnd <= ps.next || ps.next-wm.Committable() >= wm.Window() {
		return
	}
	if r.cfg.onReseek != nil {
		r.cfg.onReseek(p.TP)
	}
	r.log.Warn("confluent: partition not fetched although behind its log end, seeking it",
		"topic", p.TP.Topic, "partition", p.TP.Partition, "position", ps.next, "log_end", ps.logEnd)
	if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
		r.log.Warn("confluent: resume", "topic", p.TP.Topic, "partition", p.TP.Partition, "error", err)
	}
	r.seek(ps)
}
