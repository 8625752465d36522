package kafkago

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"

	"github.com/segmentio/kafka-go"

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
)

// clientFailure names why err cannot be fixed by retrying (SASL
// authentication refused, TLS handshake failed, not authorized), or
// returns "" for an error worth retrying. A broker that closes the
// connection without saying why (a plaintext client on a TLS listener, for
// instance) looks like a network failure and is retried.
func clientFailure(err error) string {
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.IllegalSASLState:
			return "SASL authentication failed"
		case kafka.TopicAuthorizationFailed, kafka.GroupAuthorizationFailed, kafka.ClusterAuthorizationFailed:
			return "not authorized"
		}
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		host     x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		alert    tls.AlertError
		opErr    *net.OpError
		isRemote = errors.As(err, &opErr) && opErr.Op == "remote error"
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &host),
		errors.As(err, &invalid), errors.As(err, &header), errors.As(err, &alert), isRemote:
		return "TLS handshake failed"
	}
	return ""
}
