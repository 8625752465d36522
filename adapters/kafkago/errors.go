package kafkago

import (
	"github.com/inorder/inorder/adapters/internal/engine"
)

var (
	// ErrInvalidConfig is wrapped by NewConsumer's errors, which name the
	// field (Brokers, Group, Topics, Concurrency, ...).
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
	// ErrAssign is returned (wrapped, naming the partition) by Run when a
	// partition of an assignment cannot be taken (a duplicate in the
	// assignment, for instance): rather than own it without consuming it,
	// Run drains, commits, leaves the group and returns.
	ErrAssign = engine.ErrAssign
	// ErrClient wraps an error of the cluster that retrying cannot fix
	// (authentication, TLS handshake, authorization): Run stops with it.
	// The kafka-go error is wrapped too (errors.As a kafka.Error).
	ErrClient = engine.ErrClient
)
