package confluent

import (
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Offset is one partition's commit as the commit hook sees it.
type Offset = engine.Offset

// WithAssignHook calls f after every assignment with the rebalance protocol
// and the newly assigned partitions. Tests only.
func WithAssignHook(f func(protocol string, tps []TopicPartition)) Option {
	return func(o *engine.Options) { own(o, "WithAssignHook").onAssign = f }
}

// WithRevokeHook calls f after every revoke (drained, committed, closed)
// with the partitions and whether the assignment was lost. Tests only.
func WithRevokeHook(f func(tps []TopicPartition, lost bool)) Option {
	return func(o *engine.Options) { own(o, "WithRevokeHook").onRevoke = f }
}

// WithRevokeStartHook calls f as every revoke starts (before its drain and
// commit) with the partitions and whether the assignment was lost. Tests
// only.
func WithRevokeStartHook(f func(tps []TopicPartition, lost bool)) Option {
	return func(o *engine.Options) { own(o, "WithRevokeStartHook").onRevokeStart = f }
}

// WithCommitHook calls f after every commit with its offsets and
// per-partition results (all the same error when the whole commit failed).
// Tests only.
func WithCommitHook(f func(offs []Offset, errs []error)) Option {
	return func(o *engine.Options) { own(o, "WithCommitHook").onCommit = f }
}

// WithPauseHook calls f whenever a partition is paused because its window is
// full (paused true) and resumed (false). Tests only.
func WithPauseHook(f func(tp TopicPartition, paused bool)) Option {
	return func(o *engine.Options) { own(o, "WithPauseHook").onPause = f }
}

// WithOfferHook calls f on the poll goroutine before each batch of a
// partition's messages is offered to the engine, with its size in messages
// and bytes (key, value and headers). Tests only.
func WithOfferHook(f func(tp TopicPartition, msgs, bytes int)) Option {
	return func(o *engine.Options) { own(o, "WithOfferHook").onOffer = f }
}

// WithPollHook calls f on the poll goroutine after every Poll, with the
// librdkafka handle (to stall the poll loop, or pause a partition behind
// the Consumer's back). Tests only.
func WithPollHook(f func(kc *kafka.Consumer)) Option {
	return func(o *engine.Options) { own(o, "WithPollHook").onPoll = f }
}

// WithReadHook calls f before every read of an assignment: what is
// "committed" (the committed offsets) or "watermarks" (the partitions' log
// starts or ends; tp is zero); an error f returns is taken as the read's.
// Tests only.
func WithReadHook(f func(what string, tp TopicPartition) error) Option {
	return func(o *engine.Options) { own(o, "WithReadHook").onRead = f }
}

// WithReseekHook calls f whenever the poll loop reseeks a partition it
// found stalled. Tests only.
func WithReseekHook(f func(tp TopicPartition)) Option {
	return func(o *engine.Options) { own(o, "WithReseekHook").onReseek = f }
}

// CooperativeByConfig exposes the protocol a configuration selects.
var CooperativeByConfig = cooperativeByConfig

// WithCommittedHook calls f with the committed offsets read at every
// assignment, before they are used; f may change them (inject a
// per-partition error). Tests only.
func WithCommittedHook(f func(ktps []kafka.TopicPartition)) Option {
	return func(o *engine.Options) { own(o, "WithCommittedHook").onCommitted = f }
}

// ConfigValue returns the librdkafka setting k of the Consumer's
// configuration (nil if unset). Tests only.
func (c *Consumer) ConfigValue(k string) kafka.ConfigValue { return c.cm[k] }

// WithCallHook calls f around every librdkafka commit call ("commit") and
// dead-letter produce ("deadletter"), enter true before and false after,
// and with "close" and "deadletter-close" just before the consumer or the
// dead-letter producers are destroyed. Tests only.
func WithCallHook(f func(call string, enter bool)) Option {
	return func(o *engine.Options) { own(o, "WithCallHook").onCall = f }
}

// ConfigMap returns a copy of the Consumer's librdkafka configuration.
// Tests only.
func (c *Consumer) ConfigMap() kafka.ConfigMap { return cloneMap(c.cm) }
