package confluent

// This file holds the partitions assigned to this member whose start is
// not known yet: the reads of their commits or log bounds (start.go) kept
// failing for a transient reason (a leader or coordinator moving, a cut
// connection, librdkafka's "no offset, no error" answer) for the whole
// bound of the rebalance callback. They do not end Run: they are handed to
// librdkafka paused, at the log start (nothing is fetched, and a message
// fetched anyway is dropped: the partition is not registered), and the poll
// loop reads their starts again with backoff; once known, the partitions
// are registered with the engine, resumed and sought to their starts. A
// revoke or loss forgets them. Poll goroutine only.
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
	ktps     map[TopicPartition]kafka.TopicPartition // topic and partition only
	since    time.Time                               // the episode's first failure
	next     time.Time                               // the next read
	backoff  *engine.Backoff
	attempts int   // reads failed in this episode
	err      error // the last failure
}

// await takes ktps, newly assigned, whose starts could not be read (err):
// it assigns them paused and leaves them to the poll loop (retryPending).
func (r *runner) await(kc *kafka.Consumer, ktps []kafka.TopicPartition, err error) {
	p := &r.pending
	if len(p.ktps) == 0 {
		p.ktps = make(map[TopicPartition]kafka.TopicPartition)
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
		p.ktps[tps[i]] = bare[i]
	}
	p.attempts++
	p.err = err
	p.next = time.Now().Add(p.backoff.Next())
	r.ack(kc, at, true)
	if perr := kc.Pause(bare); perr != nil {
		r.log.Warn("confluent: pausing partitions waiting for their start", "error", perr)
	}
	r.log.Warn("confluent: start of assigned partitions unreadable, retrying with backoff (they are consumed once it is read)",
		"partitions", engine.FormatPartitions(tps), "error", err)
}

// retryPending reads the starts of the partitions waiting for them, when
// their backoff is over. Each read is bounded by a quarter of
// RequestTimeout: the poll loop goes on between reads. Once read, the
// partitions are registered, resumed and sought to their starts; a
// permanent error stops Run with ErrAssign.
func (r *runner) retryPending() {
	p := &r.pending
	if len(p.ktps) == 0 || time.Now().Before(p.next) {
		return
	}
	tps := slices.SortedFunc(maps.Keys(p.ktps), compareTP)
	ktps := make([]kafka.TopicPartition, len(tps))
	for i, tp := range tps {
		ktps[i] = p.ktps[tp]
	}
	starts, err := r.starts(r.kc, ktps, time.Now().Add(max(r.opts.RequestTimeout/4, time.Millisecond)))
	if err != nil {
		if permanent(err) {
			r.err = fmt.Errorf("%w: %w", ErrAssign, err)
			return
		}
		p.attempts++
		p.err = err
		p.next = time.Now().Add(p.backoff.Next())
		r.log.Debug("confluent: start of assigned partitions still unreadable", "partitions", engine.FormatPartitions(tps),
			"attempts", p.attempts, "error", err)
		return
	}
	clear(p.ktps)
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
		ktp, ok := p.ktps[tp]
		if !ok {
			rest = append(rest, tp)
			continue
		}
		delete(p.ktps, tp)
		if err := r.kc.Resume([]kafka.TopicPartition{ktp}); err != nil {
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
