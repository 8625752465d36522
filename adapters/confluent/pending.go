package confluent

// This file holds the partitions assigned to this member whose start is
// not known yet: the reads of their commits or log bounds (start.go) kept
// failing for a transient reason (a leader or coordinator moving, a cut
// connection, librdkafka's "no offset, no error" answer) for the whole
// bound of the rebalance callback. They do not end Run: they are handed to
// librdkafka paused, at the log start (nothing is fetched, and a message
// fetched anyway is dropped: the partition is not registered), and the poll
// loop reads their starts again with backoff, on a goroutine of its own (the
// loop goes on polling the other partitions meanwhile); once known, the
// partitions are registered with the engine, resumed and sought to their
// starts. A revoke or loss forgets them, and a read in flight for them then
// counts for nothing. Poll goroutine only, but the read.
//
// Why paused in librdkafka rather than left out of it: under the EAGER
// protocol the callback must Assign the member's whole set (a later Assign
// replaces the assignment and would restart every running partition), and
// one mechanism for both protocols keeps the revoke the same.

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// pendingStarts is the set of partitions waiting for their start.
type pendingStarts struct {
	ktps     map[TopicPartition]pendingPart
	seq      uint64    // the last pendingPart.seq given
	since    time.Time // the episode's first failure
	next     time.Time // the next read
	backoff  *engine.Backoff
	attempts int              // reads failed in this episode
	err      error            // the last failure
	read     chan pendingRead // the read in flight; nil: none
}

// failed counts a failed read of the starts and sets the next one.
func (p *pendingStarts) failed(err error) {
	p.attempts++
	p.err = err
	p.next = time.Now().Add(p.backoff.Next())
}

// pendingPart is a partition waiting for its start.
type pendingPart struct {
	ktp kafka.TopicPartition // topic and partition only
	seq uint64               // tells this assignment of it from a later one
}

// pendingRead is a read of the starts of pending partitions, as they were
// when it began.
type pendingRead struct {
	parts  []pendingPart
	starts []startPoint
	err    error
}

// await takes ktps, newly assigned, whose starts could not be read (err):
// it assigns them paused and leaves them to the poll loop (retryPending).
func (r *runner) await(kc *kafka.Consumer, ktps []kafka.TopicPartition, err error) {
	p := &r.pending
	if len(p.ktps) == 0 {
		p.ktps = make(map[TopicPartition]pendingPart)
		p.since, p.attempts = time.Now(), 0
		p.backoff = engine.NewRetryBackoff(r.opts.RetryBackoff)
	}
	at := make([]kafka.TopicPartition, len(ktps))
	bare := make([]kafka.TopicPartition, len(ktps))
	tps := make([]TopicPartition, len(ktps))
	for i, ktp := range ktps {
		bare[i] = kafka.TopicPartition{Topic: ktp.Topic, Partition: ktp.Partition}
		at[i] = kafka.TopicPartition{Topic: ktp.Topic, Partition: ktp.Partition, Offset: kafka.OffsetBeginning}
		tps[i] = toTP(ktp)
		p.seq++
		p.ktps[tps[i]] = pendingPart{bare[i], p.seq}
	}
	p.failed(err)
	r.ack(kc, at, true)
	if perr := kc.Pause(bare); perr != nil {
		r.log.Warn("confluent: pausing partitions waiting for their start", "error", perr)
	}
	r.log.Warn("confluent: start of assigned partitions unreadable, retrying with backoff (they are consumed once it is read)",
		"partitions", engine.FormatPartitions(tps), "error", err)
}

// retryPending starts a read of the starts of the partitions waiting for
// them when their backoff is over, on a goroutine of its own (counted in
// r.calls: Close waits for it), and takes its outcome once it is in (see
// pendingRead). Each read is bounded by a quarter of RequestTimeout.
func (r *runner) retryPending() {
	p := &r.pending
	if p.read != nil {
		select {
		case res := <-p.read:
			p.read = nil
			r.pendingRead(res)
		default:
		}
		return
	}
	if len(p.ktps) == 0 || time.Now().Before(p.next) {
		return
	}
	parts := make([]pendingPart, 0, len(p.ktps))
	ktps := make([]kafka.TopicPartition, 0, len(p.ktps))
	for _, tp := range slices.SortedFunc(maps.Keys(p.ktps), compareTP) {
		parts, ktps = append(parts, p.ktps[tp]), append(ktps, p.ktps[tp].ktp)
	}
	deadline := time.Now().Add(max(r.opts.RequestTimeout/4, time.Millisecond))
	read := make(chan pendingRead, 1)
	p.read = read
	r.calls.Add(1)
	go func() {
		defer r.calls.Done()
		starts, err := r.starts(r.kc, ktps, deadline)
		read <- pendingRead{parts, starts, err}
	}()
}

// pendingRead takes the outcome of a read of pending starts. Partitions
// revoked (or revoked and assigned again) while it ran are left out. Once
// read, the partitions are registered, resumed and sought to their starts;
// a permanent error stops Run with ErrAssign.
func (r *runner) pendingRead(res pendingRead) {
	p := &r.pending
	var tps []TopicPartition
	var ktps []kafka.TopicPartition
	var starts []startPoint
	for i, pp := range res.parts {
		tp := toTP(pp.ktp)
		if cur, ok := p.ktps[tp]; ok && cur.seq == pp.seq {
			tps, ktps = append(tps, tp), append(ktps, pp.ktp)
			if res.err == nil {
				starts = append(starts, res.starts[i])
			}
		}
	}
	if len(tps) == 0 {
		return
	}
	if err := res.err; err != nil {
		if permanent(err) {
			r.err = fmt.Errorf("%w: %w", ErrAssign, err)
			return
		}
		p.failed(err)
		r.log.Debug("confluent: start of assigned partitions still unreadable", "partitions", engine.FormatPartitions(tps),
			"attempts", p.attempts, "error", err)
		return
	}
	for _, tp := range tps {
		delete(p.ktps, tp)
	}
	if err := r.take(ktps, starts); err != nil {
		r.err = err
		return
	}
	for _, ktp := range ktps {
		ps := r.parts[toTP(ktp)]
		if err := r.kc.Resume([]kafka.TopicPartition{ps.ktp}); err != nil {
			r.log.Warn("confluent: resume", "topic", ps.part.TP.Topic, "partition", ps.part.TP.Partition, "error", err)
		}
		r.seek(ps)
	}
	r.log.Info("confluent: start of assigned partitions read, consuming them", "partitions", engine.FormatPartitions(tps),
		"failed_reads", p.attempts, "after", time.Since(p.since).Round(time.Millisecond), "last_error", p.err)
	r.assigned(tps)
}

// forgetPending drops the partitions of tps that wait for their start (a
// revoke or loss): nothing was handed out or committed for them. It
// resumes them in librdkafka, which keeps the pause flag across an
// unassign (#5591). It returns the others.
func (r *runner) forgetPending(tps []TopicPartition) []TopicPartition {
	p := &r.pending
	if len(p.ktps) == 0 {
		return tps
	}
	rest := tps[:0:0]
	for _, tp := range tps {
		pp, ok := p.ktps[tp]
		if !ok {
			rest = append(rest, tp)
			continue
		}
		delete(p.ktps, tp)
		if err := r.kc.Resume([]kafka.TopicPartition{pp.ktp}); err != nil {
			r.log.Debug("confluent: resume before unassign", "topic", tp.Topic, "partition", tp.Partition, "error", err)
		}
	}
	if len(p.ktps) == 0 && len(rest) < len(tps) {
		r.log.Info("confluent: partitions waiting for their start revoked", "failed_reads", p.attempts,
			"after", time.Since(p.since).Round(time.Millisecond), "last_error", p.err)
	}
	return rest
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}
