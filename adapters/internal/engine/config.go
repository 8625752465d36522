package engine

// This file holds the settings both adapters share, their defaults and
// their validation.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/inorder/inorder/watermark"
)

// ErrorPolicy says what a handler error (or panic) does.
type ErrorPolicy int

const (
	// LogAndAck logs the error and acks the message: the commit point moves
	// past it (the original design's behaviour). Default.
	LogAndAck ErrorPolicy = iota
	// Stop makes Run drain, commit (never past the failed message) and
	// return the error wrapped in ErrHandler: the message is not acked, so
	// it is delivered again after a restart.
	Stop
)

func (p ErrorPolicy) String() string {
	switch p {
	case LogAndAck:
		return "LogAndAck"
	case Stop:
		return "Stop"
	}
	return fmt.Sprintf("ErrorPolicy(%d)", int(p))
}

// Defaults.
const (
	DefaultConcurrency      = 16
	DefaultCommitInterval   = time.Second
	DefaultRevokeTimeout    = 10 * time.Second
	DefaultMetadataMaxBytes = 4096 // broker default offset.metadata.max.bytes
	DefaultCommitTimeout    = 10 * time.Second
	DefaultStuckThreshold   = time.Minute
	// DefaultMaxBufferedBytes is the default budget of the bytes of
	// messages fetched and not yet handled, across the consumer.
	DefaultMaxBufferedBytes = 64 << 20
	// DefaultBatchSize and DefaultBatchWait are WithBatch's defaults.
	DefaultBatchSize = 100
	DefaultBatchWait = 10 * time.Millisecond
	// DefaultTxnCommitInterval is the commit interval of the exactly-once
	// mode (WithTransactionalID) unless WithCommitInterval says otherwise:
	// outputs become visible when their transaction commits, so the
	// interval is their added latency.
	DefaultTxnCommitInterval = 100 * time.Millisecond
)

// Config is what the engine needs from the adapter's options.
type Config struct {
	Concurrency int // workers running the handler
	Window      int // watermark window per partition
	// MaxBufferedBytes bounds the bytes (key + value + headers) of the
	// messages fetched and not yet handled, across the consumer: a
	// partition over its share is paused (see flow.go). Positive.
	MaxBufferedBytes int64
	CommitInterval   time.Duration // period of the commit loop
	RevokeTimeout    time.Duration // longest drain on revoke or shutdown
	ErrorPolicy      ErrorPolicy
	MetadataMaxBytes int // 0 disables commit metadata
	// Ordering says which handler calls of a partition may overlap
	// (default Unordered).
	Ordering Ordering
	// KeylessOrdered, with ByKey, makes the messages without a key (nil or
	// empty) one key, handled one at a time in offset order. Off (default),
	// keyless messages are not ordered with each other.
	KeylessOrdered bool
	// Retry says how often a failing message is handled again, and how
	// long it waits between attempts (default: never retried).
	Retry Retry
	// DeadLetter, if not nil, is called with a message (the adapter's
	// message type) whose last attempt failed, the handler's error and the
	// number of handler calls made; the
	// message is acked once it returned nil. An error from it is retried
	// with the Retry waits, never dropped. Nil (default): the ErrorPolicy
	// applies after the last attempt. In the exactly-once mode
	// (NewTxnSession) AddOutput works on its ctx: what it adds goes in the
	// transaction that commits the message as done.
	DeadLetter func(ctx context.Context, msg any, err error, attempts int) error
	Logger     *slog.Logger

	// CommitTimeout bounds one periodic commit (and each attempt of the
	// commit at revoke, which the revoke's budget bounds too). Default 10s;
	// must be positive. It need not be below RevokeTimeout: a revoke cancels
	// a periodic commit in flight rather than wait for it.
	CommitTimeout time.Duration
	// StuckThreshold: a partition whose commit point has not moved for this
	// long while messages are pending is logged at Warn level (once per
	// episode). Default 1 min; must be positive.
	StuckThreshold time.Duration
	// BatchSize and BatchWait shape the batches of a batch handler
	// (NewBatch; WithBatch): at most BatchSize messages per call, and a
	// worker holding fewer waits up to BatchWait for more. Unused by New.
	// FrozenAfter: a process that did not run for this long (frozen,
	// suspended) has lost its group membership; its workers do not start
	// the queued messages of the partitions it owned until the client
	// reports them revoked or lost, or twice FrozenAfter passes (see
	// frozen.go). The adapters set the group's session timeout; 0 (the
	// default) disables the check.
	FrozenAfter   time.Duration
	BatchSize     int
	BatchWait     time.Duration
	MeterProvider metric.MeterProvider // metrics.go; not nil
	Group         string               // consumer group, a metrics attribute (ForGroup); may be empty
	// ClientWaitsForCommits: the client completes a rebalance only after
	// the commits it has in flight returned (librdkafka: its assignment
	// waits for wait_commit_cnt to reach zero before the unassign is done
	// and the member rejoins), and a commit call cannot be cancelled. Then
	// a revoke does not wait past its RevokeTimeout for a cancelled
	// periodic commit still inside the client: it closes its partitions
	// without the commit lock and returns, so that the poll loop is not
	// held past max.poll.interval.ms (which made librdkafka leave the
	// group and lose every partition). The commit in flight, sent before
	// the revoke, still lands before the partitions can move.
	ClientWaitsForCommits bool
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Concurrency:      DefaultConcurrency,
		Window:           watermark.DefaultWindow,
		MaxBufferedBytes: DefaultMaxBufferedBytes,
		CommitInterval:   DefaultCommitInterval,
		RevokeTimeout:    DefaultRevokeTimeout,
		ErrorPolicy:      LogAndAck,
		Retry:            Retry{MaxAttempts: DefaultMaxAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff},
		MetadataMaxBytes: DefaultMetadataMaxBytes,
		Logger:           slog.Default(),
		CommitTimeout:    DefaultCommitTimeout,
		StuckThreshold:   DefaultStuckThreshold,
		MeterProvider:    otel.GetMeterProvider(),
		BatchSize:        DefaultBatchSize,
		BatchWait:        DefaultBatchWait,
	}
}

// Validate returns an error wrapping ErrConfig and naming the field for the
// first bad setting.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("%w: Concurrency must be at least 1, got %d", ErrConfig, c.Concurrency)
	case watermark.CheckWindow(c.Window) != nil:
		return fmt.Errorf("%w: Window: %v", ErrConfig, watermark.CheckWindow(c.Window))
	case c.MaxBufferedBytes < 1:
		return fmt.Errorf("%w: MaxBufferedBytes must be positive, got %d", ErrConfig, c.MaxBufferedBytes)
	case c.CommitInterval <= 0:
		return fmt.Errorf("%w: CommitInterval must be positive, got %v", ErrConfig, c.CommitInterval)
	case c.RevokeTimeout <= 0:
		return fmt.Errorf("%w: RevokeTimeout must be positive, got %v", ErrConfig, c.RevokeTimeout)
	case c.ErrorPolicy != LogAndAck && c.ErrorPolicy != Stop:
		return fmt.Errorf("%w: ErrorPolicy unknown: %v", ErrConfig, c.ErrorPolicy)
	case c.Ordering != Unordered && c.Ordering != ByKey && c.Ordering != ByPartition:
		return fmt.Errorf("%w: Ordering unknown: %v", ErrConfig, c.Ordering)
	case c.Retry.MaxAttempts < 1:
		return fmt.Errorf("%w: Retry.MaxAttempts must be at least 1, got %d", ErrConfig, c.Retry.MaxAttempts)
	case c.Retry.Backoff <= 0:
		return fmt.Errorf("%w: Retry.Backoff must be positive, got %v", ErrConfig, c.Retry.Backoff)
	case c.Retry.MaxBackoff < c.Retry.Backoff:
		return fmt.Errorf("%w: Retry.MaxBackoff %v is below Retry.Backoff %v", ErrConfig, c.Retry.MaxBackoff, c.Retry.Backoff)
	case c.MetadataMaxBytes < 0:
		return fmt.Errorf("%w: MetadataMaxBytes must not be negative, got %d", ErrConfig, c.MetadataMaxBytes)
	case c.Logger == nil:
		return fmt.Errorf("%w: Logger is nil", ErrConfig)
	case c.CommitTimeout <= 0:
		return fmt.Errorf("%w: CommitTimeout must be positive, got %v", ErrConfig, c.CommitTimeout)
	case c.FrozenAfter < 0:
		return fmt.Errorf("%w: FrozenAfter must not be negative, got %v", ErrConfig, c.FrozenAfter)
	case c.StuckThreshold <= 0:
		return fmt.Errorf("%w: StuckThreshold must be positive, got %v", ErrConfig, c.StuckThreshold)
	case c.BatchSize < 1:
		return fmt.Errorf("%w: WithBatch: maxSize (BatchSize) must be at least 1, got %d", ErrConfig, c.BatchSize)
	case c.BatchWait < 0:
		return fmt.Errorf("%w: WithBatch: maxWait (BatchWait) must not be negative, got %v", ErrConfig, c.BatchWait)
	case c.MeterProvider == nil:
		return fmt.Errorf("%w: MeterProvider is nil (WithMeterProvider; otel.GetMeterProvider() is the global one)", ErrConfig)
	}
	return nil
}

// revokeReserve is the part of RevokeTimeout kept for the commit at
// revoke: the drain may use the rest. A quarter: a commit takes one round
// trip to the coordinator, but a refused one (REBALANCE_IN_PROGRESS, the
// coordinator moving) is retried, and a drain that ends without its commit
// landing gains nothing.
func (c Config) revokeReserve() time.Duration { return c.RevokeTimeout / 4 }
