package kafkago

// This file holds the Consumer's options, their defaults, the Kafka setting
// each corresponds to, and their validation.

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/segmentio/kafka-go"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// ErrorPolicy says what a handler error (or recovered panic) does.
type ErrorPolicy = engine.ErrorPolicy

const (
	// LogAndAck logs the error and acks the message: the commit point moves
	// past it. Default.
	LogAndAck = engine.LogAndAck
	// StopOnError makes Run drain, commit (never past the failed message) and
	// return the error wrapped in ErrHandler.
	StopOnError = engine.Stop
)

// PartitionStats describes one partition the Consumer owns; see Stats.
type PartitionStats = engine.PartitionStats

// Defaults.
const (
	DefaultConcurrency      = engine.DefaultConcurrency
	DefaultCommitInterval   = engine.DefaultCommitInterval
	DefaultRevokeTimeout    = engine.DefaultRevokeTimeout
	DefaultMetadataMaxBytes = engine.DefaultMetadataMaxBytes
	DefaultSessionTimeout   = 30 * time.Second
	DefaultRebalanceTimeout = 30 * time.Second
	DefaultFetchMaxBytes    = 1 << 20
	DefaultFetchMaxWait     = 500 * time.Millisecond
	DefaultRetryBackoff     = 250 * time.Millisecond
	DefaultMaxRetryBackoff  = 5 * time.Second
)

type config struct {
	engine.Config
	sessionTimeout    time.Duration
	rebalanceTimeout  time.Duration
	heartbeatInterval time.Duration
	readCommitted     bool
	startOffset       int64
	fetchMaxBytes     int
	fetchMaxWait      time.Duration
	retryBackoff      time.Duration
	dialTimeout       time.Duration
	clientID          string

	// Tests only (export_test.go).
	onGeneration func(member string, generation int32, owned []TopicPartition)
	onCommit     func(member string, generation int32, offs []engine.Offset, errs []error)
	onBackoff    func(time.Duration)
	onFetch      func(tp TopicPartition, offset int64, part *fetchAPI.ResponsePartition)
	balancers    []kafka.GroupBalancer
}

// TopicPartition names a partition.
type TopicPartition = engine.TopicPartition

func defaultConfig() config {
	return config{
		Config:           engine.DefaultConfig(),
		sessionTimeout:   DefaultSessionTimeout,
		rebalanceTimeout: DefaultRebalanceTimeout,
		startOffset:      kafka.FirstOffset,
		fetchMaxBytes:    DefaultFetchMaxBytes,
		fetchMaxWait:     DefaultFetchMaxWait,
		retryBackoff:     DefaultRetryBackoff,
		dialTimeout:      5 * time.Second,
		clientID:         "inorder-kafkago",
	}
}

// Option configures a Consumer.
type Option func(*config)

// WithConcurrency sets the number of goroutines running the handler, shared
// by all partitions. Default 16. Must be at least 1. (No Kafka equivalent:
// the Java consumer is single threaded; Confluent's Parallel Consumer calls
// it maxConcurrency.)
func WithConcurrency(n int) Option { return func(c *config) { c.Concurrency = n } }

// WithWindow sets the largest span of offsets, per partition, between the
// commit point and the newest fetched message. When a slow message holds the
// commit point and the window fills, that partition's fetching pauses
// (back-pressure); it also bounds redelivery after a crash. Default
// watermark.DefaultWindow (81880). Range 1..watermark.MaxWindow.
func WithWindow(n int) Option { return func(c *config) { c.Window = n } }

// WithCommitInterval sets how often the commit points that moved are
// committed. Revokes and shutdown commit at once as well. Default 1s.
// Corresponds to the Java auto.commit.interval.ms setting.
func WithCommitInterval(d time.Duration) Option { return func(c *config) { c.CommitInterval = d } }

// WithRevokeTimeout bounds how long a generation's end (rebalance) or
// shutdown waits for in-flight messages before committing what is done.
// The member keeps heartbeating while it drains, so the session timeout
// does not bound the drain; the rebalance timeout does (the coordinator
// waits that long for members to rejoin), so RevokeTimeout must be below
// it. Default 10s. Handlers still running when it expires at shutdown are
// abandoned (see Run). No direct Kafka equivalent: the Java consumer's
// revoke callback is bounded by max.poll.interval.ms.
func WithRevokeTimeout(d time.Duration) Option { return func(c *config) { c.RevokeTimeout = d } }

// WithSessionTimeout sets the group session timeout: how long the
// coordinator waits for a heartbeat before it evicts this member. Default
// 30s. Corresponds to the Java session.timeout.ms setting.
func WithSessionTimeout(d time.Duration) Option { return func(c *config) { c.sessionTimeout = d } }

// WithRebalanceTimeout sets how long the coordinator waits for members to
// rejoin during a rebalance. Default 30s. Corresponds to the Java
// max.poll.interval.ms setting (which Java sends as the rebalance timeout).
func WithRebalanceTimeout(d time.Duration) Option {
	return func(c *config) { c.rebalanceTimeout = d }
}

// WithHeartbeatInterval sets how often the member heartbeats; a rebalance is
// noticed at the next heartbeat. Default: a third of the session timeout,
// at most 3s. Corresponds to the Java heartbeat.interval.ms setting.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.heartbeatInterval = d }
}

// WithErrorPolicy sets what a handler error or panic does: LogAndAck
// (default) or StopOnError.
func WithErrorPolicy(p ErrorPolicy) Option { return func(c *config) { c.ErrorPolicy = p } }

// WithLogger sets the logger. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.Logger = l } }

// WithMetadataMaxBytes sets the size budget of the commit metadata that
// records which messages above the commit point are already handled (so a
// restart or the next owner skips them). Default 4096, the broker's
// offset.metadata.max.bytes default; larger values need that broker setting
// raised. 0 disables commit metadata (and ignores metadata found). When the
// done set does not fit, a prefix is committed and Stats counts a miss.
func WithMetadataMaxBytes(n int) Option { return func(c *config) { c.MetadataMaxBytes = n } }

// WithReadCommitted reads only committed transactional messages; aborted
// ones and transaction markers are gaps that do not hold the commit point.
// Default off (read_uncommitted). Corresponds to the Java
// isolation.level=read_committed setting.
func WithReadCommitted() Option { return func(c *config) { c.readCommitted = true } }

// WithStartOffset sets where to start on a partition without a committed
// offset (or whose committed offset is out of range): kafka.FirstOffset
// (default) or kafka.LastOffset. Corresponds to the Java auto.offset.reset
// setting (earliest, latest).
func WithStartOffset(o int64) Option { return func(c *config) { c.startOffset = o } }

// WithFetchMaxBytes sets the most bytes one fetch returns per partition.
// Default 1 MiB. Range 1..math.MaxInt32. Corresponds to the Java max.partition.fetch.bytes setting.
func WithFetchMaxBytes(n int) Option { return func(c *config) { c.fetchMaxBytes = n } }

// WithFetchMaxWait sets how long the broker may hold a fetch when there is
// no new data. Default 500ms. Range 1ms..math.MaxInt32 milliseconds (the
// protocol carries whole milliseconds; sub-millisecond parts are dropped). Corresponds to the Java fetch.max.wait.ms
// setting.
func WithFetchMaxWait(d time.Duration) Option { return func(c *config) { c.fetchMaxWait = d } }

// WithRetryBackoff sets the first wait after a failed request (fetch,
// offset lookup, group join); it doubles up to 5s, or stays at d if d is
// longer. Default 250ms. Corresponds to the
// Java retry.backoff.ms setting.
func WithRetryBackoff(d time.Duration) Option { return func(c *config) { c.retryBackoff = d } }

func (c *config) validate(brokers []string, group string, topics []string) error {
	if len(brokers) == 0 {
		return fmt.Errorf("%w: Brokers is empty", ErrInvalidConfig)
	}
	for i, b := range brokers {
		if b == "" {
			return fmt.Errorf("%w: Brokers[%d] is empty", ErrInvalidConfig, i)
		}
	}
	if group == "" {
		return fmt.Errorf("%w: Group is empty", ErrInvalidConfig)
	}
	if len(topics) == 0 {
		return fmt.Errorf("%w: Topics is empty", ErrInvalidConfig)
	}
	for i, t := range topics {
		if t == "" {
			return fmt.Errorf("%w: Topics[%d] is empty", ErrInvalidConfig, i)
		}
	}
	if err := c.Config.Validate(); err != nil {
		return err
	}
	switch {
	case c.sessionTimeout <= 0:
		return fmt.Errorf("%w: SessionTimeout must be positive, got %v", ErrInvalidConfig, c.sessionTimeout)
	case c.rebalanceTimeout <= 0:
		return fmt.Errorf("%w: RebalanceTimeout must be positive, got %v", ErrInvalidConfig, c.rebalanceTimeout)
	case c.RevokeTimeout >= c.rebalanceTimeout:
		return fmt.Errorf("%w: RevokeTimeout (%v) must be below RebalanceTimeout (%v)", ErrInvalidConfig, c.RevokeTimeout, c.rebalanceTimeout)
	case c.heartbeatInterval < 0:
		return fmt.Errorf("%w: HeartbeatInterval must not be negative, got %v", ErrInvalidConfig, c.heartbeatInterval)
	case c.heartbeatInterval >= c.sessionTimeout:
		return fmt.Errorf("%w: HeartbeatInterval (%v) must be below SessionTimeout (%v)", ErrInvalidConfig, c.heartbeatInterval, c.sessionTimeout)
	case c.startOffset != kafka.FirstOffset && c.startOffset != kafka.LastOffset:
		return fmt.Errorf("%w: StartOffset must be kafka.FirstOffset or kafka.LastOffset, got %d", ErrInvalidConfig, c.startOffset)
	case c.fetchMaxBytes <= 0 || c.fetchMaxBytes > math.MaxInt32:
		return fmt.Errorf("%w: FetchMaxBytes must be in 1..%d, got %d", ErrInvalidConfig, math.MaxInt32, c.fetchMaxBytes)
	case c.fetchMaxWait < time.Millisecond || c.fetchMaxWait > math.MaxInt32*time.Millisecond:
		// The request carries whole milliseconds (int32): below 1ms it would
		// be 0, and the fetch loop would spin on an idle partition.
		return fmt.Errorf("%w: FetchMaxWait must be in 1ms..%v, got %v", ErrInvalidConfig, math.MaxInt32*time.Millisecond, c.fetchMaxWait)
	case c.retryBackoff <= 0:
		return fmt.Errorf("%w: RetryBackoff must be positive, got %v", ErrInvalidConfig, c.retryBackoff)
	}
	if c.heartbeatInterval == 0 {
		c.heartbeatInterval = min(c.sessionTimeout/3, 3*time.Second)
	}
	return nil
}
