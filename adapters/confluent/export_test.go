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

// WithWaitHook calls f whenever the poll goroutine has to wait for the
// feeder because the hand-off queue is full. Tests only.
func WithWaitHook(f func()) Option {
	return func(o *engine.Options) { own(o, "WithWaitHook").onWait = f }
}

// CooperativeByConfig exposes the protocol a configuration selects.
var CooperativeByConfig = cooperativeByConfig

// WithCommittedHook calls f with the committed offsets read at every
// assignment, before they are used; f may change them (inject a
// per-partition error). Tests only.
func WithCommittedHook(f func(ktps []kafka.TopicPartition)) Option {
	return func(o *engine.Options) { own(o, "WithCommittedHook").onCommitted = f }
}
