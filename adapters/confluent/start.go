package confluent

// This file holds where an assigned partition starts: its committed offset
// and metadata, or the start policy when it has no commit or its commit is
// outside the log; the reads retry transient errors. It also classifies
// librdkafka's errors: which stop Run and which librdkafka recovers from.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
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

// queryParallel bounds the watermark queries of one assignment in flight.
const queryParallel = 8

// starts returns where each of ktps starts. A partition without a commit
// starts by the start policy (StartOffset); so does one whose committed
// offset is below the log start (deleted by retention) or above the log end
// (the topic was recreated or truncated: the commit says nothing about this
// log), logged at Warn. Reads that fail for a transient reason are retried
// with backoff within RequestTimeout; it returns an error naming the
// partition when a read fails otherwise or for longer.
func (r *runner) starts(kc *kafka.Consumer, ktps []kafka.TopicPartition) ([]startPoint, error) {
	// One deadline for every read of the assignment: the callback must
	// return well within the rebalance timeout.
	deadline := time.Now().Add(r.opts.RequestTimeout)
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

	out := make([]startPoint, len(committed))
	errs := make([]error, len(committed))
	sem := make(chan struct{}, queryParallel)
	var wg sync.WaitGroup
	for i, ktp := range committed {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], errs[i] = r.start(kc, ktp, deadline)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// start applies the start policy to one partition's committed offset.
func (r *runner) start(kc *kafka.Consumer, ktp kafka.TopicPartition, deadline time.Time) (startPoint, error) {
	tp := toTP(ktp)
	var lo, hi int64
	err := r.retry(deadline, fmt.Sprintf("log start and end of %s[%d]", tp.Topic, tp.Partition), func(timeoutMs int) error {
		if r.cfg.onRead != nil {
			if err := r.cfg.onRead("watermarks", tp); err != nil {
				return err
			}
		}
		var err error
		lo, hi, err = kc.QueryWatermarkOffsets(tp.Topic, tp.Partition, timeoutMs)
		return err
	})
	if err != nil {
		return startPoint{}, err
	}
	sp := startPoint{offset: int64(ktp.Offset), meta: deref(ktp.Metadata), logEnd: hi}
	reset := lo
	if r.opts.StartOffset == Latest {
		reset = hi
	}
	switch {
	case sp.offset < 0:
		sp.offset, sp.meta = reset, ""
	case sp.offset < lo:
		r.log.Warn("confluent: committed offset below the log start (deleted by retention?), applying the start offset policy",
			"topic", tp.Topic, "partition", tp.Partition, "committed", sp.offset,
			"log_start", lo, "log_end", hi, "policy", r.opts.StartOffset, "start", reset)
		sp.offset, sp.meta = reset, ""
	case sp.offset > hi:
		r.log.Warn("confluent: committed offset above the log end (topic recreated or truncated?), applying the start offset policy",
			"topic", tp.Topic, "partition", tp.Partition, "committed", sp.offset,
			"log_start", lo, "log_end", hi, "policy", r.opts.StartOffset, "start", reset)
		sp.offset, sp.meta = reset, ""
	}
	return sp, nil
}

// retry calls f until it succeeds, fails with an error that retrying
// cannot fix (see permanent), or deadline passes, waiting RetryBackoff
// (doubling) between calls. f gets the time left in milliseconds as its own
// timeout.
func (r *runner) retry(deadline time.Time, what string, f func(timeoutMs int) error) error {
	backoff := r.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		left := time.Until(deadline)
		err := f(max(1, int(left.Milliseconds())))
		if err == nil {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Until(deadline) < backoff {
			return fmt.Errorf("%s: still failing after %d attempts in RequestTimeout (%v): %w",
				what, attempt, r.opts.RequestTimeout, err)
		}
		r.log.Debug("confluent: read failed, retrying", "what", what, "attempt", attempt, "error", err)
		time.Sleep(backoff)
		backoff = min(2*backoff, max(r.opts.RetryBackoff, engine.DefaultMaxRetryBackoff))
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
// coordinator moving, a topic's metadata not known yet.
func transientClientError(c kafka.ErrorCode) bool {
	switch c {
	case kafka.ErrTransport, kafka.ErrTimedOut,
		kafka.ErrNotLeaderForPartition, kafka.ErrLeaderNotAvailable,
		kafka.ErrNotCoordinator, kafka.ErrCoordinatorNotAvailable,
		kafka.ErrCoordinatorLoadInProgress, kafka.ErrRebalanceInProgress,
		kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownPartition, kafka.ErrUnknownTopic,
		kafka.ErrPartitionEOF, kafka.ErrFencedLeaderEpoch, kafka.ErrOffsetNotAvailable:
		return true
	}
	return false
}
