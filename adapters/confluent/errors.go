package confluent

import (
	"errors"
	"fmt"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// BatchError is what a RunBatch handler returns to say which message of its
// batch failed: msgs[:Index] are done, msgs[Index] failed with Err and goes
// through WithRetry and the dead letter like a single message (Permanent(err)
// as Err skips its remaining attempts), and msgs[Index+1:] are handed out
// again, in key order, without an attempt counted. An Index outside the
// batch fails the whole batch (logged). errors.Is and errors.As see through
// it to Err.
type BatchError = engine.BatchError

var (
	// ErrInvalidConfig is wrapped by NewConsumer's errors, which name the
	// field (Brokers, Group, Topics, Concurrency, ...) or the librdkafka
	// setting (enable.auto.offset.store, enable.auto.commit, ...).
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
	// ErrAssign wraps a failure to set up an assigned partition that
	// retrying cannot fix (reading its committed offset or log bounds fails
	// with an authorization, configuration or fatal error, or librdkafka
	// refuses the assignment); Run stops with it rather than consume from
	// an unknown start. A transient failure does not stop Run: the
	// partition waits, paused, until its start is read.
	ErrAssign = engine.ErrAssign
	// ErrClient wraps a fatal librdkafka error that stopped Run.
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
	// errLost is the per-partition commit result for a partition whose
	// assignment was lost: it is closed without committing.
	errLost = fmt.Errorf("%w: confluent: assignment lost, not committing", engine.ErrFenced)
	// errNotAssigned is the per-partition commit result for a metadata-only
	// commit of a partition librdkafka no longer lists as assigned.
	errNotAssigned = fmt.Errorf("%w: confluent: partition not assigned, not committing its metadata", engine.ErrFenced)
	// errNotCommitted is the per-partition commit result for a partition
	// missing from librdkafka's commit result.
	errNotCommitted = errors.New("confluent: partition missing from the commit result")
)
