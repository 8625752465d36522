package franz

import "github.com/inorder/inorder/adapters/internal/engine"

// Offset is one partition's commit as the commit hook sees it.
type Offset = engine.Offset

// WithAssignHook calls f after every assignment with the member id, the
// generation and the newly assigned partitions. Tests only.
func WithAssignHook(f func(member string, generation int32, tps []TopicPartition)) Option {
	return func(o *engine.Options) { own(o, "WithAssignHook").onAssign = f }
}

// WithRevokeHook calls f after every revoke (drained, committed, closed) or
// loss with the partitions. Tests only.
func WithRevokeHook(f func(tps []TopicPartition, lost bool)) Option {
	return func(o *engine.Options) { own(o, "WithRevokeHook").onRevoke = f }
}

// WithRevokeStartHook calls f as every revoke or loss starts (before its
// drain and commit) with the partitions. Tests only.
func WithRevokeStartHook(f func(tps []TopicPartition, lost bool)) Option {
	return func(o *engine.Options) { own(o, "WithRevokeStartHook").onRevokeStart = f }
}

// WithCommitHook calls f after every commit with the member id and
// generation it was sent with, its offsets and per-partition results (all
// the same error when the request failed). Tests only.
func WithCommitHook(f func(member string, generation int32, offs []Offset, errs []error)) Option {
	return func(o *engine.Options) { own(o, "WithCommitHook").onCommit = f }
}

// WithCommitMadeHook calls f as every commit is made, with the member id
// it is decided for, before kgo is asked to send it; the commit hook of the
// same commit follows. Tests only.
func WithCommitMadeHook(f func(member string)) Option {
	return func(o *engine.Options) { own(o, "WithCommitMadeHook").onCommitMade = f }
}

// ErrMemberChanged is the error of a commit that was not sent because the
// group member changed between its decision and kgo's request.
var ErrMemberChanged = errMemberChanged

// WithPauseHook calls f whenever a partition is paused because its window
// is full (paused true) and resumed (false). Tests only.
func WithPauseHook(f func(tp TopicPartition, paused bool)) Option {
	return func(o *engine.Options) { own(o, "WithPauseHook").onPause = f }
}
