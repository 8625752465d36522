package confluent

// This file holds what the poll goroutine does with each partition: offer
// its messages to the engine (which tracks what fits in the window and
// keeps the rest: nothing is held here), apply the engine's pause and
// resume decisions, refresh the log end for the lag, and reseek a
// partition librdkafka has stopped fetching.
//
// Every call here runs on the poll goroutine (Run's), like the rebalance
// callback: librdkafka's Pause, Resume and Seek are never issued from two
// goroutines. Offer never waits, so the poll loop never waits for a
// worker; whether a partition is being revoked is read from the engine
// (Part.Revoked), the one owner of that state.
//
// Poll returns one message at a time; consecutive messages of one
// partition are gathered in its batch and offered together (one
// publication of the high mark and one scheduler lock per batch), as soon
// as Poll returns anything else (another partition's message, an event, or
// nothing: the loop polls without waiting while a batch is pending, so
// gathering adds no latency), or batchMax are gathered, or their bytes
// (key, value and headers, as the engine counts them) reach a sixteenth of
// MaxBufferedBytes: a gathered batch is counted by neither librdkafka's
// queue nor the engine's budget until it is offered.

import (
	"errors"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
)

// waitPoll is the Poll timeout while a partition is paused: the engine's
// resume does not wake Poll, so this bounds the delay before it is applied.
const waitPoll = 10 // ms

// pstate is what the poll goroutine needs to route a partition's messages
// to the engine. Created at assign, dropped at revoke; poll goroutine only.
type pstate struct {
	part *engine.Part
	ktp  kafka.TopicPartition // topic and partition only, for Pause/Resume/Seek

	// The batch: received, not yet offered (see flush). Only the
	// partition of runner.last has one.
	boffs  []int64
	bmsgs  []*kafka.Message
	bbytes int // the batch's bytes (messageSize)

	logEnd   int64 // the log end last given to the engine (SetLogEnd); -1 unknown
	eofAt    int64 // offset of the last partition EOF (-1 none): the fetcher is at its end there
	idleFrom int64 // Next at the last tick
	idle     int   // ticks in a row without anything received while the log end is above Next
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

// batchMax bounds a partition's batch; runner.batchBytes its bytes.
const batchMax = 256

// deliver adds m to its partition's batch, offering the batch of the
// previous message's partition first if that is another one.
func (r *runner) deliver(m *kafka.Message) {
	prev := r.last
	ps := r.state(m.TopicPartition)
	if prev != nil && prev != ps {
		r.flushPart(prev)
	}
	if ps == nil {
		return
	}
	ps.boffs = append(ps.boffs, int64(m.TopicPartition.Offset))
	ps.bmsgs = append(ps.bmsgs, m)
	ps.bbytes += messageSize(&m)
	if len(ps.boffs) == batchMax || ps.bbytes >= r.batchBytes {
		r.flushPart(ps)
	}
}

// batched reports whether a batch waits to be offered: the loop then polls
// without waiting, and calls flush when Poll returns anything but a
// message.
func (r *runner) batched() bool { return r.last != nil && len(r.last.boffs) > 0 }

// flush offers the pending batch (see flushPart).
func (r *runner) flush() {
	if r.last != nil {
		r.flushPart(r.last)
	}
}

// flushPart offers ps's batch to the engine, up to end (a partition EOF;
// 0 none). Messages fetched again after a Resume and Seek are dropped by
// the engine as stale.
func (r *runner) flushPart(ps *pstate, end ...int64) {
	offs, msgs := ps.boffs, ps.bmsgs
	var e int64
	if len(end) > 0 {
		e = end[0]
	}
	if len(offs) == 0 && e == 0 {
		return
	}
	if r.cfg.onOffer != nil {
		r.cfg.onOffer(ps.part.TP, len(msgs), ps.bbytes)
	}
	if _, err := r.sess.Offer(ps.part, offs, msgs, e); err != nil &&
		!errors.Is(err, watermark.ErrClosed) && !errors.Is(err, engine.ErrStopped) {
		r.log.Error("confluent: offer", "topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition, "error", err)
	}
	clear(msgs)
	ps.boffs, ps.bmsgs, ps.bbytes = offs[:0], msgs[:0], 0
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
	r.flushPart(ps, to)
}

// applyFlow pauses or resumes p in librdkafka (Engine.ApplyFlow). A resume
// Seeks the partition to where it stands: librdkafka (2.11) may not fetch a
// resumed partition again for up to a second otherwise. Poll goroutine.
func (r *runner) applyFlow(p *engine.Part, pause bool) {
	ps := r.parts[p.TP]
	if ps == nil || ps.part != p {
		return
	}
	if pause {
		if err := r.kc.Pause([]kafka.TopicPartition{ps.ktp}); err != nil {
			r.log.Warn("confluent: pause", "topic", p.TP.Topic, "partition", p.TP.Partition, "error", err)
		}
		r.paused++
	} else {
		if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
			r.log.Warn("confluent: resume", "topic", p.TP.Topic, "partition", p.TP.Partition, "error", err)
		}
		r.seek(ps)
		ps.idle = 0
		r.paused--
	}
	if r.cfg.onPause != nil {
		r.cfg.onPause(p.TP, pause)
	}
}

func (r *runner) seek(ps *pstate) {
	at := ps.ktp
	at.Offset = kafka.Offset(ps.part.Next())
	if err := r.kc.Seek(at, 0); err != nil {
		r.log.Warn("confluent: seek", "topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition,
			"offset", ps.part.Next(), "error", err)
	}
}

// forget drops a revoked partition; the engine dropped what it had not
// handed out (the next owner gets it from the committed offset). A paused
// partition is resumed first: librdkafka keeps the pause flag across an
// unassign and would apply it when the partition comes back (#5591).
func (r *runner) forget(tp TopicPartition) {
	ps := r.parts[tp]
	if ps == nil {
		return
	}
	delete(r.parts, tp)
	if r.last == ps {
		r.last = nil
	}
	clear(ps.bmsgs) // not offered: redelivered to the next owner
	ps.boffs, ps.bmsgs = nil, nil
	if ps.part.FetchPaused() {
		if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
			r.log.Debug("confluent: resume before unassign", "topic", tp.Topic, "partition", tp.Partition, "error", err)
		}
		r.paused--
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
		le, next := ps.logEnd, ps.part.Next()
		// Stalled: nothing received since the last tick although the log
		// end is above the position, not paused by us, and the fetcher did
		// not report its end there (under read_committed an open
		// transaction holds the end below the high watermark).
		if next != ps.idleFrom || ps.part.FetchPaused() || le <= next || ps.eofAt == next {
			ps.idleFrom, ps.idle = next, 0
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
	if ps == nil || ps.part != p || p.Revoked() || p.FetchPaused() {
		return
	}
	wm := p.Watermark()
	if ps.logEnd <= p.Next() || p.Next()-wm.Committable() >= wm.Window() {
		return
	}
	if r.cfg.onReseek != nil {
		r.cfg.onReseek(p.TP)
	}
	r.log.Warn("confluent: partition not fetched although behind its log end, seeking it",
		"topic", p.TP.Topic, "partition", p.TP.Partition, "position", p.Next(), "log_end", ps.logEnd)
	if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
		r.log.Warn("confluent: resume", "topic", p.TP.Topic, "partition", p.TP.Partition, "error", err)
	}
	r.seek(ps)
}
