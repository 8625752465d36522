package confluent

// This file holds where an assigned partition starts: its committed offset
// and metadata, or the start policy when it has no commit or its commit is
// outside the log; the reads retry transient errors. It also classifies
// librdkafka's errors: which stop Run and which librdkafka recovers from.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// startPoint is where an assigned partition starts.
type startPoint struct {
	offset int64  // the next offset to read
	meta   string // commit metadata ("" after the start policy applied)
	logEnd int64  // the high watermark at assignment
}

// starts returns where each of ktps starts. A partition without a commit
// starts by the start policy (StartOffset); so does one whose committed
// offset is below the log start (deleted by retention) or above the log end
// (the topic was recreated or truncated: the commit says nothing about this
// log), logged at Warn. Reads that fail for a transient reason are retried
// with backoff until deadline (one deadline for every read: the caller, the
// rebalance callback or the poll loop, must go on polling well within the
// rebalance timeout); it returns an error naming the partition when a read
// fails otherwise or for longer (see pending.go for what happens then).
func (r *runner) starts(kc *kafka.Consumer, ktps []kafka.TopicPartition, deadline time.Time) ([]startPoint, error) {
	var committed []kafka.TopicPartition
	err := r.retry(deadline, "committed offsets", func(timeoutMs int) error {
		if r.cfg.onRead != nil {
			if err := r.cfg.onRead("committed", TopicPartition{}); err != nil {
				return err
			}
		}
		c, err := kc.Committed(ktps, timeoutMs)
		if err != nil {
			return err
		}
		if len(c) != len(ktps) {
			return fmt.Errorf("%d committed offsets for %d partitions", len(c), len(ktps))
		}
		if r.cfg.onCommitted != nil {
			r.cfg.onCommitted(c)
		}
		// A partition whose commit could not be read is not one without a
		// commit: starting it by the start policy could skip messages never
		// handled.
		for _, ktp := range c {
			if ktp.Error != nil {
				return fmt.Errorf("%s[%d]: %w", deref(ktp.Topic), ktp.Partition, ktp.Error)
			}
		}
		committed = c
		return nil
	})
	if err != nil {
		return nil, err
	}

	// With a commit for every partition the bounds only check the commits
	// and tell the lag: a read that keeps failing for a transient reason
	// does not hold the assignment (and the poll loop) for the whole
	// deadline, only a quarter of it; the partitions start at their commits.
	all := !slices.ContainsFunc(committed, func(ktp kafka.TopicPartition) bool { return ktp.Offset < 0 })
	bdeadline := deadline
	if all {
		if d := time.Now().Add(time.Until(deadline) / 4); d.Before(deadline) {
			bdeadline = d
		}
	}
	bounds, err := r.logBounds(kc, committed, bdeadline)
	if err != nil {
		if !all || permanent(errors.Unwrap(err)) || permanent(err) {
			var none []string
			for _, ktp := range committed {
				if ktp.Offset < 0 {
					none = append(none, fmt.Sprintf("%s[%d]", deref(ktp.Topic), ktp.Partition))
				}
			}
			if len(none) > 0 {
				// The start policy needs the bounds of these.
				return nil, fmt.Errorf("%w (no commit for %s)", err, strings.Join(none, ", "))
			}
			return nil, err
		}
		r.log.Warn("confluent: log start and end unreadable, starting the partitions at their commits unchecked",
			"partitions", len(committed), "error", err)
		out := make([]startPoint, len(committed))
		for i, ktp := range committed {
			out[i] = startPoint{offset: int64(ktp.Offset), meta: deref(ktp.Metadata), logEnd: -1}
		}
		return out, nil
	}
	out := make([]startPoint, len(committed))
	for i, ktp := range committed {
		out[i] = r.start(ktp, bounds[toTP(ktp)])
	}
	return out, nil
}

// logBound is a partition's log start, end (high watermark) and, when
// needed, its last stable offset.
type logBound struct {
	start, end, stable int64
}

// logBounds reads the log start and end of ktps with batched ListOffsets
// requests (one per broker leading some of them, not one per partition),
// and, for the Latest start policy when reading committed, the last stable
// offset: starting at the high watermark would skip the records of
// transactions still open, once they commit.
func (r *runner) logBounds(kc *kafka.Consumer, ktps []kafka.TopicPartition, deadline time.Time) (map[TopicPartition]logBound, error) {
	admin, err := kafka.NewAdminClientFromConsumer(kc)
	if err != nil {
		return nil, fmt.Errorf("log start and end: %w", err)
	}
	defer admin.Close()
	list := func(what string, spec kafka.OffsetSpec, level kafka.IsolationLevel, set func(*logBound, int64), out map[TopicPartition]logBound) error {
		return r.retry(deadline, what, func(timeoutMs int) error {
			if r.cfg.onRead != nil {
				if err := r.cfg.onRead("watermarks", TopicPartition{}); err != nil {
					return err
				}
			}
			req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(ktps))
			for _, ktp := range ktps {
				req[kafka.TopicPartition{Topic: ktp.Topic, Partition: ktp.Partition}] = spec
			}
			timeout := time.Duration(timeoutMs) * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			res, err := admin.ListOffsets(ctx, req, kafka.SetAdminRequestTimeout(timeout),
				kafka.SetAdminIsolationLevel(level))
			if err != nil {
				return err
			}
			got := 0
			for ktp, info := range res.ResultInfos {
				tp := toTP(ktp)
				if info.Error.Code() != kafka.ErrNoError {
					if staleLeader(info.Error.Code()) {
						r.refreshMetadata(kc, tp.Topic, timeoutMs)
					}
					return fmt.Errorf("%s[%d]: %w", tp.Topic, tp.Partition, info.Error)
				}
				if info.Offset < 0 {
					// librdkafka 2.11.1 answers "no offset" (-1001) with
					// no error when the request's connection was closed
					// under it (reproduced with a bare admin client and a
					// cut ListOffsets connection): not an answer, retried.
					return fmt.Errorf("%s[%d]: %w (%d)", tp.Topic, tp.Partition, errNoOffset, info.Offset)
				}
				b := out[tp]
				set(&b, int64(info.Offset))
				out[tp] = b
				got++
			}
			if got != len(ktps) {
				return fmt.Errorf("%d answers for %d partitions", got, len(ktps))
			}
			return nil
		})
	}
	out := make(map[TopicPartition]logBound, len(ktps))
	if err := list("log start", kafka.EarliestOffsetSpec, kafka.IsolationLevelReadUncommitted,
		func(b *logBound, v int64) { b.start = v }, out); err != nil {
		return nil, err
	}
	if err := list("log end", kafka.LatestOffsetSpec, kafka.IsolationLevelReadUncommitted,
		func(b *logBound, v int64) { b.end, b.stable = v, v }, out); err != nil {
		return nil, err
	}
	if r.opts.ReadCommitted && r.opts.StartOffset == Latest {
		if err := list("last stable offset", kafka.LatestOffsetSpec, kafka.IsolationLevelReadCommitted,
			func(b *logBound, v int64) { b.stable = v }, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// errNoOffset is a ListOffsets answer without an offset and without an
// error; retried like a transient error.
var errNoOffset = errors.New("confluent: ListOffsets answered no offset and no error")

// staleLeader reports whether a ListOffsets answer says the leader or its
// epoch that librdkafka knows is out of date.
func staleLeader(c kafka.ErrorCode) bool {
	switch c {
	case kafka.ErrFencedLeaderEpoch, kafka.ErrUnknownLeaderEpoch,
		kafka.ErrNotLeaderForPartition, kafka.ErrLeaderNotAvailable:
		return true
	}
	return false
}

// refreshMetadata asks for topic's metadata, which refreshes librdkafka's
// cache of leaders and leader epochs. The admin ListOffsets of librdkafka
// 2.11.1 answers FENCED_LEADER_EPOCH for as long as its cache holds an
// epoch older than the leader's (until the periodic refresh,
// topic.metadata.refresh.interval.ms, 5 minutes by default), and does not
// refresh it itself; seen when a partition's leader moved after the member
// last fetched it, and reproduced with a bare kafka.Consumer and its admin
// client against the embedded broker (ListOffsets, ShufflePartitionLeaders,
// ListOffsets: FENCED_LEADER_EPOCH on every retry until GetMetadata).
func (r *runner) refreshMetadata(kc *kafka.Consumer, topic string, timeoutMs int) {
	if _, err := kc.GetMetadata(&topic, false, max(1, min(timeoutMs, 5000))); err != nil {
		r.log.Debug("confluent: metadata refresh after a stale leader epoch", "topic", topic, "error", err)
	}
}

// start applies the start policy to one partition's committed offset.
func (r *runner) start(ktp kafka.TopicPartition, b logBound) startPoint {
	tp := toTP(ktp)
	sp := startPoint{offset: int64(ktp.Offset), meta: deref(ktp.Metadata), logEnd: b.end}
	reset := b.start
	if r.opts.StartOffset == Latest {
		reset = b.stable
	}
	switch {
	case sp.offset < 0:
		sp.offset, sp.meta = reset, ""
	case sp.offset < b.start:
		r.log.Warn("confluent: committed offset below the log start (deleted by retention?), applying the start offset policy",
			"topic", tp.Topic, "partition", tp.Partition, "committed", sp.offset,
			"log_start", b.start, "log_end", b.end, "policy", r.opts.StartOffset, "start", reset)
		sp.offset, sp.meta = reset, ""
	case sp.offset > b.end:
		r.log.Warn("confluent: committed offset above the log end (topic recreated or truncated?), applying the start offset policy",
			"topic", tp.Topic, "partition", tp.Partition, "committed", sp.offset,
			"log_start", b.start, "log_end", b.end, "policy", r.opts.StartOffset, "start", reset)
		sp.offset, sp.meta = reset, ""
	}
	return sp
}

// retry calls f until it succeeds, fails with an error that retrying
// cannot fix (see permanent), or deadline passes, waiting RetryBackoff
// (doubling) between calls. f gets the time left in milliseconds as its own
// timeout.
func (r *runner) retry(deadline time.Time, what string, f func(timeoutMs int) error) error {
	backoff := engine.NewRetryBackoff(r.opts.RetryBackoff)
	for attempt := 1; ; attempt++ {
		left := time.Until(deadline)
		err := f(max(1, int(left.Milliseconds())))
		if err == nil {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		wait := backoff.Next()
		if time.Until(deadline) < wait {
			return fmt.Errorf("%s: still failing after %d attempts: %w", what, attempt, err)
		}
		r.log.Debug("confluent: read failed, retrying", "what", what, "attempt", attempt, "error", err)
		time.Sleep(wait)
	}
}

// permanent reports whether err is one that retrying cannot fix: a fatal
// librdkafka error, or a configuration, authentication or authorization
// error.
func permanent(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return false
	}
	return fatalError(kerr)
}

// fatalError reports whether a librdkafka error must stop Run: librdkafka
// does not recover from it (fatal errors), or only a change of
// configuration or of the cluster's security settings can (wrong
// credentials, missing ACLs, an unsupported feature). librdkafka retries
// every other error itself.
func fatalError(e kafka.Error) bool {
	if e.IsFatal() {
		return true
	}
	switch e.Code() {
	case kafka.ErrAuthentication, kafka.ErrSaslAuthenticationFailed,
		kafka.ErrUnsupportedSaslMechanism, kafka.ErrIllegalSaslState,
		kafka.ErrTopicAuthorizationFailed, kafka.ErrGroupAuthorizationFailed,
		kafka.ErrClusterAuthorizationFailed,
		kafka.ErrSecurityDisabled, kafka.ErrInvalidArg, kafka.ErrInvalidConfig,
		kafka.ErrInvalidSessionTimeout, kafka.ErrInconsistentGroupProtocol:
		return true
	}
	return false
}

// maxAuthFailures is how many SASL authentication failures in a row, with
// nothing received in between, stop Run.
const maxAuthFailures = 3

// authFailure reports whether e is a SASL authentication that failed
// because the broker closed the connection (what librdkafka reports as a
// transport failure during authentication).
func authFailure(e kafka.Error) bool {
	return e.Code() == kafka.ErrTransport && strings.Contains(e.Error(), "SASL authentication error")
}

// transientClientError reports whether e is a routine condition librdkafka
// recovers from without anyone acting: brokers closing idle connections,
// a broker not reachable for a moment, a partition's leader or the group's
// coordinator moving. A subscribed topic that does not exist is not one: an
// operator may have to create it (or fix its name).
func transientClientError(c kafka.ErrorCode) bool {
	switch c {
	case kafka.ErrTransport, kafka.ErrTimedOut,
		kafka.ErrNotLeaderForPartition, kafka.ErrLeaderNotAvailable,
		kafka.ErrNotCoordinator, kafka.ErrCoordinatorNotAvailable,
		kafka.ErrCoordinatorLoadInProgress, kafka.ErrRebalanceInProgress,
		kafka.ErrPartitionEOF, kafka.ErrFencedLeaderEpoch, kafka.ErrOffsetNotAvailable:
		return true
	}
	return false
}
