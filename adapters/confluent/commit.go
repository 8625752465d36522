package confluent

// This file holds the engine's commit function: StoreOffsets (refused by
// librdkafka for partitions not assigned) then Commit (sent with this
// member's generation), and CommitOffsets for the commits whose metadata
// alone changed.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// commit is the engine's CommitFunc: StoreOffsets (refused by librdkafka
// for partitions not assigned to this member) then Commit, which sends the
// stored offsets with this member's generation. Called by the engine's
// commit loop and, during a revoke, from the rebalance callback; the engine
// serialises the calls (under its commit mutex).
//
// Commit sends a stored offset only when it is greater than the committed
// one: a commit whose offset did not move but whose metadata (the done-set
// above the commit point) grew is left out of Commit's result (or Commit
// answers ErrNoOffset). Those partitions are sent with CommitOffsets, see
// commitExplicit.
//
// Bounds. The librdkafka calls are made on the calling goroutine and never
// abandoned: a commit returns when librdkafka has the coordinator's answer
// or gives up, so the engine's commit lock bounds what reaches the broker,
// and Close destroys the handle only after the last call returned. ctx is
// checked between calls (before each, and in the retries' backoff), not
// during one: librdkafka cannot cancel a commit. What bounds one call
// (librdkafka 2.11): each OffsetCommit request times out after
// socket.timeout.ms (RequestTimeout, at least FetchMaxWait + 1s; see
// socketTimeoutMs; librdkafka looks for timed out requests once a second, so
// up to a second later) and is sent at most three times (librdkafka retries
// a timed out or failed request twice, after retry.backoff.ms doubling up to
// retry.backoff.max.ms); a commit that finds no coordinator, or loses it
// (NOT_COORDINATOR, a broken connection), waits for one at most
// session.timeout.ms, once, then is sent again within the same bounds. So a
// commit held by a slow or silent coordinator returns at most about 3 x
// (socket.timeout.ms + 1s) after it started (the error is a kafka.Error,
// ErrTimedOut; measured: 5.5s for 1.05s), whatever ctx says, and at worst
// about session.timeout.ms + 6 x (socket.timeout.ms + 1s). That is how the
// engine's "return soon after ctx ends" is met: within that bound, and
// commitRetrying makes no new call once ctx ended. One case librdkafka does
// not bound: a coordinator it cannot connect to at all leaves the request
// unsent, and an unsent request is retried without limit (librdkafka #3740);
// librdkafka's own consumer close waits for such a commit too.
func (r *runner) commit(ctx context.Context, offs []engine.Offset) ([]error, error) {
	errs := make([]error, len(offs))
	tps := make([]kafka.TopicPartition, 0, len(offs))
	idx := make(map[TopicPartition]int, len(offs))
	// A lost assignment (session or poll timeout) is being released: the
	// engine stops committing its partitions once Session.Lose holds the
	// commit lock; a commit that was collected before is refused here.
	lost := r.kc.AssignmentLost()
	for i, o := range offs {
		if lost {
			errs[i] = errLost
			continue
		}
		topic, meta := o.TP.Topic, o.Metadata
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: o.TP.Partition,
			Offset: kafka.Offset(o.Offset), Metadata: &meta})
		idx[o.TP] = i
	}
	if len(tps) > 0 {
		if err := r.store(ctx, tps, idx, errs); err != nil {
			if r.cfg.onCommit != nil {
				for i := range errs {
					errs[i] = err
				}
				r.cfg.onCommit(offs, errs)
			}
			return nil, err
		}
	}
	if r.cfg.onCommit != nil {
		r.cfg.onCommit(offs, errs)
	}
	return errs, nil
}

// store stores and commits tps (errs[idx[tp]] nil so far) and sets their
// per-partition errors.
func (r *runner) store(ctx context.Context, tps []kafka.TopicPartition, idx map[TopicPartition]int, errs []error) error {
	stored, err := r.kc.StoreOffsets(tps)
	if err != nil && len(stored) == 0 {
		return fmt.Errorf("store offsets: %w", err)
	}
	// rd_kafka_offsets_store answers NO_ERROR when at least one partition
	// was stored: the per-partition errors are read whatever err is.
	for _, s := range stored {
		if i, ok := idx[toTP(s)]; ok && s.Error != nil {
			errs[i] = fmt.Errorf("store offset: %w", s.Error)
		}
	}
	send := tps[:0:0]
	for _, tp := range tps {
		if errs[idx[toTP(tp)]] == nil {
			send = append(send, tp)
		}
	}
	if len(send) == 0 {
		return nil
	}
	res, err := r.commitRetrying(ctx, r.kc.Commit)
	var kerr kafka.Error
	switch {
	case errors.As(err, &kerr) && kerr.Code() == kafka.ErrNoOffset:
		res = nil // nothing sent: every partition is metadata-only
	case err != nil:
		if ctx.Err() != nil {
			return err
		}
		for _, tp := range send {
			errs[idx[toTP(tp)]] = fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	sent := make(map[TopicPartition]bool, len(res))
	for _, c := range res {
		tp := toTP(c)
		sent[tp] = true
		if i, ok := idx[tp]; ok && c.Error != nil && errs[i] == nil {
			errs[i] = fmt.Errorf("commit: %w", c.Error)
		}
	}
	var metaOnly []kafka.TopicPartition
	for _, tp := range send {
		if !sent[toTP(tp)] {
			metaOnly = append(metaOnly, tp)
		}
	}
	if len(metaOnly) > 0 {
		return r.commitExplicit(ctx, metaOnly, idx, errs)
	}
	return nil
}

// commitExplicit sends tps, whose offsets Commit left out because they
// equal the committed ones (only their metadata changed), with
// CommitOffsets.
//
// An explicit CommitOffsets is not checked against the assignment by
// librdkafka, and a broker that does not check ownership (kfake; a real
// one within a COOPERATIVE generation) accepts it for a partition another
// member owns, rewinding it. It is safe here because it runs under the
// engine's commit mutex, for partitions the engine has not revoked: the
// rebalance callback revokes a partition in the engine (under that mutex)
// before it unassigns it from librdkafka, so the partition is still this
// member's assignment now, and the coordinator gives it to another member
// only after this member's callback completed (COOPERATIVE), or after every
// member rejoined, which this one does after the callback (EAGER). The one
// exception is an assignment lost to a session or poll timeout, when the
// coordinator reassigns without waiting: AssignmentLost is checked, and a
// partition librdkafka no longer lists in Assignment is refused too. What
// remains is a loss between that check and the request: a real broker
// fences it by generation (the loss means a new one); kfake would not.
func (r *runner) commitExplicit(ctx context.Context, tps []kafka.TopicPartition, idx map[TopicPartition]int, errs []error) error {
	assigned, err := r.kc.Assignment()
	if err != nil {
		for _, tp := range tps {
			errs[idx[toTP(tp)]] = fmt.Errorf("commit metadata: assignment: %w", err)
		}
		return nil
	}
	owned := make(map[TopicPartition]bool, len(assigned))
	for _, a := range assigned {
		owned[toTP(a)] = true
	}
	lost := r.kc.AssignmentLost()
	send := tps[:0:0]
	for _, tp := range tps {
		switch i := idx[toTP(tp)]; {
		case lost:
			errs[i] = errLost
		case !owned[toTP(tp)]:
			errs[i] = errNotAssigned
		default:
			send = append(send, tp)
		}
	}
	if len(send) == 0 {
		return nil
	}
	res, err := r.commitRetrying(ctx, func() ([]kafka.TopicPartition, error) { return r.kc.CommitOffsets(send) })
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		for _, tp := range send {
			errs[idx[toTP(tp)]] = fmt.Errorf("commit metadata: %w", err)
		}
		return nil
	}
	got := make(map[TopicPartition]bool, len(res))
	for _, c := range res {
		tp := toTP(c)
		got[tp] = true
		if i, ok := idx[tp]; ok && c.Error != nil {
			errs[i] = fmt.Errorf("commit metadata: %w", c.Error)
		}
	}
	for _, tp := range send {
		if i := idx[toTP(tp)]; !got[toTP(tp)] && errs[i] == nil {
			errs[i] = errNotCommitted
		}
	}
	return nil
}

// commitRetrying calls f (Commit or CommitOffsets) through call, and again
// after a backoff while the coordinator refuses the commit for a reason
// that passes by itself (see refusedForNow), until ctx ends. It returns the
// last result of every partition any call answered for, and the last
// call's error. librdkafka itself waits for a coordinator that moved or is
// unreachable; the coordinator answers REBALANCE_IN_PROGRESS while a group
// completes a rebalance, which a COOPERATIVE member can be part of while
// its poll loop drains (librdkafka rejoins without the application), so a
// final commit would otherwise be lost to it. Retrying cannot commit for a
// partition another member owns: the engine revokes a partition (under the
// commit lock) before the callback gives it up, and a lost assignment stops
// the retries.
func (r *runner) commitRetrying(ctx context.Context, f func() ([]kafka.TopicPartition, error)) ([]kafka.TopicPartition, error) {
	backoff := engine.NewBackoff(r.opts.RetryBackoff, time.Second)
	var (
		out  []kafka.TopicPartition
		seen map[TopicPartition]int
	)
	for {
		res, err := r.call(f)
		if seen == nil && !refusedForNow(err, res) {
			return res, err // the common case: one call
		}
		if seen == nil {
			seen = make(map[TopicPartition]int, len(res))
		}
		for _, c := range res {
			if i, ok := seen[toTP(c)]; ok {
				out[i] = c
			} else {
				seen[toTP(c)] = len(out)
				out = append(out, c)
			}
		}
		// librdkafka treats an ILLEGAL_GENERATION outside a rebalance as
		// the loss of the assignment: then nothing is retried.
		if !refusedForNow(err, res) || ctx.Err() != nil || r.kc.AssignmentLost() {
			return out, err
		}
		r.log.Debug("confluent: commit refused for now, retrying", "error", cmp.Or(err, firstError(res)))
		if !backoff.Wait(ctx) {
			return out, err
		}
	}
}

// refusedForNow reports whether a commit's error, or one of its partitions'
// errors, is the coordinator refusing it for a moment: a rebalance being
// completed (REBALANCE_IN_PROGRESS, or ILLEGAL_GENERATION when the commit
// crossed the JoinGroup answer that carries the member's next generation;
// librdkafka keeps the assignment then, and marks it lost otherwise), the
// group's offsets being loaded, a request timed out.
func refusedForNow(err error, res []kafka.TopicPartition) bool {
	if err != nil {
		return retriableCommitError(err)
	}
	for _, c := range res {
		if c.Error != nil && retriableCommitError(c.Error) {
			return true
		}
	}
	return false
}

func retriableCommitError(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return false
	}
	switch kerr.Code() {
	case kafka.ErrRebalanceInProgress, kafka.ErrIllegalGeneration, kafka.ErrStaleMemberEpoch,
		kafka.ErrCoordinatorLoadInProgress, kafka.ErrRequestTimedOut:
		return true
	}
	return false
}

func firstError(res []kafka.TopicPartition) error {
	for _, c := range res {
		if c.Error != nil {
			return c.Error
		}
	}
	return nil
}

// call makes f (Commit or CommitOffsets) on the calling goroutine and
// returns its result. It is never abandoned: librdkafka answers within its
// own timeouts (see commit), and Run destroys the handle only once every
// call has returned (calls).
func (r *runner) call(f func() ([]kafka.TopicPartition, error)) ([]kafka.TopicPartition, error) {
	r.calls.Add(1)
	defer r.calls.Done()
	if r.cfg.onCall != nil {
		r.cfg.onCall("commit", true)
		defer r.cfg.onCall("commit", false)
	}
	return f()
}
