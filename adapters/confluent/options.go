package confluent

// This file holds the Consumer's options, their defaults, the librdkafka
// setting each corresponds to, the settings a ConfigMap may not change, and
// the validation.

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

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

// TopicPartition names a partition.
type TopicPartition = engine.TopicPartition

// Defaults.
const (
	DefaultConcurrency      = engine.DefaultConcurrency
	DefaultCommitInterval   = engine.DefaultCommitInterval
	DefaultRevokeTimeout    = engine.DefaultRevokeTimeout
	DefaultMetadataMaxBytes = engine.DefaultMetadataMaxBytes
	DefaultSessionTimeout   = 45 * time.Second // librdkafka's session.timeout.ms default
	DefaultRebalanceTimeout = 5 * time.Minute  // librdkafka's max.poll.interval.ms default
	DefaultRequestTimeout   = 10 * time.Second
)

type config struct {
	engine.Config
	sessionTimeout    time.Duration
	rebalanceTimeout  time.Duration
	heartbeatInterval time.Duration
	readCommitted     bool
	startOffset       kafka.Offset
	fetchMaxBytes     int
	fetchMaxWait      time.Duration
	requestTimeout    time.Duration
	extra             kafka.ConfigMap

	// Tests only (export_test.go).
	onAssign func(protocol string, tps []TopicPartition)
	onRevoke func(tps []TopicPartition, lost bool)
	// onRevokeStart is called as a revoke starts, before its drain and
	// commit.
	onRevokeStart func(tps []TopicPartition, lost bool)
	onCommit      func(offs []engine.Offset, errs []error)
	onPause       func(tp TopicPartition, paused bool)
	onWait        func() // the poll goroutine waits for the feeder (hand-off queue full)
	// onCommitted sees (and may change) the committed offsets read at an
	// assignment, before they are used.
	onCommitted func(ktps []kafka.TopicPartition)
}

func defaultConfig() config {
	return config{
		Config:           engine.DefaultConfig(),
		sessionTimeout:   DefaultSessionTimeout,
		rebalanceTimeout: DefaultRebalanceTimeout,
		startOffset:      kafka.OffsetBeginning,
		requestTimeout:   DefaultRequestTimeout,
	}
}

// Option configures a Consumer.
type Option func(*config)

// WithConcurrency sets the number of goroutines running the handler, shared
// by all partitions. Default 16. Must be at least 1. (No librdkafka
// equivalent: librdkafka hands messages to one poll loop.)
func WithConcurrency(n int) Option { return func(c *config) { c.Concurrency = n } }

// WithWindow sets the largest span of offsets, per partition, between the
// commit point and the newest message handed out. When a slow message holds
// the commit point and the window fills, the partition is paused
// (librdkafka Pause) until there is room again; the other partitions go on.
// It also bounds redelivery after a crash. Default watermark.DefaultWindow
// (81880). Range 1..watermark.MaxWindow.
func WithWindow(n int) Option { return func(c *config) { c.Window = n } }

// WithCommitInterval sets how often the commit points that moved are stored
// (StoreOffsets, with commit metadata) and committed (Commit). Revokes and
// shutdown commit at once as well. Default 1s. Takes the place of
// librdkafka's auto.commit.interval.ms, which may not be set.
func WithCommitInterval(d time.Duration) Option { return func(c *config) { c.CommitInterval = d } }

// WithRevokeTimeout bounds how long a revoke (in the rebalance callback) or
// shutdown waits for in-flight messages before committing what is done. It
// must be below the rebalance timeout (max.poll.interval.ms). Default 10s.
func WithRevokeTimeout(d time.Duration) Option { return func(c *config) { c.RevokeTimeout = d } }

// WithSessionTimeout sets the group session timeout. Default 45s.
// Corresponds to librdkafka's session.timeout.ms.
func WithSessionTimeout(d time.Duration) Option { return func(c *config) { c.sessionTimeout = d } }

// WithRebalanceTimeout sets how long the coordinator waits for members to
// rejoin during a rebalance, and how long librdkafka lets the poll loop
// stall. Default 5m. Corresponds to librdkafka's max.poll.interval.ms
// (sent as the rebalance timeout).
func WithRebalanceTimeout(d time.Duration) Option {
	return func(c *config) { c.rebalanceTimeout = d }
}

// WithHeartbeatInterval sets how often the member heartbeats. Default
// librdkafka's (3s). Corresponds to librdkafka's heartbeat.interval.ms.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.heartbeatInterval = d }
}

// WithErrorPolicy sets what a handler error or panic does: LogAndAck
// (default) or StopOnError.
func WithErrorPolicy(p ErrorPolicy) Option { return func(c *config) { c.ErrorPolicy = p } }

// WithLogger sets the logger; librdkafka's own log lines go to it too.
// Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.Logger = l } }

// WithMetadataMaxBytes sets the size budget of the commit metadata that
// records which messages above the commit point are already handled (so a
// restart or the next owner skips them). Default 4096, the broker's
// offset.metadata.max.bytes default. 0 disables commit metadata (and
// ignores metadata found).
func WithMetadataMaxBytes(n int) Option { return func(c *config) { c.MetadataMaxBytes = n } }

// WithReadCommitted reads only committed transactional messages; aborted
// ones and transaction markers are gaps that never hold the commit point.
// Corresponds to librdkafka's isolation.level=read_committed, which is
// already librdkafka's default; set "isolation.level": "read_uncommitted"
// in WithConfigMap to read uncommitted messages.
func WithReadCommitted() Option { return func(c *config) { c.readCommitted = true } }

// WithStartOffset sets where to start on a partition without a committed
// offset: kafka.OffsetBeginning (default) or kafka.OffsetEnd. Corresponds to
// librdkafka's auto.offset.reset (earliest, latest), which also applies when
// a committed offset is out of range.
func WithStartOffset(o kafka.Offset) Option { return func(c *config) { c.startOffset = o } }

// WithFetchMaxBytes sets the most bytes one fetch returns per partition.
// Default librdkafka's (1 MiB). Corresponds to librdkafka's
// max.partition.fetch.bytes.
func WithFetchMaxBytes(n int) Option { return func(c *config) { c.fetchMaxBytes = n } }

// WithFetchMaxWait sets how long the broker may hold a fetch when there is
// no new data. Default librdkafka's (500ms). Corresponds to librdkafka's
// fetch.wait.max.ms.
func WithFetchMaxWait(d time.Duration) Option { return func(c *config) { c.fetchMaxWait = d } }

// WithRequestTimeout bounds the requests the rebalance callback makes
// itself (committed offsets and watermarks of newly assigned partitions).
// Default 10s.
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// WithConfigMap passes librdkafka settings through (security, client.id,
// partition.assignment.strategy, ...). They are applied after the other
// options and override them. NewConsumer refuses, with an error naming the
// setting, those that would break the guarantees or that the Consumer owns:
// enable.auto.offset.store (must stay false: offsets are stored only when
// handled), enable.auto.commit and auto.commit.interval.ms (commits follow
// the handlers; see WithCommitInterval), enable.partition.eof (must stay
// true: it moves the commit point over trailing transaction markers),
// go.application.rebalance.enable and go.events.channel.enable (the
// Consumer handles rebalances in its own callback and polls), and group.id
// (the group argument). bootstrap.servers may replace the brokers argument.
// Given several times, the maps are merged.
func WithConfigMap(m kafka.ConfigMap) Option {
	return func(c *config) {
		if c.extra == nil {
			c.extra = kafka.ConfigMap{}
		}
		maps.Copy(c.extra, m)
	}
}

// forced are the settings the Consumer sets and a ConfigMap may only repeat
// with the same value.
var forced = map[string]struct {
	value string
	why   string
}{
	"enable.auto.offset.store":        {"false", "offsets are stored only once every message below them is handled"},
	"enable.auto.commit":              {"false", "commits follow the handlers every CommitInterval (use WithCommitInterval), not the poll loop"},
	"enable.partition.eof":            {"true", "partition EOF moves the commit point over trailing transaction markers"},
	"go.application.rebalance.enable": {"false", "the Consumer handles rebalances in its own rebalance callback"},
	"go.events.channel.enable":        {"false", "the Consumer polls; the events channel would bypass its rebalance handling"},
}

// refused are settings a ConfigMap may not carry at all.
var refused = map[string]string{
	"auto.commit.interval.ms": "commits are the Consumer's; use WithCommitInterval",
	"group.id":                "use the group argument of NewConsumer",
	"go.logs.channel.enable":  "librdkafka logs go to WithLogger",
	"go.logs.channel":         "librdkafka logs go to WithLogger",
}

// configMap validates the options and returns the librdkafka configuration.
func (c *config) configMap(brokers []string, group string, topics []string) (kafka.ConfigMap, error) {
	_, extraBootstrap := c.extra["bootstrap.servers"]
	switch {
	case len(brokers) == 0 && !extraBootstrap:
		return nil, fmt.Errorf("%w: Brokers is empty (and no bootstrap.servers in the ConfigMap)", ErrInvalidConfig)
	case len(brokers) > 0 && extraBootstrap:
		return nil, fmt.Errorf("%w: Brokers and the ConfigMap's bootstrap.servers are both set", ErrInvalidConfig)
	}
	for i, b := range brokers {
		if b == "" {
			return nil, fmt.Errorf("%w: Brokers[%d] is empty", ErrInvalidConfig, i)
		}
	}
	if group == "" {
		return nil, fmt.Errorf("%w: Group is empty", ErrInvalidConfig)
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%w: Topics is empty", ErrInvalidConfig)
	}
	for i, t := range topics {
		if t == "" {
			return nil, fmt.Errorf("%w: Topics[%d] is empty", ErrInvalidConfig, i)
		}
	}
	if err := c.Config.Validate(); err != nil {
		return nil, err
	}
	// librdkafka's settings are whole milliseconds: a shorter duration
	// would be sent as 0 (or, for the optional ones, mean the default).
	for _, d := range []struct {
		name     string
		v        time.Duration
		optional bool // 0 means librdkafka's default
	}{
		{"SessionTimeout", c.sessionTimeout, false},
		{"RebalanceTimeout", c.rebalanceTimeout, false},
		{"RequestTimeout", c.requestTimeout, false},
		{"HeartbeatInterval", c.heartbeatInterval, true},
		{"FetchMaxWait", c.fetchMaxWait, true},
	} {
		if d.v < time.Millisecond && !(d.optional && d.v == 0) {
			return nil, fmt.Errorf("%w: %s must be at least 1ms, got %v", ErrInvalidConfig, d.name, d.v)
		}
	}
	switch {
	case c.startOffset != kafka.OffsetBeginning && c.startOffset != kafka.OffsetEnd:
		return nil, fmt.Errorf("%w: StartOffset must be kafka.OffsetBeginning or kafka.OffsetEnd, got %v", ErrInvalidConfig, c.startOffset)
	case c.fetchMaxBytes < 0:
		return nil, fmt.Errorf("%w: FetchMaxBytes must not be negative, got %d", ErrInvalidConfig, c.fetchMaxBytes)
	}

	ms := func(d time.Duration) int { return int(d / time.Millisecond) }
	cm := kafka.ConfigMap{
		"group.id":                 group,
		"enable.auto.offset.store": false,
		"enable.auto.commit":       false,
		"enable.partition.eof":     true,
		"session.timeout.ms":       ms(c.sessionTimeout),
		"max.poll.interval.ms":     ms(c.rebalanceTimeout),
		"auto.offset.reset":        "earliest",
	}
	if len(brokers) > 0 {
		cm["bootstrap.servers"] = strings.Join(brokers, ",")
	}
	if c.startOffset == kafka.OffsetEnd {
		cm["auto.offset.reset"] = "latest"
	}
	if c.heartbeatInterval > 0 {
		cm["heartbeat.interval.ms"] = ms(c.heartbeatInterval)
	}
	if c.readCommitted {
		cm["isolation.level"] = "read_committed"
	}
	if c.fetchMaxBytes > 0 {
		cm["max.partition.fetch.bytes"] = c.fetchMaxBytes
	}
	if c.fetchMaxWait > 0 {
		cm["fetch.wait.max.ms"] = ms(c.fetchMaxWait)
	}
	for _, k := range slices.Sorted(maps.Keys(c.extra)) {
		v := c.extra[k]
		if why, bad := refused[k]; bad {
			return nil, fmt.Errorf("%w: librdkafka setting %s may not be set: %s", ErrInvalidConfig, k, why)
		}
		if f, ok := forced[k]; ok {
			if b, err := asBool(v); err != nil || strconv.FormatBool(b) != f.value {
				return nil, fmt.Errorf("%w: librdkafka setting %s=%v breaks the guarantees, it must be %s: %s",
					ErrInvalidConfig, k, v, f.value, f.why)
			}
			continue
		}
		cm[k] = v
	}

	// Read back the settings the Consumer depends on, as finally set.
	poll, err := durationMs(cm, "max.poll.interval.ms")
	if err != nil {
		return nil, err
	}
	if c.RevokeTimeout >= poll {
		return nil, fmt.Errorf("%w: RevokeTimeout (%v) must be below RebalanceTimeout, max.poll.interval.ms (%v)",
			ErrInvalidConfig, c.RevokeTimeout, poll)
	}
	if _, err := durationMs(cm, "session.timeout.ms"); err != nil {
		return nil, err
	}
	switch reset := fmt.Sprint(cm["auto.offset.reset"]); reset {
	case "smallest", "earliest", "beginning":
		c.startOffset = kafka.OffsetBeginning
	case "largest", "latest", "end":
		c.startOffset = kafka.OffsetEnd
	default:
		return nil, fmt.Errorf("%w: librdkafka setting auto.offset.reset=%s is not supported, use earliest or latest", ErrInvalidConfig, reset)
	}
	return cm, nil
}

func asBool(v kafka.ConfigValue) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(x)
	}
	return false, fmt.Errorf("not a bool: %v", v)
}

func durationMs(cm kafka.ConfigMap, key string) (time.Duration, error) {
	v := cm[key]
	var n int64
	var err error
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case int32:
		n = int64(x)
	case string:
		n, err = strconv.ParseInt(x, 10, 64)
	default:
		err = fmt.Errorf("unsupported type %T", v)
	}
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: librdkafka setting %s=%v must be a positive number of milliseconds", ErrInvalidConfig, key, v)
	}
	return time.Duration(n) * time.Millisecond, nil
}
