package engine

import "errors"

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
	// ErrStopped is returned by Session.Deliver when the engine was stopped
	// while the message waited for a worker.
	ErrStopped = errors.New("inorder: engine stopped")
	// ErrFenced, wrapped by a CommitFunc's per-partition error, says that
	// retrying the commit cannot succeed (the generation or member is gone,
	// the partition is no longer assigned): the commit at revoke gives up on
	// that partition at once instead of retrying until its budget ends.
	ErrFenced = errors.New("inorder: commit fenced")
)
