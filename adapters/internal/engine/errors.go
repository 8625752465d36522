package engine

import (
	"errors"
	"fmt"
)

// The adapters re-export these under their own names; the messages name the
// module because they are shared by both adapters.
var (
	// ErrConfig is wrapped by Config.Validate errors, which name the field.
	ErrConfig = errors.New("inorder: invalid config")
	// ErrHandler wraps the handler error (or recovered panic) that stopped
	// Run under the Stop error policy.
	ErrHandler = errors.New("inorder: handler failed")
	// ErrPanic wraps a recovered handler panic.
	ErrPanic = errors.New("inorder: handler panicked")
	// ErrStopped is returned by the Session's Deliver methods once the
	// engine was stopped: the message is tracked, not handed out, and not
	// acked (redelivered).
	ErrStopped = errors.New("inorder: engine stopped")
	// ErrRunning is returned by Run when the consumer is already running.
	ErrRunning = errors.New("inorder: consumer already running")
	// ErrClosed is returned by Run when Close was called before Run
	// started: a closed consumer does not run again.
	ErrClosed = errors.New("inorder: consumer closed")
	// ErrAssign wraps a failure to take an assigned partition that a retry
	// cannot repair; Run stops with it rather than own a partition it does
	// not consume.
	ErrAssign = errors.New("inorder: assignment failed")
	// ErrClient wraps a client error that stops Run: a fatal error of the
	// client, or one that retrying cannot fix (authentication, TLS
	// handshake, authorization). The client's own error is wrapped too.
	ErrClient = errors.New("inorder: client error")
	// ErrFenced, wrapped by a CommitFunc's per-partition error, says that
	// retrying the commit cannot succeed (the generation or member is gone,
	// the partition is no longer assigned): the commit at revoke gives up on
	// that partition at once instead of retrying until its budget ends.
	// Adapters also end Run with it, naming the id, when another member
	// took this member's static instance id.
	ErrFenced = errors.New("inorder: fenced")
	// ErrNeverJoined is returned by Run when it ended (its context ended or
	// Close was called) before the group ever answered this member with an
	// assignment: the brokers were unreachable, refused the group, or the
	// Run was too short. The last connection or join error, if any, is
	// wrapped too (see Watch.End).
	ErrNeverJoined = errors.New("inorder: Run ended without ever joining the group")
)

// BatchError is what a batch handler returns to say which message of its
// batch failed: msgs[:Index] are done, msgs[Index] failed with Err and goes
// through the retry policy and the dead letter like a single message
// (Permanent(err) as Err skips its remaining attempts), and msgs[Index+1:]
// are handed out again, in key order, without counting an attempt. An
// Index outside the batch fails the whole batch (logged). errors.Is and
// errors.As see through it to Err.
type BatchError struct {
	Index int   // the first message of the batch that failed
	Err   error // its error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("inorder: batch message %d: %v", e.Index, e.Err)
}

// Unwrap returns Err.
func (e *BatchError) Unwrap() error { return e.Err }
