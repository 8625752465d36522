package franz

import (
	"errors"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// BatchError is what a RunBatch handler returns to say which record of its
// batch failed: msgs[:Index] are done, msgs[Index] failed with Err and goes
// through WithRetry and the dead letter like a single record (Permanent(err)
// as Err skips its remaining attempts), and msgs[Index+1:] are handed out
// again, in key order, without an attempt counted. An Index outside the
// batch fails the whole batch (logged). errors.Is and errors.As see through
// it to Err.
type BatchError = engine.BatchError

var (
	// ErrInvalidConfig is wrapped by NewConsumer's errors, which name the
	// field (Brokers, Group, Topics, Concurrency, ...) or the kgo option
	// given to WithClientOptions (ConsumerGroup, AutoCommitMarks, ...).
	ErrInvalidConfig = engine.ErrConfig
	// ErrHandler wraps the handler error that stopped Run under the
	// StopOnError policy; errors.Is(err, ErrHandler) and the handler's own
	// error both match.
	ErrHandler = engine.ErrHandler
	// ErrPanic wraps a recovered handler panic (treated as a handler error).
	ErrPanic = engine.ErrPanic
	// ErrRunning is returned by Run when the Consumer is already running.
	ErrRunning = engine.ErrRunning
	// ErrClosed is returned by Run when Close was called before Run
	// started: a closed Consumer does not run again.
	ErrClosed = engine.ErrClosed
	// ErrAssign wraps a failure to take an assigned partition: the engine
	// refusing it, or the read of its log start and end failing with an
	// error retrying cannot fix (authentication, authorization; the
	// broker's error is wrapped too, and the partitions named). Run stops
	// with it rather than own a partition it does not consume.
	ErrAssign = engine.ErrAssign
	// ErrClient wraps a kgo error that retrying cannot fix (authentication,
	// authorization) or the client closing under Run: Run stops with it.
	// The kgo error is wrapped too.
	ErrClient = engine.ErrClient
	// ErrNeverJoined is returned by Run when it ended (ctx done, Close)
	// before the group ever answered this member with an assignment:
	// unreachable brokers, a refused join, or a very short Run. The last
	// connection or join error is wrapped too.
	ErrNeverJoined = engine.ErrNeverJoined
	// ErrFenced is returned by Run (wrapped, naming the instance id) when
	// another member joined the group with this member's WithInstanceID:
	// the broker fenced this one. Its partitions were dropped without a
	// commit (they are the other member's now) and it did not rejoin, which
	// would fence the other in turn.
	ErrFenced = engine.ErrFenced
	// errNotCommitted is the per-partition commit result for a partition
	// missing from the broker's answer.
	errNotCommitted = errors.New("franz: partition missing from the commit response")
	// errMemberChanged: a commit not sent because the group member changed
	// between the engine's decision and kgo's request (commit, group.go).
	errMemberChanged = errors.New("franz: commit not sent, the group membership changed")
)
